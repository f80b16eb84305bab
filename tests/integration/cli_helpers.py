"""What the `rollout` CLI suites share (tests/integration/test_cli_*.py, run by pytest through
ctest): `rollout sim` as a context manager, running the binary with the token in its
environment, and the checks on the state database. The binary and the source tree come from
pytest's --rollout and --source options (conftest.py)."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from e2e import EXIT_OK, SCALE, Env, Server, connect_state, on_a_terminal, run_id_of, run_of, state_tables

ROLLOUT = Env.rollout
SRC = Env.src
PLAN = SRC / "tests/plans/four-stage.yaml"
CANARY_PLAN = SRC / "plans/canary-then-fleet.yaml"
STEADY = SRC / "tests/fleets/steady.yaml"
FAILING = SRC / "tests/fleets/failing-canary.yaml"
TOKEN = "tok-SECRET-5f3c9a"


class Sim(Server):
    """rollout sim in its own process, with a request log, from a fleet file and raw flags."""

    def __init__(self, workdir, fleet, extra=(), scale=SCALE):
        self.started_with = (workdir, fleet, extra, scale)
        self.log = Path(workdir) / f"requests-{time.monotonic_ns()}.jsonl"
        self.proc = subprocess.Popen([ROLLOUT, "sim", "--fleet", str(fleet), "--listen", "127.0.0.1:0",
                                      "--time-scale", scale, "--request-log", str(self.log), *extra],
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


def assert_db_clean(db):
    con = connect_state(db)
    for table in state_tables(con):
        for row in con.execute(f"SELECT * FROM {table}").fetchall():
            assert TOKEN not in repr(row), f"the token is in table {table}"
    con.close()


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
        run = run_of(out, db, sim)
        if run is None:
            return  # killed before it created the run: nothing was sent (run_of checked)
        for _ in range(5):
            if proc.returncode == EXIT_OK:
                break
            # Killed after the run completed but before the process exited: nothing to resume.
            shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
            if shown["status"] == "completed":
                break
            proc = rollout("resume", run, "--state", db, "--time-scale", SCALE, api=sim.url)
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["status"] == "completed", proc.stdout + proc.stderr
        applied = sim.applied_per_marker()
        assert applied == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}, applied
        assert_db_clean(db)
        assert_times_in_order(db, run)


def assert_times_in_order(db, run):
    """A time-scaled run's records never go back in time, across its kills and resumes: each
    resumed process's clock starts where the records of the one before it end."""
    con = connect_state(db)
    events = con.execute("SELECT id, at, kind FROM events WHERE run_id = ? ORDER BY id", (run,)).fetchall()
    con.close()
    for before, after in zip(events, events[1:]):
        assert after[1] >= before[1], f"event {after} is earlier than {before}"


EVENT_SCHEMA = json.loads((SRC / "schema/events.schema.json").read_text())
SOME_FAILURES = SRC / "tests/fleets/some-failures.yaml"


def parse_time(text):
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def read_pty(argv, env_extra):
    """Runs rollout on a pseudo-terminal (100 columns); returns all it wrote."""
    env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, **env_extra)
    if "NO_COLOR" not in env_extra:
        env.pop("NO_COLOR", None)
    return on_a_terminal([ROLLOUT, *argv], env)


PREVIEW_PLAN = SRC / "tests/plans/preview.yaml"
PREVIEW_FLEET = SRC / "tests/fleets/preview.yaml"
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
