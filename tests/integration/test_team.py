"""A team on one PostgreSQL server (ctest: team_pg, --state-backend=postgresql): two
`rollout` processes with different HOSTNAMEs share one database. One applies; the other
approves (the running apply moves at once: NOTIFY, not its next check), watches, is refused
a second run of the same groups (told whose run it is), aborts it, and takes a run over once
its process was killed and its lease went stale (no pid can be checked on another host)."""
import json
import signal
import subprocess
import time

import pytest

from e2e import (EXIT_INVALID, EXIT_ERROR, EXIT_OK, EXIT_PAUSED, EXIT_STOPPED, SCALE, Env, Server, assert_state_sound,
                 env_for, rollout, run_id_of, start_apply)

# Gates poll every 30 s and eu bakes for a minute: in the wall time this test takes, the
# apply wakes by itself only for its own checks (every 5 s). Three stages wait for approval.
PLAN = """
version: 1
name: team-fw
flow_id: 73a7-1ft8
project: Demo
app: {name: default_app, version: v2.4}
defaults:
  gate: {bake: 0s, timeout: 1h, poll: 30s, min_success: 50%, max_failed: 50%}
stages:
  - name: canary
    groups: [Canary]
    gate: {poll: 1s}
  - name: eu
    needs: [canary]
    groups: [EU-North]
    gate: {bake: 1m}
  - name: south
    needs: [canary]
    groups: [EU-South]
    approval: required
  - name: us
    needs: [canary]
    groups: [US]
    approval: required
  - name: rest
    needs: [canary]
    groups: [Rest]
    approval: required
"""

BUILD_HOST = {"HOSTNAME": "build-host"}
LAPTOP = {"HOSTNAME": "oncall-laptop"}


@pytest.fixture
def team(tmp):
    if Env.backend != "postgresql":
        pytest.skip("a team shares a PostgreSQL server: run with --state-backend=postgresql")
    import pg_state
    plan = f"{tmp}/team.yaml"
    with open(plan, "w") as f:
        f.write(PLAN)
    # The server's URL, as a team would give it (each process maps nothing: it is a URL).
    return plan, pg_state.url_for(f"{tmp}/team.db")


def wait_for_line(proc, stage, kind, timeout=60):
    """Reads the apply's plain lines until the event `kind` of `stage`; when it was read."""
    needle = f"{stage:<12} {kind}:"
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return time.monotonic()
    raise AssertionError(f"no line with {needle!r}: {''.join(seen)}")


def test_one_host_applies_another_approves_watches_is_refused_and_aborts(team, tmp):
    plan, state = team
    with Server(tmp, "sim") as server:
        # Time as it passes (scale 1): the apply's own approval check comes every 5 s.
        apply = start_apply(plan, state, server.url, scale="1", env_extra=BUILD_HOST)
        for stage in ("south", "us", "rest"):
            wait_for_line(apply, stage, "approval_needed")
        shown = json.loads(rollout("show", "last", "--state", state, "--output", "json",
                                   env_extra=LAPTOP).stdout)
        run = shown["id"]
        assert shown["status"] == "running"

        # The other host's view of the live run names the build host; it watches it to its end.
        status = rollout("status", run, "--state", state, env_extra=LAPTOP)
        assert status.returncode == EXIT_OK and "us" in status.stdout, status.stdout + status.stderr
        assert "@build-host (pid" in status.stdout, status.stdout
        watch = subprocess.Popen([Env.rollout, "status", run, "--state", state, "--watch", "--interval", "1s"],
                                 env=env_for("", LAPTOP), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)

        # A second run of the same groups from the laptop: refused, with whose run it is.
        again = rollout("apply", plan, "--state", state, "--yes", "--time-scale", "1", url=server.url,
                        env_extra=LAPTOP)
        assert again.returncode == EXIT_ERROR, again.stdout + again.stderr
        assert f"run {run} (plan 'team-fw') is live" in again.stderr
        assert "@build-host (pid" in again.stderr and "--allow-concurrent" in again.stderr

        # Approved from the laptop, one stage after another: the build host dispatches each
        # at once (its own checks would take up to 5 s: four in a row under a second each by
        # chance, about one time in 600).
        for stage in ("south", "us", "rest"):
            a = rollout("approve", run, stage, "--comment", "from the laptop", "--state", state,
                        env_extra=LAPTOP)
            assert a.returncode == EXIT_OK, a.stdout + a.stderr
            approved_at = time.monotonic()
            started_at = wait_for_line(apply, stage, "stage_started")
            assert started_at - approved_at < 1.0, f"the approval of {stage} waited for the apply's own check"

        # Aborted from the laptop while the stages gate: the build host stops at once.
        b = rollout("abort", run, "--state", state, env_extra=LAPTOP)
        aborted_at = time.monotonic()
        assert b.returncode == EXIT_OK and "recorded" in b.stdout, b.stdout + b.stderr
        out, err = apply.communicate(timeout=30)
        assert time.monotonic() - aborted_at < 1.0, "the abort waited for the apply's heartbeat"
        assert apply.returncode == EXIT_STOPPED, out + err
        watched, _ = watch.communicate(timeout=30)
        assert watch.returncode == EXIT_STOPPED, watched  # the run's own exit code
        assert "aborted" in watched.split("--- ")[-1], watched  # it followed the run to its end
        shown = json.loads(rollout("show", run, "--state", state, "--output", "json").stdout)
        assert shown["status"] == "aborted"
        assert [a["by"] for a in shown["approvals"]] and shown["approvals"][0]["comment"] == "from the laptop"
        applied = server.applied_per_marker()
        assert all(n == 1 for n in applied.values()), applied
        assert_state_sound(state)


def test_a_run_whose_host_died_is_taken_over_from_another_once_its_lease_is_stale(team, tmp):
    plan, state = team
    lease = {"ROLLOUT_TEST_LEASE_MS": "2000"}
    with Server(tmp, "sim") as server:
        apply = start_apply(plan, state, server.url, scale=SCALE, env_extra={**BUILD_HOST, **lease})
        wait_for_line(apply, "eu", "dispatched")
        apply.send_signal(signal.SIGKILL)
        apply.communicate()
        killed_at = time.monotonic()
        run = json.loads(rollout("show", "last", "--state", state, "--output", "json").stdout)["id"]

        # From the laptop, at once: the build host's pid cannot be checked from here, so its
        # lease holds until it is stale.
        early = rollout("resume", run, "--state", state, "--time-scale", SCALE, url=server.url,
                        env_extra={**LAPTOP, **lease})
        if time.monotonic() - killed_at < 1.5:
            assert early.returncode == EXIT_ERROR, early.stdout + early.stderr
            assert "build-host" in early.stderr, early.stderr

        time.sleep(2.5)
        later = rollout("resume", run, "--state", state, "--time-scale", SCALE, url=server.url,
                        env_extra={**LAPTOP, **lease})
        assert later.returncode == EXIT_PAUSED, later.stdout + later.stderr  # approvals awaited
        for stage in ("south", "us", "rest"):
            a = rollout("approve", run, stage, "--state", state, env_extra=LAPTOP)
            assert a.returncode == EXIT_OK, a.stdout + a.stderr
        done = rollout("resume", run, "--state", state, "--time-scale", SCALE, url=server.url,
                       env_extra={**LAPTOP, **lease})
        assert done.returncode == EXIT_OK, done.stdout + done.stderr
        shown = json.loads(rollout("show", run, "--state", state, "--output", "json").stdout)
        assert shown["status"] == "completed"
        applied = server.applied_per_marker()
        for stage in ("canary", "eu", "south", "us", "rest"):
            assert applied.get(f"{run}/{stage}") == 1, applied  # exactly once, across hosts
        assert_state_sound(state)


def test_a_password_in_the_state_url_is_refused_and_never_shown(team, tmp):
    plan, state = team
    with_password = state.replace("postgresql://rollout@", "postgresql://rollout:hunter2-secret@")
    p = rollout("apply", plan, "--state", with_password, "--yes", url="http://127.0.0.1:9/v1/")
    assert p.returncode == EXIT_INVALID, p.stdout + p.stderr  # bad input, as a plan's error is
    assert "hunter2-secret" not in p.stdout + p.stderr
    assert "PGPASSWORD" in p.stderr
    # Nor through ROLLOUT_STATE.
    q = rollout("runs", url="", env_extra={"ROLLOUT_STATE": with_password})
    assert q.returncode == EXIT_INVALID and "hunter2-secret" not in q.stdout + q.stderr
    # A state URL for a database that is not there: said so, with the URL and no password.
    missing = state[: state.rfind("/") + 1] + "no_such_db"
    r = rollout("runs", "--state", missing)
    assert r.returncode == EXIT_ERROR and "no_such_db" in r.stderr and "does not exist" in r.stderr, r.stderr
    assert EXIT_INVALID != r.returncode


def real_rollout(*argv, url="", env_extra=None):
    """The binary itself, not the suite's wrapper: its --state paths stay SQLite files."""
    p = subprocess.run([Env.real_rollout, *argv], env=env_for(url, env_extra), capture_output=True,
                       text=True, timeout=240)
    assert "terminate called" not in p.stderr, p.stderr
    return p


def test_state_migrate_copies_sqlite_into_postgresql_and_back_verified(team, tmp):
    plan, state = team
    sqlite_db, back = f"{tmp}/laptop.db", f"{tmp}/back.db"
    with Server(tmp, "sim") as server:
        done = real_rollout("apply", str(Env.src / "tests/plans/four-stage.yaml"), "--state", sqlite_db,
                            "--yes", "--time-scale", SCALE, url=server.url)
        assert done.returncode == EXIT_OK, done.stdout + done.stderr
        paused = real_rollout("apply", plan, "--state", sqlite_db, "--yes", "--time-scale", SCALE, url=server.url)
        assert paused.returncode == EXIT_PAUSED, paused.stdout + paused.stderr
        paused_run = run_id_of(paused.stdout)
        assert real_rollout("approve", paused_run, "us", "--comment", "ok", "--state", sqlite_db).returncode == 0

        m = real_rollout("state", "migrate", "--from", sqlite_db, "--to", state)
        assert m.returncode == EXIT_OK, m.stdout + m.stderr
        assert "copied 2 run(s)" in m.stdout and "(the same in both)" in m.stdout
        assert "events" in m.stdout and "api_calls" in m.stdout
        # Every run reads the same from both: records, events, approvals, calls.
        for run in json.loads(real_rollout("runs", "--state", sqlite_db, "--output", "json").stdout):
            a = real_rollout("show", run["id"], "--state", sqlite_db, "--output", "json", "--devices")
            b = real_rollout("show", run["id"], "--state", state, "--output", "json", "--devices")
            assert a.returncode == b.returncode == EXIT_OK, a.stderr + b.stderr
            assert json.loads(a.stdout) == json.loads(b.stdout)
        # Again: refused, nothing written twice.
        again = real_rollout("state", "migrate", "--from", sqlite_db, "--to", state)
        assert again.returncode == EXIT_ERROR and "already: nothing was copied" in again.stderr, again.stderr
        # The paused run goes on from PostgreSQL, approved as it was, each stage sent once.
        go_on = real_rollout("resume", paused_run, "--state", state, "--time-scale", SCALE, url=server.url)
        assert go_on.returncode == EXIT_PAUSED, go_on.stdout + go_on.stderr  # south and rest await theirs
        applied = server.applied_per_marker()
        assert all(n == 1 for n in applied.values()), applied
        assert applied.get(f"{paused_run}/us") == 1

        # And back into a new SQLite file, verified the same way.
        m2 = real_rollout("state", "migrate", "--from", state, "--to", back)
        assert m2.returncode == EXIT_OK, m2.stdout + m2.stderr
        a = real_rollout("show", paused_run, "--state", state, "--output", "json")
        b = real_rollout("show", paused_run, "--state", back, "--output", "json")
        assert json.loads(a.stdout) == json.loads(b.stdout)


def test_state_migrate_refuses_a_run_that_is_being_run(team, tmp):
    plan, state = team
    sqlite_db = f"{tmp}/busy.db"
    with Server(tmp, "sim") as server:
        proc = subprocess.Popen([Env.real_rollout, "apply", plan, "--state", sqlite_db, "--yes", "--time-scale", "1",
                                 "--no-progress"], env=env_for(server.url, BUILD_HOST), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_for_line(proc, "south", "approval_needed")
            m = real_rollout("state", "migrate", "--from", sqlite_db, "--to", state)
            assert m.returncode == EXIT_ERROR, m.stdout + m.stderr
            assert "is being run by" in m.stderr and "@build-host" in m.stderr and "nothing was copied" in m.stderr
            runs = real_rollout("runs", "--state", state, "--output", "json")
            assert runs.returncode == EXIT_OK and json.loads(runs.stdout) == [], runs.stdout + runs.stderr
        finally:
            proc.terminate()
            proc.communicate(timeout=30)


FOUR_STAGE = Env.src / "tests/plans/four-stage.yaml"


@pytest.fixture
def own_server(tmp):
    """A PostgreSQL server of this test's own (scripts/pg.sh), that it may stop and start
    without disturbing the suites that share the other one: its directory and URL."""
    if Env.backend != "postgresql":
        pytest.skip("about a PostgreSQL server: run with --state-backend=postgresql")
    import tempfile
    import os
    home = tempfile.mkdtemp(prefix="rollout-pg-own-")
    os.chmod(home, 0o755)  # the server's own user (as root: rollout-pg) goes through it
    where = f"{home}/server"
    subprocess.run(["bash", str(Env.src / "scripts/pg.sh"), "start", where], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        with open(f"{where}/password") as f:
            password = f.read().strip()
        with open(f"{where}/url") as f:
            url = f.read().strip()
        yield where, url, password
    finally:
        subprocess.run(["bash", str(Env.src / "scripts/pg.sh"), "stop", where], check=False)


def apply_until_dispatched(binary, state, env, server, *extra):
    """The four-stage apply in the background, once the server has seen its first deploy_update."""
    proc = subprocess.Popen([binary, "apply", str(FOUR_STAGE), "--state", state, "--yes", "--time-scale", "60",
                             "--no-progress", *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(r["endpoint"] == "deploy_update" for r in server.requests()):
        time.sleep(0.05)
    return proc


def test_a_postgresql_outage_of_seconds_mid_run_is_ridden_out(own_server, tmp):
    """The server stops for 4 s while the run bakes its canary: the run's next write finds the
    connection lost, makes it again with backoff, and the run completes, each stage's
    deploy_update applied once."""
    where, url, password = own_server
    binary = getattr(Env, "real_rollout", Env.rollout)
    with Server(tmp, "sim") as server:
        env = env_for(server.url, {"PGPASSWORD": password})
        proc = apply_until_dispatched(binary, url, env, server)
        subprocess.run(["bash", str(Env.src / "scripts/pg.sh"), "pause", where, "4"], check=True)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == EXIT_OK, out + err
        run = run_id_of(out)
        assert server.applied_per_marker() == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}


def test_with_state_retry_0s_an_outage_stops_the_run_resumable(own_server, tmp):
    where, url, password = own_server
    binary = getattr(Env, "real_rollout", Env.rollout)
    with Server(tmp, "sim") as server:
        env = env_for(server.url, {"PGPASSWORD": password})
        proc = apply_until_dispatched(binary, url, env, server, "--state-retry", "0s")
        subprocess.run(["bash", str(Env.src / "scripts/pg.sh"), "pause", where, "2"], check=True)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == EXIT_ERROR, out + err
        assert "rollout resume" in err, err
        run = run_id_of(out)
        p = subprocess.run([binary, "resume", run, "--state", url, "--time-scale", "60"], env=env,
                           capture_output=True, text=True, timeout=180)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        assert server.applied_per_marker() == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}


def test_a_state_database_dropped_mid_run_is_not_said_to_be_resumable(own_server, tmp):
    where, url, password = own_server
    import psycopg2
    binary = getattr(Env, "real_rollout", Env.rollout)
    base = url[: url.rfind("/") + 1]
    admin = psycopg2.connect(base + "postgres", password=password)
    admin.autocommit = True
    with admin.cursor() as c:
        c.execute("CREATE DATABASE doomed")
    state = base + "doomed"
    with Server(tmp, "sim") as server:
        env = env_for(server.url, {"PGPASSWORD": password})
        proc = apply_until_dispatched(binary, state, env, server)
        with admin.cursor() as c:
            c.execute("DROP DATABASE doomed WITH (FORCE)")
        out, err = proc.communicate(timeout=120)
        admin.close()
        assert proc.returncode == EXIT_ERROR, out + err
        assert "no longer exists" in err and "no resume can go on" in err, err
        assert "continue with `rollout resume" not in out + err, out + err
