#!/usr/bin/python3
"""The rollout binary end to end against the fleet simulator over loopback HTTP.

Usage: cli_test.py ROLLOUT_BINARY SOURCE_DIR [--random-kills N] [--kill-seed S] [--only TEXT] [--skip TEXT]
Prints one line per test and 'N passed, M failed'.
"""
import argparse
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from e2e import Server, crash_points, on_a_terminal, run_tests

parser = argparse.ArgumentParser()
parser.add_argument("rollout")
parser.add_argument("source")
parser.add_argument("--random-kills", type=int, default=4)
parser.add_argument("--kill-seed", type=int, default=1234, help="seeds the random kill moments")
parser.add_argument("--only", default="")
parser.add_argument("--skip", default="", help="skip tests whose name contains this")
args = parser.parse_args()
ROLLOUT = args.rollout
SRC = Path(args.source)
PLAN = SRC / "tests/plans/four-stage.yaml"
CANARY_PLAN = SRC / "plans/canary-then-fleet.yaml"
STEADY = SRC / "tests/fleets/steady.yaml"
FAILING = SRC / "tests/fleets/failing-canary.yaml"
TOKEN = "tok-SECRET-5f3c9a"
SCALE = "600"

EXIT_OK, EXIT_ERROR, EXIT_INVALID, EXIT_STOPPED, EXIT_PAUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class Sim(Server):
    """rollout sim in its own process, with a request log, from a fleet file and raw flags."""

    def __init__(self, workdir, fleet, extra=()):
        self.started_with = (workdir, fleet, extra)
        self.log = Path(workdir) / f"requests-{time.monotonic_ns()}.jsonl"
        self.proc = subprocess.Popen([ROLLOUT, "sim", "--fleet", str(fleet), "--listen", "127.0.0.1:0",
                                      "--time-scale", SCALE, "--request-log", str(self.log), *extra],
                                     stdout=subprocess.PIPE, text=True)
        banner = self.proc.stdout.readline()
        self.url = re.search(r"(http://\S+/v1/)", banner).group(1)

    def restart(self):
        """Stops it and starts the same fleet afresh: nothing updated yet, a new log."""
        self.stop()
        self.__init__(*self.started_with)


def rollout(*argv, env_extra=None, api=None, timeout=180, check_no_token=True):
    env = dict(os.environ)
    env["UPSWIFT_USER_TOKEN"] = TOKEN
    if api:
        env["UPSWIFT_API_URL"] = api
    env.pop("ROLLOUT_TEST_CRASH_AT", None)
    env.update(env_extra or {})
    p = subprocess.run([ROLLOUT, *argv], env=env, capture_output=True, text=True, timeout=timeout)
    if check_no_token:
        assert TOKEN not in p.stdout and TOKEN not in p.stderr, "the token leaked into the output"
    return p


def run_id_of(output):
    m = re.search(r"run (r-\d{8}-\d{6}-[0-9a-f]{4})", output)
    assert m, output
    return m.group(1)


def assert_db_clean(db):
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for table, in con.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
        for row in con.execute(f"SELECT * FROM {table}").fetchall():
            assert TOKEN not in repr(row), f"the token is in table {table}"
    con.close()


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def four_stage_plan_completes_once_each(tmp):
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert sim.applied_per_marker() == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["status"] == "completed"
        assert [s["status"] for s in shown["stages"]] == ["passed"] * 4
        assert all(c["outcome"] == "accepted" for c in shown["api_calls"])
        assert shown["api_calls"][0]["body"]["user_token"] == "<redacted>"
        runs = json.loads(rollout("runs", "--state", db, "--output", "json").stdout)
        assert runs[0]["id"] == run and runs[0]["stages_done"] == 4
        assert_db_clean(db)


@test
def failing_canary_rolls_back_and_exits_3(tmp):
    with Sim(tmp, FAILING) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_STOPPED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        applied = sim.applied_per_marker()
        assert applied.get(f"{run}/canary") == 1
        assert applied.get(f"{run}/canary/rollback", 0) >= 1
        assert not any(k.endswith("/eu") or k.endswith("/us") for k in applied)
        rollbacks = [r for r in sim.requests() if r["endpoint"] == "deploy_update" and r["body"]["flow_id"] == "11aa-22bb"]
        assert rollbacks and all(r["body"]["metadata"]["app"]["version"] == "v2.3" for r in rollbacks)
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["status"] == "stopped"
        assert shown["stages"][0]["status"] == "rolled_back"
        assert any(d["verdict"] == "fail" for d in shown["stages"][0]["gate_decisions"])


@test
def approval_pauses_then_approve_and_resume_complete(tmp):
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(CANARY_PLAN), "--state", db, "--yes", "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert "waiting for us (approval)" in p.stdout
        a = rollout("approve", run, "us", "--comment", "EU looks healthy", "--state", db)
        assert a.returncode == EXIT_OK, a.stderr
        r = rollout("resume", run, "--state", db, "--time-scale", SCALE)
        assert r.returncode == EXIT_OK, r.stdout + r.stderr
        assert sim.applied_per_marker() == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["approvals"][0]["stage"] == "us" and shown["approvals"][0]["comment"] == "EU looks healthy"
        assert shown["approvals"][0]["by"]
        again = rollout("resume", run, "--state", db)
        assert again.returncode == EXIT_INVALID and "nothing to resume" in again.stderr


@test
def refused_call_quotes_upswift_and_sends_nothing_more(tmp):
    with Sim(tmp, STEADY) as sim:
        plan = Path(tmp) / "bad-flow.yaml"
        plan.write_text(PLAN.read_text().replace("flow_id: 73a7-1ft8", "flow_id: no-such-flow"))
        db = f"{tmp}/state.db"
        p = rollout("apply", str(plan), "--state", db, "--yes", "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_ERROR, p.stdout + p.stderr
        assert "Upswift refused deploy_update: \"Flow 'no-such-flow' was not found\"" in p.stdout
        assert sim.applied_per_marker() == {}


@test
def invalid_plan_exits_2_and_writes_nothing(tmp):
    db = f"{tmp}/state.db"
    p = rollout("apply", str(SRC / "tests/plans/invalid/cycle.yaml"), "--state", db, "--yes")
    assert p.returncode == EXIT_INVALID
    assert "dependency cycle: a -> b -> c -> a" in p.stderr
    assert not Path(db).exists()
    d = rollout("apply", str(PLAN), "--dry-run", "--state", db)
    assert d.returncode == EXIT_OK and "nothing is sent" in d.stdout
    assert not Path(db).exists()


@test
def missing_token_and_plain_http_are_refused(tmp):
    env = {"UPSWIFT_USER_TOKEN": ""}
    p = rollout("apply", str(PLAN), "--state", f"{tmp}/s.db", "--yes", env_extra=env)
    assert p.returncode == EXIT_INVALID and "set UPSWIFT_USER_TOKEN" in p.stderr
    p = rollout("apply", str(PLAN), "--state", f"{tmp}/s.db", "--yes", api="http://example.com/v1/")
    assert p.returncode == EXIT_INVALID and "only https is allowed" in p.stderr
    p = rollout("apply", str(PLAN), "--state", f"{tmp}/s.db", "--yes", "--time-scale", "60")
    assert p.returncode == EXIT_INVALID and "only for simulated fleets" in p.stderr


@test
def sigint_exits_130_and_resume_completes(tmp):
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=sim.url)
        proc = subprocess.Popen([ROLLOUT, "apply", str(PLAN), "--state", db, "--yes", "--time-scale", "60"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == EXIT_INTERRUPTED, out + err
        run = run_id_of(out)
        assert "interrupted" in out
        r = rollout("resume", run, "--state", db, "--time-scale", SCALE, api=sim.url)
        assert r.returncode == EXIT_OK, r.stdout + r.stderr
        assert sim.applied_per_marker() == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}


@test
def a_live_run_is_not_run_twice(tmp):
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=sim.url)
        proc = subprocess.Popen([ROLLOUT, "apply", str(PLAN), "--state", db, "--yes", "--time-scale", "30"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        second = rollout("resume", "last", "--state", db, "--time-scale", "30", api=sim.url)
        assert second.returncode == EXIT_ERROR, second.stdout + second.stderr
        assert "is being run by" in second.stderr and f"(pid {proc.pid})" in second.stderr
        abort = rollout("abort", "last", "--state", db)
        assert abort.returncode == EXIT_OK and "recorded" in abort.stdout
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == EXIT_STOPPED, out + err
        shown = json.loads(rollout("show", "last", "--state", db, "--output", "json").stdout)
        assert shown["status"] == "aborted"


@test
def faults_429_5xx_slow_drops_complete_without_duplicates(tmp):
    # 30% 429s, 10% 500s, 10% slow, 5% dropped before acting, 20% of deploy_update calls
    # applied and then dropped unanswered: the run completes, each stage applied once.
    with Sim(tmp, STEADY, ["--fail-429", "0.3", "--fail-5xx", "0.1", "--slow", "0.1", "--slow-ms", "200",
                           "--drop", "0.05", "--drop-after-apply", "0.2", "--seed", "17"]) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, api=sim.url, timeout=300)
        run = run_id_of(p.stdout)
        for _ in range(5):
            if p.returncode == EXIT_OK:
                break
            assert p.returncode == EXIT_ERROR, p.stdout + p.stderr  # gave up cleanly; resumable
            p = rollout("resume", run, "--state", db, "--time-scale", SCALE, api=sim.url, timeout=300)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        assert sim.applied_per_marker() == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}
        faults = [r["fault"] for r in sim.requests()]
        assert "429" in faults and "5xx" in faults
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        outcomes = [c["outcome"] for c in shown["api_calls"]]
        assert all(o in ("accepted", "settled_applied", "settled_not_applied") for o in outcomes), outcomes
        assert_db_clean(db)


@test
def the_token_is_in_no_log_output_or_database(tmp):
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, "--output", "json", api=sim.url)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        for line in p.stdout.splitlines():
            json.loads(line)  # the event stream is JSON lines
        assert TOKEN not in sim.log.read_text()
        assert '"user_token":"<redacted>"' in sim.log.read_text()
        for cmd in (["show", "last", "--output", "json"], ["show", "last"], ["runs"]):
            out = rollout(*cmd, "--state", db)
            assert TOKEN not in out.stdout + out.stderr
        raw = b"".join(Path(f).read_bytes() for f in Path(tmp).glob("state.db*"))
        assert TOKEN.encode() not in raw
        assert_db_clean(db)


def kill_and_resume(tmp, crash_at=None, kill_after=None):
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state-{time.monotonic_ns()}.db"
        env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=sim.url)
        if crash_at:
            env["ROLLOUT_TEST_CRASH_AT"] = crash_at
        proc = subprocess.Popen([ROLLOUT, "apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if kill_after is not None:
            time.sleep(kill_after)
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        if crash_at:
            assert proc.returncode == -signal.SIGKILL, f"{crash_at}: exit {proc.returncode}\n{out}{err}"
        run = run_id_of(out)
        for _ in range(5):
            if proc.returncode == EXIT_OK:
                break
            r = rollout("resume", run, "--state", db, "--time-scale", SCALE, api=sim.url)
            proc = r
        assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
        applied = sim.applied_per_marker()
        assert applied == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}, applied
        assert_db_clean(db)


def make_kill_test(point, nth):
    def fn(tmp):
        kill_and_resume(tmp, crash_at=f"{point}:{nth}")
    fn.__name__ = f"sigkill_at_{point}_{nth}_then_resume_dispatches_exactly_once"
    return fn


# Every crash point a run without a failure reaches (a rollback's has its own tests).
for point in [p for p in crash_points() if p != "after_rollback_intent"]:
    for nth in range(1, 5):
        TESTS.append(make_kill_test(point, nth))
EVENT_SCHEMA = json.loads((SRC / "schema/events.schema.json").read_text())
SOME_FAILURES = SRC / "tests/fleets/some-failures.yaml"


def parse_time(text):
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


@test
def event_stream_follows_its_schema_from_run_to_end(tmp):
    import jsonschema
    with Sim(tmp, FAILING) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, "--output", "json", api=sim.url)
        assert p.returncode == EXIT_STOPPED, p.stdout + p.stderr
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        for obj in lines:
            jsonschema.validate(obj, EVENT_SCHEMA)
        assert lines[0]["type"] == "run" and lines[0]["resumed"] is False
        assert lines[0]["stages"] == ["canary", "eu", "us", "everyone"]
        assert lines[-1] == {**lines[-1], "type": "end", "ending": "stopped", "exit_code": EXIT_STOPPED}
        assert sum(1 for o in lines if o["type"] == "end") == 1
        times = [parse_time(o["time"]) for o in lines]
        assert times == sorted(times), "events out of order"
        statuses = [o["status"] for o in lines if o["type"] == "stage" and o["stage"] == "canary"]
        assert statuses[0] == "dispatching" and "gating" in statuses and statuses[-1] == "rolled_back", statuses
        assert any(o["type"] == "gate" and o["verdict"] == "fail" for o in lines)
        assert "\x1b" not in p.stdout


def read_pty(argv, env_extra):
    """Runs rollout on a pseudo-terminal (100 columns); returns all it wrote."""
    env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, **env_extra)
    if "NO_COLOR" not in env_extra:
        env.pop("NO_COLOR", None)
    return on_a_terminal([ROLLOUT, *argv], env)


@test
def progress_redraws_on_a_terminal_and_is_plain_otherwise(tmp):
    def apply_on_a_fresh_fleet(run_pty, extra_env=None, extra_argv=()):
        with Sim(tmp, STEADY) as sim:
            argv = ["apply", str(PLAN), "--state", f"{tmp}/state.db", "--yes", "--time-scale", "300", *extra_argv]
            if run_pty:
                return read_pty(argv, {"UPSWIFT_API_URL": sim.url, **(extra_env or {})})
            p = rollout(*argv, api=sim.url)
            return p.returncode, p.stdout

    rc, out = apply_on_a_fresh_fleet(True)
    assert rc == EXIT_OK, out
    assert TOKEN not in out
    assert "\x1b[" in out and "\x1b[J" in out, "no redraw on a terminal"
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    # A progress line: stage, status, bar, counts by update_status, the gate, what it waits for.
    assert re.search(r"canary\s+gating\s+\S+ \d+ success, \d+ failed, \d+ in_progress, \d+ pending", plain), plain[-3000:]
    assert "gate: min_success 100% of 6 = 6 devices, max_failed 0 devices, bake 5m" in plain
    assert re.search(r"waiting: (bake, \S+ left|gate)", plain)
    assert "everyone" in plain and "completed" in plain
    for line in plain.splitlines():  # the block's lines (events above it may wrap)
        if line.startswith("run r-") or line.startswith("  "):
            assert len(line) <= 100, f"wider than the terminal: {line!r}"
    # NO_COLOR or --no-progress on a terminal, or a pipe: timestamped lines, no escapes.
    for run_pty, extra_env, extra_argv in ((True, {"NO_COLOR": "1"}, []), (True, {}, ["--no-progress"]),
                                           (False, {}, [])):
        rc, out = apply_on_a_fresh_fleet(run_pty, extra_env, extra_argv)
        assert rc == EXIT_OK, out
        assert "\x1b" not in out, (extra_env, extra_argv)
        assert re.search(r"^\d\d:\d\d:\d\d  canary\s+dispatched:", out, re.M), out


@test
def status_watch_follows_a_run_from_another_process(tmp):
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=sim.url)
        run = subprocess.Popen([ROLLOUT, "apply", str(PLAN), "--state", db, "--yes", "--time-scale", "60",
                                "--no-progress"], env=env, stdout=subprocess.PIPE, text=True)
        first = run.stdout.readline()
        run_id = run_id_of(first)
        watch = subprocess.run([ROLLOUT, "status", run_id, "--state", db, "--watch", "--interval", "1s"],
                               capture_output=True, text=True, timeout=300)
        run.stdout.read()
        assert run.wait(timeout=60) == EXIT_OK
        assert watch.returncode == EXIT_OK, watch.stdout + watch.stderr
        blocks = watch.stdout.split("--- ")
        assert len(blocks) >= 3, watch.stdout  # it saw the run change while it went
        assert any(re.search(r"canary\s+gating", b) for b in blocks), watch.stdout
        assert "completed" in blocks[-1] and "every stage passed" in blocks[-1]
        assert re.search(r"run by \S+@\S+ \(pid \d+\), last heartbeat", watch.stdout)
        assert "\x1b" not in watch.stdout
        status = json.loads(rollout("status", run_id, "--state", db, "--output", "json").stdout)
        assert status["status"] == "completed"
        assert [s["status"] for s in status["stages"]] == ["passed"] * 4
        assert status["stages"][0]["counts"]["success"] == 6
        stopped = rollout("status", "r-20200101-000000-dead", "--state", db)
        assert stopped.returncode == EXIT_INVALID and "no run" in stopped.stderr


@test
def rehearsal_predicts_the_real_run(tmp):
    """The fleet's own seed: the rehearsal (virtual clock) and a real time-scaled run
    against `rollout sim` make the same decisions, calls and (within a poll) times."""
    p = rollout("rehearse", str(PLAN), "--fleet", str(SOME_FAILURES), "--output", "json")
    assert p.returncode == EXIT_STOPPED, p.stderr  # the exit code of the predicted ending
    predicted = json.loads(p.stdout)
    assert predicted["ending"] == "stopped"  # seed 21: an EU-North device fails
    with Sim(tmp, SOME_FAILURES) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, "--output", "json", api=sim.url)
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        assert lines[-1]["ending"] == predicted["ending"], (lines[-1], predicted)
        start = parse_time(lines[0]["time"])
        final = {}
        for o in lines:
            if o["type"] == "stage":
                final[o["stage"]] = o
        applied = sim.applied_per_marker()
        poll = 60
        for s in predicted["stages"]:
            real = final.get(s["stage"], {"status": "waiting", "finished": None})
            assert real["status"] == s["status"], (s, real)
            if s["ends_s"] is not None:
                ended = parse_time(real["finished"]) - start
                assert abs(ended - s["ends_s"]) <= 2 * poll + 5, (s["stage"], ended, s["ends_s"])
        assert sum(applied.values()) == predicted["api_calls"]["deploy_update"], (applied, predicted["api_calls"])
        assert sum(1 for r in sim.requests() if r["endpoint"] == "deploy_update" and r.get("applied")) == \
            predicted["api_calls"]["deploy_update"]
    # Many seeds: the spread names the gate that fails and how often.
    p = rollout("rehearse", str(PLAN), "--fleet", str(SOME_FAILURES), "--runs", "20")
    assert p.returncode == EXIT_STOPPED, p.stderr
    assert "20 rehearsals, seeds 21..40" in p.stdout
    m = re.search(r"the eu gate fails in (\d+)% of rehearsals", p.stdout)
    assert m and 0 < int(m.group(1)) < 100, p.stdout



PREVIEW_PLAN = SRC / "tests/plans/preview.yaml"
PREVIEW_FLEET = SRC / "tests/fleets/preview.yaml"


@test
def live_plan_counts_each_stage_and_apply_runs_the_saved_plan(tmp):
    """rollout plan against the simulator over HTTP: numbers known from the fleet file,
    nothing sent; then apply --plan-file runs it with the previewed devices."""
    with Sim(tmp, PREVIEW_FLEET) as sim:
        saved = f"{tmp}/plan.bin"
        p = rollout("plan", str(PREVIEW_PLAN), "--out", saved, api=sim.url)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        assert "warning: 5 device(s) targeted by more than one stage" in p.stdout, p.stdout
        assert "unreached: 2 device(s)" in p.stdout and "shortest run: 17m of bakes along canary -> us -> late" in p.stdout
        assert not any(r["endpoint"] == "deploy_update" for r in sim.requests()), "a plan sent an update"
        doc = json.loads(Path(saved).read_text())
        stages = {s["name"]: s for s in doc["stages"]}
        assert {n: (s["targets"], s["online"], s["offline"]) for n, s in stages.items()} == {
            "canary": (3, 3, 0), "eu": (5, 5, 0), "us": (5, 4, 1), "late": (5, 4, 1)}
        assert len(doc["overlaps"]) == 5 and all(o["stages"] == ["us", "late"] for o in doc["overlaps"])
        assert sorted(d["group"] for d in doc["unreached"]) == ["Lab", "Lab"]
        assert doc["api_calls"]["deploy_update"] == 4
        assert doc["critical_path"] == {"stages": ["canary", "us", "late"], "shortest": "17m",
                                        "shortest_s": 1020, "approval": False}
        assert TOKEN not in Path(saved).read_text()
        again = rollout("plan", str(PREVIEW_PLAN), "--output", "json", api=sim.url)
        assert json.loads(again.stdout)["stages"] == doc["stages"]

        db = f"{tmp}/state.db"
        p = rollout("apply", "--plan-file", saved, "--state", db, "--yes", "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert sim.applied_per_marker() == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "late"]}
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        fixed = [e for e in shown["events"] if e["kind"] == "snapshot"]
        assert len(fixed) == 4 and all("as saved in" in e["message"] for e in fixed), fixed


@test
def stale_saved_plan_is_refused_and_sends_nothing(tmp):
    """A device moves group after the plan was saved, or the plan file changes: apply
    --plan-file says what changed, creates no run and sends nothing."""
    fleet, plan, saved, db = Path(tmp) / "fleet.yaml", Path(tmp) / "plan.yaml", f"{tmp}/saved.json", f"{tmp}/s.db"
    fleet.write_text(PREVIEW_FLEET.read_text())
    plan.write_text(PREVIEW_PLAN.read_text())
    p = rollout("plan", str(plan), "--simulate", str(fleet), "--out", saved)
    assert p.returncode == EXIT_OK, p.stderr
    fleet.write_text(PREVIEW_FLEET.read_text().replace("name: mover, group: EU", "name: mover, group: US"))
    p = rollout("apply", "--plan-file", saved, "--simulate", str(fleet), "--yes", "--state", db)
    assert p.returncode == EXIT_INVALID, p.stdout + p.stderr
    assert "is stale: the fleet changed since" in p.stderr, p.stderr
    assert "stage eu would now target 4 device(s), the saved plan 5; no longer: d-0000-move (mover, EU)" in p.stderr
    assert "stage us would now target 6 device(s), the saved plan 5; now also: d-0000-move (mover, US)" in p.stderr
    assert "Nothing was sent" in p.stderr
    assert not Path(db).exists()  # nothing written: not even an empty database

    fleet.write_text(PREVIEW_FLEET.read_text())
    plan.write_text(PREVIEW_PLAN.read_text().replace("bake: 5m", "bake: 1m"))
    p = rollout("apply", "--plan-file", saved, "--simulate", str(fleet), "--yes", "--state", db)
    assert p.returncode == EXIT_INVALID and f"the plan file {plan} changed since it was saved" in p.stderr, p.stderr

    Path(saved).write_text('{"format": "something else"}')
    p = rollout("apply", "--plan-file", saved, "--simulate", str(fleet), "--yes", "--state", db)
    assert p.returncode == EXIT_INVALID and "not a plan saved by `rollout plan --out`" in p.stderr, p.stderr
    assert not Path(db).exists()  # nothing written: not even an empty database


SAMPLED_PLAN = SRC / "tests/plans/sampled.yaml"


def sampled_wave_targets(sim, run):
    """device uuid -> applied calls, for the wave's per-device deploy_update calls."""
    per_device = {}
    for r in sim.requests():
        if r["endpoint"] != "deploy_update" or not r.get("applied"):
            continue
        if f"[rollout {run}/wave]" not in r["body"]["metadata"].get("comment", ""):
            continue
        filters = r["body"]["devices_filter"]["filters"]
        assert r["body"]["devices_filter"]["groups"] == [] and len(filters) == 1, r["body"]
        assert filters[0]["type"] == "specific_device" and filters[0]["operand"] == "is"
        per_device[filters[0]["value"]] = per_device.get(filters[0]["value"], 0) + 1
    return per_device


@test
def sampled_wave_draws_the_same_devices_after_kill_and_resume(tmp):
    """SIGKILL between the wave's per-device calls: resume draws the same 5 devices, each
    gets exactly one update, and none of them is one the earlier stage targeted."""
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        # The 3rd intent: eu's call, the wave's 1st, then its 2nd.
        p = rollout("apply", str(SAMPLED_PLAN), "--state", db, "--yes", "--time-scale", SCALE,
                    env_extra={"ROLLOUT_TEST_CRASH_AT": "after_intent:3"}, api=sim.url)
        assert p.returncode == -signal.SIGKILL, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        con = sqlite3.connect(db)
        drawn = [u for u, in con.execute(
            "SELECT device_uuid FROM snapshot_devices WHERE run_id = ? AND stage = 'wave' ORDER BY device_id", (run,))]
        eu = {u for u, in con.execute(
            "SELECT device_uuid FROM snapshot_devices WHERE run_id = ? AND stage = 'eu'", (run,))}
        con.close()
        assert len(drawn) == 5 and len(eu) == 8
        p = rollout("resume", run, "--state", db, "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        con = sqlite3.connect(db)
        after = [u for u, in con.execute(
            "SELECT device_uuid FROM snapshot_devices WHERE run_id = ? AND stage = 'wave' ORDER BY device_id", (run,))]
        con.close()
        assert after == drawn
        per_device = sampled_wave_targets(sim, run)
        assert per_device == {u: 1 for u in drawn}, per_device
        assert not (set(drawn) & eu)
        assert sim.applied_per_marker()[f"{run}/eu"] == 1
        assert_db_clean(db)


@test
def retry_sends_again_to_the_failed_devices_only(tmp):
    """A canary fails on some devices and the run stops; rollout retry --failed-only sends
    one specific_device deploy_update to each failed device, and nothing to the others."""
    with Sim(tmp, FAILING) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(SRC / "tests/plans/retry.yaml"), "--state", db, "--yes", "--time-scale", SCALE,
                    api=sim.url)
        assert p.returncode == EXIT_STOPPED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        refused = rollout("retry", run, "canary", "--state", db, api=sim.url)
        assert refused.returncode == EXIT_INVALID and "--failed-only" in refused.stderr
        refused = rollout("retry", run, "eu", "--failed-only", "--state", db, api=sim.url)
        assert refused.returncode == EXIT_INVALID and "has not been dispatched" in refused.stderr
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        canary = next(s for s in shown["stages"] if s["name"] == "canary")
        assert canary["last_observation"]["failed"] > 0
        before = len(sim.requests())
        p = rollout("retry", run, "canary", "--failed-only", "--state", db, "--time-scale", SCALE, api=sim.url)
        assert p.returncode in (EXIT_OK, EXIT_STOPPED), p.stdout + p.stderr
        # Devices still updating when the gate failed may have failed since: at least as many.
        m = re.search(r"retry 1 of stage canary: (\d+) device\(s\) whose update failed", p.stdout)
        assert m, p.stdout
        failed_before = int(m.group(1))
        assert canary["last_observation"]["failed"] <= failed_before < 6
        retried = [r for r in sim.requests()[before:] if r["endpoint"] == "deploy_update"
                   and f"[rollout {run}/canary] (retry 1)" in r["body"]["metadata"].get("comment", "")]
        devices = [r["body"]["devices_filter"]["filters"][0]["value"] for r in retried if r.get("applied")]
        assert len(devices) == failed_before and len(set(devices)) == failed_before, retried
        assert all(r["body"]["devices_filter"]["filters"][0]["type"] == "specific_device" for r in retried)
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert any(e["kind"] == "retry" for e in shown["events"])
        times = [e["time"] for e in shown["events"]]
        assert times == sorted(times), "the retry's records went back in (simulated) time"
        assert_db_clean(db)


@test
def webhooks_get_the_run_in_order_and_a_dead_one_holds_nothing_up(tmp):
    """notify: a local receiver gets every milestone in order (JSON, and Slack's shape); a
    webhook that accepts connections and never answers delays nothing but the exit, by
    at most the grace, and its deliveries are recorded as not delivered."""
    import http.server
    import socket
    import threading
    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    good = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=good.serve_forever, daemon=True).start()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(64)  # the kernel completes connections; nobody ever answers
    with Sim(tmp, STEADY) as sim:
        started = time.monotonic()
        p = rollout("apply", str(PLAN), "--state", f"{tmp}/a.db", "--yes", "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_OK, p.stderr
        baseline = time.monotonic() - started

        plan = Path(tmp) / "notify.yaml"
        plan.write_text(PLAN.read_text() + f"""notify:
  - {{url: "http://127.0.0.1:{good.server_port}/hook"}}
  - {{url: "http://127.0.0.1:{dead.getsockname()[1]}/dead", events: [stage_passed, run_completed]}}
  - {{url: "http://127.0.0.1:{good.server_port}/slack", format: slack, events: [run_completed]}}
""")
        db = f"{tmp}/b.db"
        sim.restart()  # the same fleet, not yet updated
        started = time.monotonic()
        p = rollout("apply", str(plan), "--state", db, "--yes", "--time-scale", SCALE, api=sim.url)
        elapsed = time.monotonic() - started
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert elapsed < baseline + 7.5, (elapsed, baseline)  # the grace is 5 s

        hook = [b for path, b in received if path == "/hook"]
        events = [(b["event"], b["stage"]) for b in hook]
        assert events[0] == ("run_started", None) and events[-1] == ("run_completed", None), events
        for stage in ["canary", "eu", "us", "everyone"]:
            assert events.index(("stage_dispatched", stage)) < events.index(("stage_passed", stage)), events
        assert events.index(("stage_passed", "canary")) < events.index(("stage_dispatched", "eu"))
        assert events.index(("stage_passed", "us")) < events.index(("stage_dispatched", "everyone"))
        assert all(b["run"] == run and b["plan"] == "four-stage" for b in hook)
        times = [b["time"] for b in hook]
        assert times == sorted(times)
        slack = [b for path, b in received if path == "/slack"]
        assert len(slack) == 1 and slack[0]["text"].startswith(f"rollout {run} (four-stage): run_completed")

        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        notes = [e["message"] for e in shown["events"] if e["kind"] == "notify"]
        assert sum("webhook 1 (127.0.0.1:" in n and "delivered (HTTP 200)" in n for n in notes) == len(hook), notes
        dead_notes = [n for n in notes if n.startswith("webhook 2 ")]
        assert len(dead_notes) == 5, notes  # four stage_passed and run_completed, none delivered
        assert all("not delivered" in n or "abandoned" in n for n in dead_notes), dead_notes
        assert all("/dead" not in n for n in notes)  # only the host: a path may be a secret
        good.shutdown()
        dead.close()


rng = random.Random(args.kill_seed)
for i in range(args.random_kills):
    delay = rng.uniform(0.2, 2.5)

    def fn(tmp, delay=delay):
        kill_and_resume(tmp, kill_after=delay)
    fn.__name__ = f"sigkill_after_{delay:.2f}s_then_resume_dispatches_exactly_once"
    TESTS.append(fn)

run_tests(TESTS, args.only, args.skip)
