"""What the end-to-end suites share: the two servers (`rollout sim` and the contract-only
fake), running the binary with the token in its environment, and the checks on the state
database and the servers' request logs. The suites are pytest modules (test_*.py); each is
one ctest entry, each case a pytest node."""
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

TOKEN = "tok-SECRET-7d1e04"
SCALE = "600"
EXIT_OK, EXIT_ERROR, EXIT_INVALID, EXIT_STOPPED, EXIT_PAUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class Env:
    """The binary and the source tree under test, and the suites' other options (conftest.py
    sets them from pytest's command line before any test module is imported)."""
    rollout = ""
    src = Path(".")
    options = None
    backend = "sqlite"     # --state-backend: or "postgresql" (pg_state.py)
    real_rollout = ""      # on PostgreSQL, the binary behind the wrapper in `rollout`


def connect_state(db):
    """The state database a test named by its path: the SQLite file, or the PostgreSQL
    database that stands for it; con.execute(sql, params) with `?` placeholders either way."""
    if Env.backend == "postgresql":
        import pg_state
        return pg_state.connect(db)
    return sqlite3.connect(db)


def nothing_written(db):
    """No state at all: no SQLite file, or a PostgreSQL database without rollout's tables
    (the command never opened the state)."""
    if Env.backend == "postgresql":
        con = connect_state(db)
        try:
            return not state_tables(con)
        finally:
            con.close()
    return not Path(db).exists()


def state_tables(con):
    if Env.backend == "postgresql":
        return [t for t, in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()]
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return [t for t, in con.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()]


def crash_points():
    """Where ROLLOUT_TEST_CRASH_AT may stop the engine: the one list in src/engine/markers.h
    that the engine and the CLI use (the CLI refuses any other name)."""
    text = (Path(__file__).resolve().parents[2] / "src/engine/markers.h").read_text()
    block = re.search(r"kCrashPoints = \{(.*?)\};", text, re.S).group(1)
    return re.findall(r'"(\w+)"', block)


def applied_per_marker(requests):
    """How many times the server applied a deploy_update carrying each run's stage marker
    ("RUN/STAGE", "RUN/STAGE/rollback"), from its request log."""
    counts = {}
    for r in requests:
        if r["endpoint"] == "deploy_update" and r.get("applied"):
            m = re.search(r"\[rollout ([^\]]+)\]", r["body"]["metadata"].get("comment", ""))
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


class Server:
    """`rollout sim` (kind "sim") or tests/fakes/upswift_fake.py (kind "fake"), each with a
    request log; faults by the fake's mode names."""

    SIM_FLAGS = {"drop_after_apply": "--drop-after-apply", "throttle": "--fail-429",
                 "error_500": "--fail-5xx", "foreign_200": "--foreign-200", "drop": "--drop"}

    def __init__(self, workdir, kind, faults=None, seed=1, fleet="tests/fleets/steady.yaml", port=0,
                 fake_args=()):
        self.kind = kind
        self.log = Path(workdir) / f"requests-{kind}-{time.monotonic_ns()}.jsonl"
        faults = faults or {}
        if kind == "sim":
            extra = [x for k, v in faults.items() for x in (self.SIM_FLAGS[k], str(v))]
            argv = [Env.rollout, "sim", "--fleet", str(Env.src / fleet), "--listen", f"127.0.0.1:{port}",
                    "--time-scale", SCALE, "--request-log", str(self.log), "--seed", str(seed), *extra]
        else:
            argv = [sys.executable, str(Env.src / "tests/fakes/upswift_fake.py"), "--log", str(self.log),
                    "--seed", str(seed), *[x for k, v in faults.items() for x in ("--mode", f"{k}={v}")],
                    *fake_args]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.url = re.search(r"(http://\S+/v1/)", self.proc.stdout.readline()).group(1)

    def requests(self):
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def applied_per_marker(self):
        return applied_per_marker(self.requests())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def env_for(url, extra=None):
    env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=url)
    env.pop("ROLLOUT_TEST_CRASH_AT", None)
    env.update(extra or {})
    return env


def rollout(*argv, url="", env_extra=None, timeout=240):
    p = subprocess.run([Env.rollout, *argv], env=env_for(url, env_extra), capture_output=True, text=True,
                       timeout=timeout)
    assert TOKEN not in p.stdout + p.stderr, "the token leaked into the output"
    assert "terminate called" not in p.stderr, p.stderr
    return p


def start_apply(plan, db, url, scale=SCALE, env_extra=None, extra=()):
    """`rollout apply` in the background, plain lines on pipes: for signals and races."""
    return subprocess.Popen([Env.rollout, "apply", str(plan), "--state", db, "--yes", "--time-scale", scale,
                             "--no-progress", *extra], env=env_for(url, env_extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def started(proc):
    """Waits for a background apply's first line ("run r-...: plan ..."): the run exists and
    the binary itself runs (on PostgreSQL, not yet the wrapper that starts it). Returns the line,
    for the caller to put before the rest of the output."""
    line = proc.stdout.readline()
    assert line.startswith("run r-"), line + proc.stderr.read()
    return line


def on_a_terminal(argv, env, answer=None, columns=100):
    """Runs argv with stdin, stdout and stderr on a pseudo-terminal of `columns` columns;
    types `answer` once the binary asks ("Type 'yes'"). Returns the exit code and all it wrote."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    asked = answer is None
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not asked and b"Type 'yes' to start" in out:
            os.write(master, answer.encode() + b"\n")
            asked = True
    os.close(master)
    proc.wait(timeout=120)
    return proc.returncode, out.decode("utf-8", "replace")


def run_id_of(output):
    m = re.search(r"run (r-\d{8}-\d{6}-[0-9a-f]{4})", output)
    assert m, output
    return m.group(1)


def run_of(out, db, server):
    """The run an apply said it started. Killed before it said so (its line not yet written,
    or no run created yet): the state's last run, or None when there is none, and then
    nothing may have been sent."""
    if re.search(r"run (r-\d{8}-\d{6}-[0-9a-f]{4})", out):
        return run_id_of(out)
    listed = rollout("runs", "--state", db, "--output", "json").stdout
    runs = json.loads(listed) if listed.strip() else []
    if not runs:
        assert not server.applied_per_marker(), "a deploy_update went out for no recorded run"
        return None
    return runs[-1]["id"]


TERMINAL_UNKNOWN = ("SELECT c.run_id, c.stage, c.kind, c.id, COALESCE(c.outcome, 'none') FROM api_calls c "
                    "JOIN runs r ON r.id = c.run_id WHERE r.status IN ('completed', 'stopped', 'aborted') "
                    "AND (c.outcome IS NULL OR c.outcome = 'unknown')")


def unknown_calls_of_terminal_runs_in_file(path):
    """The calls of terminal runs whose outcome is unknown, in a SQLite state file (read only);
    [] for a file that is not a readable state database (the hostile cases make such)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"runs", "api_calls"} <= tables:
                return []
            return con.execute(TERMINAL_UNKNOWN).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []


def updates_on_devices(url):
    """Each device of project Demo with the comments of the updates on it, as the server
    itself says (devices_details, every page; a page the server's faults spoil (429, 500, a
    closed connection) is asked for again)."""
    import requests
    out, offset = {}, None
    while True:
        body = {"user_token": TOKEN, "project_name": "Demo", "limit": 50}
        if offset is not None:
            body["offset"] = offset
        for _ in range(100):
            try:
                answer = requests.get(url + "devices_details", json=body, timeout=30)
                if answer.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        else:
            raise AssertionError(f"devices_details never answered 200 at offset {offset}")
        page = answer.json()
        for d in page["message"]:
            out[d["device_uuid"]] = [u.get("comment", "") for u in d["updates"]]
        if not page["more"] or not page["message"]:
            return out
        offset = page["message"][-1]["device_id"]


def assert_devices_known(db, run, url):
    """The other half of the promise: every device that the server says took an update of
    `run` is known to the run in that stage: read by its gate (its update recorded) or among
    the devices its rollback targeted."""
    con = connect_state(db)
    gated = set(con.execute("SELECT stage, device_uuid FROM device_states WHERE run_id = ? AND update_id <> 0",
                            (run,)).fetchall())
    rolled = {(key[: -len("/rollback")], uuid) for key, uuid in con.execute(
        "SELECT stage, device_uuid FROM snapshot_devices WHERE run_id = ? AND stage LIKE ?", (run, "%/rollback"))}
    con.close()
    unknown = []
    for uuid, comments in updates_on_devices(url).items():
        for comment in comments:
            m = re.search(r"\[rollout " + re.escape(run) + r"/([^\]/]+)\]", comment)
            if m and (m.group(1), uuid) not in gated | rolled:
                unknown.append((m.group(1), uuid))
    assert not unknown, f"devices that took run {run}'s update but that the run does not know: {unknown}"


def assert_state_sound(db, open_intents_allowed=False, run=None, url=None):
    """integrity_check ok, no intent without an outcome (no lost dispatch), no call of a
    terminal run with an unknown outcome, no token; with `run` and the server's `url`, every
    device the server says took the run's update known to the run (assert_devices_known)."""
    if run is not None:
        assert_devices_known(db, run, url)
    con = connect_state(db)
    tables = state_tables(con)
    unknown = con.execute(TERMINAL_UNKNOWN).fetchall()
    assert not unknown, f"terminal runs with calls whose outcome is unknown: {unknown}"
    if not open_intents_allowed:
        open_intents = con.execute("SELECT id, stage FROM api_calls WHERE outcome IS NULL").fetchall()
        assert not open_intents, f"intents without an outcome: {open_intents}"
    for table in tables:
        for row in con.execute(f"SELECT * FROM {table}").fetchall():
            assert TOKEN not in repr(row), f"the token is in table {table}"
    con.close()


