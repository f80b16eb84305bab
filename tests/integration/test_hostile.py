"""Never crash, never hang, never lie, never leak: the binary end to end against a hostile
server (tests/fakes/upswift_fake.py's modes), broken disks and signals.

Run: python3 -m pytest tests/integration/test_hostile.py --rollout BIN (conftest.py).
"""
import http.server
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from e2e import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PAUSED, SCALE, TOKEN, Env, Server,
                 assert_state_sound, rollout, run_id_of, start_apply, started)

args = Env.options
SRC = Env.src
PLAN = SRC / "tests/plans/four-stage.yaml"
APPROVAL_PLAN = SRC / "tests/plans/approval-four-stage.yaml"
STAGES = ["canary", "eu", "us", "everyone"]
# The preflight's reads of PLAN's groups and projects (Canary, EU-North, EU-South, US, and the
# project for `everyone`): a fault meant for the run starts after them.
AFTER_PREFLIGHT = ("--faults-after", "5")



def no_raw_controls(text):
    return "\x1b" not in text and "\x07" not in text


def readers_work(db, run):
    """Every reader of the state keeps working, and prints no terminal sequence."""
    for argv in (["runs"], ["runs", "--output", "json"], ["show", run], ["show", run, "--output", "json"],
                 ["status", run], ["status", run, "--output", "json"]):
        p = rollout(*argv, "--state", db)
        assert p.returncode == EXIT_OK, (argv, p.stdout, p.stderr)
        assert no_raw_controls(p.stdout + p.stderr), (argv, p.stdout)
        if "--output" in argv:
            json.loads(p.stdout) if argv[0] != "status" else [json.loads(l) for l in p.stdout.splitlines()]
    report = Path(db).parent / "report.html"
    p = rollout("report", run, "--state", db, "-o", str(report))
    assert p.returncode == EXIT_OK, p.stderr
    assert TOKEN not in report.read_text()


class Receiver(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        Receiver.received.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_server_echoing_the_request_never_puts_the_token_anywhere(tmp):
    hooks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    plan = Path(tmp) / "notify.yaml"
    plan.write_text(PLAN.read_text() + f"""notify:
  - {{url: "http://127.0.0.1:{hooks.server_port}/hook"}}
  - {{url: "http://127.0.0.1:{hooks.server_port}/slack", format: slack}}
""")
    try:
        with Server(tmp, "fake", {"echo_400": 1.0}, fake_args=AFTER_PREFLIGHT) as server:
            db = f"{tmp}/state.db"
            p = rollout("apply", str(plan), "--state", db, "--yes", "--time-scale", SCALE, url=server.url)
            assert p.returncode == EXIT_ERROR, p.stdout + p.stderr
            assert "bad request: " in p.stdout and "<redacted>" in p.stdout, p.stdout
            run = run_id_of(p.stdout)
            j = rollout("resume", run, "--state", db, "--output", "json", url=server.url)
            assert TOKEN not in j.stdout
            readers_work(db, run)
            assert_state_sound(db)
            failed = [b for b in Receiver.received if "run_failed" in b or "failed" in b]
            assert failed and any("<redacted>" in b for b in failed), Receiver.received
            assert not any(TOKEN in b for b in Receiver.received)
    finally:
        hooks.shutdown()


def test_a_run_stops_when_its_database_file_is_removed(tmp):
    with Server(tmp, "sim") as server:
        db = f"{tmp}/state.db"
        proc = start_apply(PLAN, db, server.url, scale="60")
        first = started(proc)  # the run is in the file (a sleep could land in the preflight)
        time.sleep(0.5)
        for suffix in ("", "-wal", "-shm"):
            Path(db + suffix).unlink(missing_ok=True)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == EXIT_ERROR, (proc.returncode, first + out, err)
        assert "was removed while this run was using it" in err, err


@pytest.mark.parametrize("mode", ["echo_400", "bad_utf8_400"])
def test_a_server_refusing_every_read_stops_the_preflight_with_nothing_written(tmp, mode):
    # From the first read: the preflight cannot tell a mistyped group from a server that
    # refuses everything (the project's listing is refused too), so it says it could not read.
    with Server(tmp, "fake", {mode: 1.0}) as server:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, url=server.url)
        assert p.returncode == EXIT_ERROR, p.stdout + p.stderr
        assert "could not read the plan's projects and groups from the API" in p.stderr, p.stderr
        assert "nothing was sent" in p.stderr and no_raw_controls(p.stdout + p.stderr)
        assert not Path(db).exists(), "no run written"
        assert not any(r["endpoint"] == "deploy_update" for r in server.requests())


def test_invalid_utf8_and_terminal_sequences_from_the_server_are_made_harmless(tmp):
    with Server(tmp, "fake", {"bad_utf8_400": 1.0}, fake_args=AFTER_PREFLIGHT) as server:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, "--output", "json",
                    url=server.url)
        assert p.returncode == EXIT_ERROR, p.stdout + p.stderr
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        assert lines[-1]["type"] == "end" and lines[-1]["exit_code"] == EXIT_ERROR, lines[-1]
        assert no_raw_controls(p.stdout + p.stderr)
        run = lines[0]["run"] if "run" in lines[0] else run_id_of(rollout("runs", "--state", db).stdout)
        readers_work(db, run)
        con = sqlite3.connect(db)
        for (message,) in con.execute("SELECT message FROM events"):
            message.encode("utf-8")  # raises if the database held invalid UTF-8
            assert "\x1b" not in message and "\n" not in message
        con.close()


def test_paging_that_never_moves_on_stops_with_an_error(tmp):
    with Server(tmp, "fake", {"stuck_paging": 1.0}) as server:
        db = f"{tmp}/state.db"
        start = time.monotonic()
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, url=server.url,
                    timeout=60)
        assert p.returncode == EXIT_ERROR, p.stdout + p.stderr
        assert "repeats a device already listed" in p.stdout, p.stdout
        assert time.monotonic() - start < 30
        assert sum(1 for r in server.requests()) < 20


@pytest.mark.parametrize("when", ["preflight", "run"])
def test_sigint_cancels_a_slow_read_at_once(tmp, when):
    # Every answer of a read drips a byte every 2 s: a read would take minutes. In the
    # preflight's reads, or in the run's (after them).
    extra = AFTER_PREFLIGHT if when == "run" else ()
    with Server(tmp, "fake", {"slow_loris": 1.0}, fake_args=extra) as server:
        db = f"{tmp}/state.db"
        proc = start_apply(PLAN, db, server.url)
        first = started(proc) if when == "run" else ""  # past the preflight, whatever the load
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        out, err = proc.communicate(timeout=30)
        out = first + out
        assert time.monotonic() - start < 3, f"took {time.monotonic() - start:.1f}s after SIGINT"
        assert proc.returncode == EXIT_INTERRUPTED, (proc.returncode, out, err)
        if when == "run":
            assert "continue with `rollout resume" in out, out
            assert_state_sound(db)
        else:
            assert "no run was started, nothing was sent" in err, err
            assert not Path(db).exists()


def test_sigint_against_an_unreachable_api_stops_at_once(tmp):
    db = f"{tmp}/state.db"
    proc = start_apply(PLAN, db, "http://127.0.0.1:9/v1/")
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - start < 3
    assert proc.returncode == EXIT_INTERRUPTED, (proc.returncode, out, err)
    # Still retrying the preflight's first read: nothing was started. The retries were said.
    assert "no run was started, nothing was sent" in err and not Path(db).exists(), err
    assert "API not answering as it should: devices_details: could not reach" in err, err
    assert "try 2 of 8 in " in err, err


def test_a_run_whose_reads_are_retried_says_so_on_the_terminal(tmp):
    # Every read after the preflight answers 500: each retry is a line, never silence.
    with Server(tmp, "fake", {"error_500": 1.0}, fake_args=AFTER_PREFLIGHT) as server:
        db = f"{tmp}/state.db"
        proc = start_apply(PLAN, db, server.url)
        said = []
        deadline = time.monotonic() + 20
        for line in proc.stdout:
            said.append(line)
            if "api_retry: API not answering as it should: " in line or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert any(re.search(r"api_retry: API not answering as it should: (devices_details|get_devices_state): "
                             r".*500.*; try \d of 8 in \d+\.\d s", l) for l in said), "".join(said) + out + err
        assert proc.returncode == EXIT_INTERRUPTED, (proc.returncode, out, err)


def test_sigterm_ends_a_deploy_update_waiting_to_be_retried_at_once(tmp):
    """deploy_update is throttled with Retry-After: 30: the call waits to be tried again. A
    SIGTERM then ends the wait at once (not 30 s later): the call was certainly not applied,
    is recorded so, and the run is left resumable."""
    with Server(tmp, "fake", {"throttle_deploy": 1.0}) as server:
        db = f"{tmp}/state.db"
        proc = start_apply(PLAN, db, server.url)
        for _ in range(100):
            if any(r["endpoint"] == "deploy_update" for r in server.requests()):
                break
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - start < 3, f"took {time.monotonic() - start:.1f}s after SIGTERM"
        assert proc.returncode == EXIT_INTERRUPTED, (proc.returncode, out, err)
        assert not any(r["applied"] for r in server.requests())
        con = sqlite3.connect(db) if Env.backend == "sqlite" else None
        if con:
            outcomes = [o for o, in con.execute("SELECT outcome FROM api_calls")]
            con.close()
            assert outcomes == ["failed"], outcomes
        assert_state_sound(db)


def test_read_only_commands_never_create_a_database(tmp):
    missing = f"{tmp}/typo.db"
    for argv in (["runs"], ["show", "last"], ["status", "last"], ["resume", "last"], ["approve", "last", "us"],
                 ["abort", "last"], ["report", "last", "-o", f"{tmp}/r.html"]):
        p = rollout(*argv, "--state", missing)
        assert p.returncode != EXIT_OK, argv
        assert f"no state database at '{missing}'" in p.stderr and "ROLLOUT_STATE" in p.stderr, (argv, p.stderr)
        assert not Path(missing).exists(), argv


def test_a_run_whose_process_is_gone_is_shown_interrupted(tmp):
    with Server(tmp, "sim") as server:
        db = f"{tmp}/state.db"
        proc = start_apply(PLAN, db, server.url, scale="30")
        started(proc)  # the run exists: killed before, there would be nothing to show
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        for argv in (["status", "last"], ["show", "last"], ["runs"]):
            p = rollout(*argv, "--state", db)
            assert "interrupted" in p.stdout and "running" not in p.stdout.split("recent events")[0], \
                (argv, p.stdout)
        shown = json.loads(rollout("show", "last", "--state", db, "--output", "json").stdout)
        assert shown["status"] == "interrupted" and "rollout resume" in shown["reason"], shown["reason"]


def test_validate_refuses_what_apply_refuses(tmp):
    plan = Path(tmp) / "http.yaml"
    plan.write_text(PLAN.read_text().replace("stages:", "api: {url: 'http://example.com/v1/'}\nstages:", 1))
    for argv in (["validate", str(plan)], ["plan", "--offline", str(plan)], ["apply", str(plan), "--yes"]):
        p = rollout(*argv, "--state", f"{tmp}/s.db") if argv[0] == "apply" else rollout(*argv)
        assert p.returncode == 2, (argv, p.stdout, p.stderr)
        assert "plain http to 'example.com'" in p.stderr, (argv, p.stderr)
    evil = Path(tmp) / "evil.yaml"
    evil.write_text(PLAN.read_text().replace("name: four-stage", 'name: "four\\e[2Jstage"', 1))
    p = rollout("validate", str(evil))
    assert p.returncode == 2 and "\\x1b[2J" in p.stderr and no_raw_controls(p.stderr), p.stderr


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                          capture_output=True).returncode == 0


def skip_without_tmpfs(why):
    """A visible skip where a tmpfs cannot be mounted (not root); CI runs as root, so there the
    test must run: a skip in CI is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"cannot mount a tmpfs, and CI must run this test: {why}")
    pytest.skip(f"cannot mount a tmpfs here (needs root): {why}")


def test_a_full_disk_and_a_read_only_database_end_with_a_message_then_resume_completes(tmp):
    disk = f"{tmp}/disk"
    if os.geteuid() != 0 or not mount_tmpfs(disk, "2m"):
        skip_without_tmpfs("a full disk and a read-only mount need a tmpfs of their own")
    try:
        with Server(tmp, "sim") as server:
            db = f"{disk}/state.db"
            p = rollout("apply", str(APPROVAL_PLAN), "--state", db, "--yes", "--time-scale", SCALE, url=server.url)
            assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
            run = run_id_of(p.stdout)
            assert rollout("approve", run, "us", "--state", db).returncode == EXIT_OK
            # Read-only: the resume cannot write; it says so and sends nothing.
            subprocess.run(["mount", "-o", "remount,ro", disk], check=True)
            before = server.applied_per_marker()
            r = rollout("resume", run, "--state", db, "--time-scale", SCALE, url=server.url)
            assert r.returncode == EXIT_ERROR, r.stdout + r.stderr
            assert "rollout: " in r.stderr and "state database" in r.stderr, r.stderr
            assert server.applied_per_marker() == before
            subprocess.run(["mount", "-o", "remount,rw", disk], check=True)
            # Full: fill the disk but for a few KB, then resume.
            filler = Path(disk) / "filler"
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError:
                pass
            finally:
                os.close(fd)
            os.truncate(filler, max(0, filler.stat().st_size - 12 * 1024))
            r = rollout("resume", run, "--state", db, "--time-scale", SCALE, url=server.url)
            assert r.returncode in (EXIT_ERROR, EXIT_OK), r.stdout + r.stderr
            if r.returncode == EXIT_ERROR:
                assert "full" in r.stderr or "state database" in r.stderr, r.stderr
            filler.unlink()
            for _ in range(3):
                if r.returncode == EXIT_OK:
                    break
                r = rollout("resume", run, "--state", db, "--time-scale", SCALE, url=server.url)
            assert r.returncode == EXIT_OK, r.stdout + r.stderr
            applied = server.applied_per_marker()
            assert applied == {f"{run}/{s}": 1 for s in STAGES}, applied
            assert_state_sound(db)
    finally:
        subprocess.run(["umount", "-l", disk], capture_output=True)


def as_reader(argv, home):
    """rollout as a user who may only read the state: `nobody` when the suite runs as root
    (root may write any file), else this user; the binary is a copy in `home`, which that
    user can reach."""
    binary = Path(home) / "rollout"
    if not binary.exists():
        shutil.copy(Env.rollout, binary)
        os.chmod(binary, 0o755)
    env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN)
    prefix = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, str(binary), *argv], capture_output=True, text=True, env=env,
                          cwd=home, timeout=60)


def reads_and_refuses_writes(db, run, home, why):
    """runs, show, status and report work on a state this user may only read; approve (a
    write) is refused, saying why, and changes nothing."""
    for argv in (["runs"], ["show", run], ["show", run, "--output", "json"], ["show", run, "--devices"],
                 ["status", run, "--output", "json"]):
        p = as_reader([*argv, "--state", db], home)
        assert p.returncode == EXIT_OK, (argv, p.stdout, p.stderr)
    out = tempfile.mkdtemp(prefix="rollout-report-")
    try:
        os.chmod(out, 0o777)  # the report itself goes where this user may write
        p = as_reader(["report", run, "--state", db, "-o", f"{out}/report.html"], home)
        assert p.returncode == EXIT_OK, p.stderr
        assert run in Path(f"{out}/report.html").read_text()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    before = Path(db).read_bytes()
    p = as_reader(["approve", run, "us", "--state", db], home)
    assert p.returncode == EXIT_ERROR, p.stdout + p.stderr
    assert "can only be read here" in p.stderr and why in p.stderr, p.stderr
    assert Path(db).read_bytes() == before


@pytest.mark.sqlite_file
def test_a_state_file_this_user_may_only_read_is_still_readable(tmp):
    home = tempfile.mkdtemp(prefix="rollout-ro-")
    try:
        os.chmod(home, 0o755)  # nobody passes through; the file and folder are read-only to it
        db = f"{home}/state.db"
        with Server(tmp, "sim") as server:
            p = rollout("apply", str(APPROVAL_PLAN), "--state", db, "--yes", "--time-scale", SCALE, url=server.url)
            assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
            run = run_id_of(p.stdout)
        os.chmod(db, 0o444)
        os.chmod(home, 0o555)
        reads_and_refuses_writes(db, run, home, "Permission denied")
    finally:
        os.chmod(home, 0o755)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.sqlite_file
def test_a_state_file_on_a_read_only_mount_is_still_readable(tmp):
    disk = f"{tmp}/ro"
    if os.geteuid() != 0 or not mount_tmpfs(disk, "4m"):
        skip_without_tmpfs("a read-only mount needs a tmpfs of its own; the case of a file this "
                           "user may only read runs everywhere")
    try:
        os.chmod(disk, 0o755)
        db = f"{disk}/state.db"
        with Server(tmp, "sim") as server:
            p = rollout("apply", str(APPROVAL_PLAN), "--state", db, "--yes", "--time-scale", SCALE, url=server.url)
            assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
            run = run_id_of(p.stdout)
        subprocess.run(["mount", "-o", "remount,ro", disk], check=True)
        # As root too: the mount, not a permission, is what says no.
        for argv in (["runs"], ["show", run], ["status", run]):
            r = rollout(*argv, "--state", db)
            assert r.returncode == EXIT_OK, (argv, r.stdout, r.stderr)
        r = rollout("approve", run, "us", "--state", db)
        assert r.returncode == EXIT_ERROR and "Read-only file system" in r.stderr, r.stdout + r.stderr
    finally:
        subprocess.run(["umount", "-l", disk], capture_output=True)
