"""Exactly once under faults that real networks and machines produce, end to end.

Each test runs the rollout binary against two servers: `rollout sim`, and
tests/fakes/upswift_fake.py, a second Upswift fake written from the API contract alone.
Counts come from the servers' own request logs: a deploy_update the server applied.

Run: python3 -m pytest tests/integration/test_never_twice.py --rollout BIN [--seeds N]
[--first-seed S] [--freezes N] (conftest.py); --seeds: fault-mix trials (each with a SIGKILL at
a random moment and resumes); --freezes: SIGSTOP-past-the-lease, takeover, SIGCONT trials.
"""
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time

from e2e import (connect_state, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, EXIT_PAUSED, EXIT_STOPPED, SCALE,
                 Env, Server, assert_state_sound, rollout, run_id_of, run_of, start_apply, started)
from cli_helpers import sampled_wave_targets

ROLLOUT = Env.rollout
SRC = Env.src
PLAN = SRC / "tests/plans/four-stage.yaml"
APPROVAL_PLAN = SRC / "tests/plans/approval-four-stage.yaml"
SAMPLED_PLAN = SRC / "tests/plans/sampled.yaml"
STAGES = ["canary", "eu", "us", "everyone"]


def resume_until_done(run, db, url, first, tries=8, env_extra=None):
    """Resumes after errors and kills; a gate left inconclusive by reads that kept failing
    (429s) is approved, as a person would, and resumed."""
    p = first
    for _ in range(tries):
        if p.returncode in (EXIT_OK, EXIT_STOPPED):
            return p
        if p.returncode == EXIT_PAUSED:
            # Each once: the pause is said twice (its event and the last line), and a second
            # approval of the same pause is refused.
            for stage in sorted(set(re.findall(r"(\w+) \(inconclusive gate\)", p.stdout))):
                assert rollout("approve", run, stage, "--state", db).returncode == EXIT_OK
        else:
            assert p.returncode in (EXIT_ERROR, -signal.SIGKILL, 130), (p.returncode, p.stdout, p.stderr)
        p = rollout("resume", run, "--state", db, "--time-scale", SCALE, url=url, env_extra=env_extra)
    return p


def assert_each_stage_once(server, run):
    applied = server.applied_per_marker()
    assert applied == {f"{run}/{s}": 1 for s in STAGES}, applied




def every_answer_dropped(tmp, kind):
    # Every deploy_update applied and its connection closed unanswered; reads on keep-alive
    # connections before it (and, on the fake, idle connections closed at random moments).
    faults = {"drop_after_apply": 1.0}
    if kind == "fake":
        faults["idle_close"] = 0.3
    with Server(tmp, kind, faults) as server:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, url=server.url)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert_each_stage_once(server, run)
        assert "Upswift accepted" not in p.stdout  # no answer came: it was never said
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert [c["outcome"] for c in shown["api_calls"]] == ["settled_applied"] * 4, shown["api_calls"]
        assert_state_sound(db, run=run, url=server.url)


def test_every_deploy_answer_dropped_after_applying_is_applied_once_sim(tmp):
    every_answer_dropped(tmp, "sim")


def test_every_deploy_answer_dropped_after_applying_is_applied_once_fake(tmp):
    every_answer_dropped(tmp, "fake")


def test_an_answer_lost_while_a_sibling_fails_is_settled_then_rolled_back(tmp):
    """eu's deploy_update is applied and only its answer lost (the fake closes that one
    connection); us's devices fail, so us fails its gate well before eu's settle is due (2 s
    at this time scale). The run ends only once eu's outcome is read from its devices: eu is
    dispatched, rolled back with us, and sent its update once."""
    lost = SRC / "tests/plans/lost-answer.yaml"
    with Server(tmp, "fake", fake_args=("--drop-answer-to", "/eu]", "--fail-group", "US:73a7-1ft8")) as server:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(lost), "--state", db, "--yes", "--time-scale", "30", url=server.url)
        assert p.returncode == EXIT_STOPPED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert server.applied_per_marker() == {f"{run}/eu": 1, f"{run}/us": 1, f"{run}/eu/rollback": 1,
                                               f"{run}/us/rollback": 1}, server.applied_per_marker()
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        stages = {s["name"]: s for s in shown["stages"]}
        assert stages["eu"]["status"] == "rolled_back", stages["eu"]
        assert stages["eu"]["dispatched"], stages["eu"]
        assert stages["us"]["status"] == "rolled_back", stages["us"]
        assert stages["everyone"]["status"] == "waiting", stages["everyone"]
        eu_calls = [c for c in shown["api_calls"] if c["stage"] == "eu" and c["kind"] == "dispatch"]
        assert [c["outcome"] for c in eu_calls] == ["settled_applied"], eu_calls
        # us failed while eu's outcome was unknown: the order of the events says so.
        events = [(e["stage"], e["kind"]) for e in shown["events"]]
        assert events.index(("us", "stage_failed")) < events.index(("eu", "dispatched")), events
        # Its devices were read before the run ended: each has its update, none is unread.
        devices = stages["eu"]["device_states"]
        assert len(devices) == 16 and all(d["update_id"] for d in devices), devices
        assert_state_sound(db, run=run, url=server.url)


def interrupted_with_eu_unknown(tmp, server):
    """The lost-answer run, SIGTERMed once us has failed and before eu's settle is due: the
    run is left interrupted with eu's call unknown. Then marked as an older version ended it:
    stopped, eu stopped. Returns the state and the run."""
    db = f"{tmp}/state.db"
    proc = start_apply(SRC / "tests/plans/lost-answer.yaml", db, server.url, scale="30")
    run = run_id_of(started(proc))
    for line in proc.stdout:
        if re.search(r"\bus +stage_failed:", line):
            proc.send_signal(signal.SIGTERM)
            break
    proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, proc.returncode
    con = connect_state(db)
    outcomes = con.execute("SELECT outcome FROM api_calls WHERE run_id = ? AND stage = 'eu'", (run,)).fetchall()
    assert outcomes == [("unknown",)], outcomes
    con.execute("UPDATE runs SET status = 'stopped' WHERE id = ?", (run,))
    con.execute("UPDATE stages SET status = 'stopped' WHERE run_id = ? AND name = 'eu'", (run,))
    con.commit()
    con.close()
    return db, run


def test_a_terminal_run_left_with_an_unknown_call_is_repaired_by_resume(tmp):
    with Server(tmp, "fake", fake_args=("--drop-answer-to", "/eu]", "--fail-group", "US:73a7-1ft8")) as server:
        db, run = interrupted_with_eu_unknown(tmp, server)
        # Nothing else may be done with it first: it is not over.
        p = rollout("abort", run, "--state", db)
        assert p.returncode == EXIT_INVALID and "rollout resume" in p.stderr, p.stdout + p.stderr
        p = rollout("resume", run, "--state", db, "--time-scale", "30", url=server.url)
        assert p.returncode == EXIT_STOPPED, p.stdout + p.stderr
        assert "was never settled: reading the devices to settle them" in p.stdout, p.stdout
        applied = server.applied_per_marker()
        assert applied[f"{run}/eu"] == 1 and applied[f"{run}/eu/rollback"] == 1, applied
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert {s["name"]: s["status"] for s in shown["stages"]}["eu"] == "rolled_back", shown["stages"]
        assert_state_sound(db, run=run, url=server.url)
        p = rollout("resume", run, "--state", db, url=server.url)
        assert p.returncode == EXIT_INVALID and "nothing to resume" in p.stderr, p.stderr


def test_a_terminal_run_left_with_an_unknown_call_is_repaired_by_abort_rollback(tmp):
    with Server(tmp, "fake", fake_args=("--drop-answer-to", "/eu]", "--fail-group", "US:73a7-1ft8")) as server:
        db, run = interrupted_with_eu_unknown(tmp, server)
        p = rollout("abort", run, "--rollback", "--state", db, "--time-scale", "30", url=server.url)
        assert p.returncode == EXIT_STOPPED, p.stdout + p.stderr
        applied = server.applied_per_marker()
        assert applied[f"{run}/eu"] == 1 and applied[f"{run}/eu/rollback"] == 1, applied
        assert_state_sound(db, run=run, url=server.url)


def foreign_answers(tmp, kind):
    with Server(tmp, kind, {"foreign_200": 1.0}) as server:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, url=server.url)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert_each_stage_once(server, run)
        assert "Upswift accepted" not in p.stdout, p.stdout
        assert "instead of Upswift's answer" in p.stdout
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert all(c["outcome"] == "settled_applied" for c in shown["api_calls"]), shown["api_calls"]
        assert_state_sound(db)


def test_html_empty_or_other_200_is_an_unknown_outcome_settled_from_devices_sim(tmp):
    foreign_answers(tmp, "sim")


def test_html_empty_or_other_200_is_an_unknown_outcome_settled_from_devices_fake(tmp):
    foreign_answers(tmp, "fake")


def apply_killed_at_random(plan, db, server, rng):
    """An apply SIGKILLed at a random moment of its first 2 s (unless it ended before): the
    process as it ended, and its run. A kill that came before the run was made (nothing may
    have been sent then: run_of checks) is drawn again, within 2 s of the run's first line
    this time (a loaded machine, or a new PostgreSQL database's migrations, can take longer
    than 2 s to get there), so that every trial goes on to its resumes."""
    proc = start_apply(plan, db, server.url)
    first = ""
    try:
        out, err = proc.communicate(timeout=rng.uniform(0.05, 2.0))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    run = run_of(out, db, server)
    if run is None:
        proc = start_apply(plan, db, server.url)
        first = started(proc)
        try:
            out, err = proc.communicate(timeout=rng.uniform(0.0, 2.0))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
        run = run_of(first + out, db, server)
    return subprocess.CompletedProcess(proc.args, proc.returncode, first + out, err), run


def fault_mix_trial(tmp, seed, plan=PLAN):
    """429s, 500s, answers dropped after applying, idle keep-alive connections closed, and a
    SIGKILL at a random moment, then resumes until the run ends: each stage applied once (each
    device of a sampled wave, whose calls go out in batches written ahead together)."""
    rng = random.Random(seed)
    kind = "sim" if seed % 2 else "fake"
    faults = {"throttle": 0.3, "error_500": 0.1, "drop_after_apply": 0.5}
    if kind == "fake":
        faults["idle_close"] = 0.3
    with Server(tmp, kind, faults, seed=seed) as server:
        db = f"{tmp}/state.db"
        first, run = apply_killed_at_random(plan, db, server, rng)
        p = resume_until_done(run, db, server.url, first)
        assert_state_sound(db, run=run, url=server.url)
        applied = server.applied_per_marker()
        if plan == SAMPLED_PLAN:
            wave = sampled_wave_targets(server, run)
            assert all(n == 1 for n in wave.values()), wave  # never twice to a device
            applied.pop(f"{run}/wave", None)
        assert all(n == 1 for n in applied.values()), applied  # never twice
        if p.returncode == EXIT_STOPPED:
            # Three deploy_update attempts that certainly did not take (500s, or intents cut
            # off by the SIGKILL before they were sent) stop a stage: a person looks. Nothing
            # was sent twice on the way.
            assert "did not go through in 3 attempts" in p.stdout, (kind, seed, p.stdout, p.stderr)
            return
        assert p.returncode == EXIT_OK, (kind, seed, p.stdout, p.stderr)
        if plan == SAMPLED_PLAN:
            assert applied == {f"{run}/eu": 1} and len(wave) == 5, (applied, wave)
        else:
            assert_each_stage_once(server, run)




LEASE_MS = "1500"


def in_a_write(db, pid):
    """Whether the process holds a transaction open: SQLite's write lock is taken, or its
    PostgreSQL session is idle in a transaction."""
    if Env.backend == "postgresql":
        con = connect_state(db)
        try:
            return con.execute("SELECT 1 FROM pg_stat_activity WHERE application_name = 'rollout' "
                               "AND datname = current_database() AND state <> 'idle'").fetchone() is not None
        finally:
            con.close()
    con = sqlite3.connect(db, timeout=0)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        con.close()


def freeze_outside_a_write(proc, db):
    """SIGSTOP, but not inside a transaction: its locks would stay with the frozen process,
    and every other writer would be told to try again (which is right, but is not the takeover
    this test is after)."""
    for _ in range(200):
        proc.send_signal(signal.SIGSTOP)
        if not in_a_write(db, proc.pid):
            return
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.003)
    raise AssertionError("could not freeze the process outside a write")


def freeze_trial(tmp, seed):
    """SIGSTOP at a random moment, for longer than the lease; another process takes the run
    over and completes it; SIGCONT: the thawed process sends nothing and exits 1, saying who
    took the run over. A run that ended before its freeze is tried again, the moment drawn
    from a window half as long each time; one that always ends first fails the trial."""
    rng = random.Random(seed)
    for attempt in range(4):
        if freeze_attempt(f"{tmp}/try{attempt}", seed, rng.uniform(0.05, 1.0) / 2 ** attempt):
            return
    raise AssertionError("the run ended before its freeze four times: the trial tested nothing")


def freeze_attempt(tmp, seed, delay):
    """One freeze trial, frozen `delay` s after the run started; False when it ended first."""
    os.makedirs(tmp, exist_ok=True)
    kind = "fake" if seed % 2 else "sim"
    with Server(tmp, kind, {"throttle": 0.2}, seed=seed) as server:
        db = f"{tmp}/state.db"
        lease = {"ROLLOUT_TEST_LEASE_MS": LEASE_MS}
        proc = start_apply(PLAN, db, server.url, env_extra=lease)
        first = started(proc)
        time.sleep(delay)
        if proc.poll() is not None:
            out, err = proc.communicate()
            assert proc.returncode == EXIT_OK, first + out + err  # finished before the freeze
            return False
        freeze_outside_a_write(proc, db)
        # Seen as a live run until the lease is stale: refused, naming the frozen process.
        early = rollout("resume", "last", "--state", db, "--time-scale", SCALE, url=server.url, env_extra=lease)
        assert early.returncode == EXIT_ERROR and f"(pid {proc.pid})" in early.stderr, early.stderr
        time.sleep(int(LEASE_MS) / 1000 + 0.5)
        taken = rollout("resume", "last", "--state", db, "--time-scale", SCALE, url=server.url, env_extra=lease)
        run = run_id_of(taken.stdout)
        assert taken.returncode == EXIT_OK, taken.stdout + taken.stderr
        before = server.applied_per_marker()
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == EXIT_ERROR, (proc.returncode, out, err)
        assert f"run {run} was taken over by" in err, err
        assert "sent and wrote nothing more" in err, err
        assert "terminate called" not in err
        assert server.applied_per_marker() == before
        assert_each_stage_once(server, run)
        assert_state_sound(db, run=run, url=server.url)
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["status"] == "completed", shown["status"]
        return True


def test_two_applies_at_once_of_one_plan_one_is_refused(tmp):
    with Server(tmp, "sim") as server:
        db = f"{tmp}/state.db"
        procs = [start_apply(PLAN, db, server.url) for _ in range(2)]
        results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
        codes = sorted(r[2] for r in results)
        assert codes == [EXIT_OK, EXIT_ERROR], results
        ran = next(r for r in results if r[2] == EXIT_OK)
        refused = next(r for r in results if r[2] == EXIT_ERROR)
        run = run_id_of(ran[0])
        assert f"refusing to start: run {run} (plan 'four-stage') is live" in refused[1], refused[1]
        assert "it runs the same plan 'four-stage'" in refused[1]
        assert "--allow-concurrent" in refused[1]
        assert_each_stage_once(server, run)
        runs = json.loads(rollout("runs", "--state", db, "--output", "json").stdout)
        assert [r["id"] for r in runs] == [run]  # the refused one wrote nothing
        assert_state_sound(db)


def test_resuming_an_old_run_beside_a_live_one_of_the_same_plan_is_refused(tmp):
    with Server(tmp, "sim") as server:
        db = f"{tmp}/state.db"
        # The old run: paused at its approval, nobody runs it.
        old = rollout("apply", str(APPROVAL_PLAN), "--state", db, "--yes", "--time-scale", SCALE, url=server.url)
        assert old.returncode == EXIT_PAUSED, old.stdout + old.stderr
        old_run = run_id_of(old.stdout)
        rollout("approve", old_run, "us", "--state", db)
        # A new run of the same plan goes, slowly.
        new = start_apply(APPROVAL_PLAN, db, server.url, scale="60", extra=["--allow-concurrent"])
        time.sleep(1.5)
        before = server.applied_per_marker()
        refused = rollout("resume", old_run, "--state", db, "--time-scale", SCALE, url=server.url)
        assert refused.returncode == EXIT_ERROR, refused.stdout + refused.stderr
        assert "refusing to start: run" in refused.stderr and "it runs the same plan" in refused.stderr
        assert server.applied_per_marker().get(f"{old_run}/us", 0) == 0
        assert before.get(f"{old_run}/us", 0) == 0
        new.send_signal(signal.SIGKILL)
        new.wait(timeout=30)
        # Its process is gone (a dead pid on this host): it holds nothing back now, though its
        # lease is still fresh; the old run goes on.
        r = rollout("resume", old_run, "--state", db, "--time-scale", SCALE, url=server.url)
        assert r.returncode == EXIT_OK, r.stdout + r.stderr
        applied = server.applied_per_marker()
        assert all(applied.get(f"{old_run}/{s}") == 1 for s in STAGES), applied
        assert_state_sound(db, open_intents_allowed=True)


def test_allow_concurrent_runs_both(tmp):
    with Server(tmp, "sim") as server:
        db = f"{tmp}/state.db"
        first = start_apply(PLAN, db, server.url, extra=["--allow-concurrent"])
        time.sleep(0.3)
        second = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, "--no-progress",
                         "--allow-concurrent", url=server.url)
        out, err = first.communicate(timeout=120)
        # Both ran (on the same devices, so their gates may judge each other's updates: one
        # may stop, or wait for a person on a gate made inconclusive by the other's update);
        # neither sent a call twice.
        assert "refusing" not in second.stderr, second.stderr
        for code, said in ((first.returncode, out), (second.returncode, second.stdout)):
            assert code in (EXIT_OK, EXIT_STOPPED, EXIT_PAUSED), (code, out, err, second.stderr)
            assert code != EXIT_PAUSED or "(inconclusive gate)" in said, said
        applied = server.applied_per_marker()
        for run in (run_id_of(out), run_id_of(second.stdout)):
            assert applied.get(f"{run}/canary") == 1, applied
        assert all(n == 1 for m, n in applied.items() if not m.endswith("/rollback")), applied


def test_abort_with_rollback_of_a_paused_run_rolls_back_once(tmp):
    with Server(tmp, "sim") as server:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(APPROVAL_PLAN), "--state", db, "--yes", "--time-scale", SCALE, url=server.url)
        assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        a = rollout("abort", run, "--rollback", "--state", db, "--time-scale", SCALE, url=server.url)
        assert a.returncode == EXIT_STOPPED, a.stdout + a.stderr
        assert "terminate called" not in a.stderr
        applied = server.applied_per_marker()
        # canary and eu had been dispatched; each device they reached gets one rollback: eu by
        # one call to its groups, canary (selected by online state) one call per device.
        assert applied == {f"{run}/canary": 1, f"{run}/eu": 1, f"{run}/canary/rollback": 6,
                           f"{run}/eu/rollback": 1}, applied
        per_device = [r["body"]["devices_filter"]["filters"][0]["value"] for r in server.requests()
                      if r["endpoint"] == "deploy_update" and r.get("applied")
                      and "/canary/rollback]" in r["body"]["metadata"]["comment"]]
        assert len(set(per_device)) == 6, per_device
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["status"] == "aborted", shown["status"]
        assert shown["reason"].startswith("aborted by "), shown["reason"]
        assert "rollback" in shown["reason"]
        kinds = [e["kind"] for e in shown["events"]]
        assert kinds.count("rollback") == 2 and kinds.count("rolled_back") == 2, kinds
        statuses = {s["name"]: s["status"] for s in shown["stages"]}
        assert statuses["canary"] == "rolled_back" and statuses["eu"] == "rolled_back", statuses
        again = rollout("resume", run, "--state", db)
        assert again.returncode == EXIT_INVALID
        assert_state_sound(db)



def wait_for_dispatch(db, stage, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            con = connect_state(db)
            done = con.execute("SELECT 1 FROM api_calls WHERE stage = ? AND outcome IS NOT NULL",
                               (stage,)).fetchone()
            con.close()
            if done:
                return
        except Exception:  # not created yet, or busy: look again
            pass
        time.sleep(0.05)
    raise AssertionError(f"{stage} was not dispatched within {timeout}s")


def abort_rollback_of(tmp, how):
    """`abort --rollback` of a running run (its own process rolls back at its next heartbeat)
    or of an interrupted one (killed: the abort's process does it): canary, the one stage
    dispatched, rolled back once per device; the operator's reason."""
    with Server(tmp, "sim") as server:
        db = f"{tmp}/state.db"
        proc = start_apply(PLAN, db, server.url, scale="20")
        wait_for_dispatch(db, "canary")
        if how == "interrupted":
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        a = rollout("abort", "last", "--rollback", "--state", db, "--time-scale", "20", url=server.url)
        if how == "running":
            assert a.returncode == EXIT_OK and "recorded" in a.stdout, a.stdout + a.stderr
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == EXIT_STOPPED, (proc.returncode, out, err)
        else:
            assert a.returncode == EXIT_STOPPED, a.stdout + a.stderr
        run = json.loads(rollout("show", "last", "--state", db, "--output", "json").stdout)
        applied = server.applied_per_marker()
        assert applied == {f"{run['id']}/canary": 1, f"{run['id']}/canary/rollback": 6}, applied
        assert run["status"] == "aborted" and run["reason"].startswith("aborted by "), run["reason"]
        assert_state_sound(db)


def test_abort_with_rollback_of_a_running_run_rolls_back_once(tmp):
    abort_rollback_of(tmp, "running")


def test_abort_with_rollback_of_an_interrupted_run_rolls_back_once(tmp):
    abort_rollback_of(tmp, "interrupted")


def test_a_call_queued_in_the_rate_limiter_of_a_frozen_process_is_never_sent(tmp):
    """A sampled wave at one call a second, at real speed: after its first call the next
    waits in the client's rate limiter. Frozen there past the lease, the run is taken over
    and completed; thawed, the waiting call is not sent."""
    with Server(tmp, "sim") as server:
        db = f"{tmp}/state.db"
        lease = {"ROLLOUT_TEST_LEASE_MS": LEASE_MS}
        plan = SRC / "tests/plans/sampled-slow.yaml"
        proc = start_apply(plan, db, server.url, scale="1", env_extra=lease)
        deadline = time.monotonic() + 30
        while sum(server.applied_per_marker().values()) < 1:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        # The second call's intent is written and the call waits for its slot, 1 s after the
        # first: frozen just before it. On thawing, two barriers stand before its first byte:
        # the fenced heartbeat, overdue too, and the lease check just before the request is
        # written (the client test "a deploy_update the send guard refuses" covers that one
        # alone); either way, it is not sent.
        time.sleep(0.85)
        freeze_outside_a_write(proc, db)
        time.sleep(int(LEASE_MS) / 1000 + 0.5)
        taken = rollout("resume", "last", "--state", db, "--time-scale", SCALE, url=server.url, env_extra=lease)
        assert taken.returncode == EXIT_OK, taken.stdout + taken.stderr
        run = run_id_of(taken.stdout)
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == EXIT_ERROR, (proc.returncode, out, err)
        assert f"run {run} was taken over by" in err, err
        per_device = [r["body"]["devices_filter"]["filters"][0]["value"] for r in server.requests()
                      if r["endpoint"] == "deploy_update" and r.get("applied")]
        assert len(per_device) == 6 and len(set(per_device)) == 6, per_device
        assert_state_sound(db)


def pytest_generate_tests(metafunc):
    """--seeds fault mixes and --freezes freeze trials, seeds from --first-seed (a seed replays
    its trial: the same faults, the same moments; the seed also picks the server, `rollout
    sim` or the contract-only fake)."""
    first = Env.options.first_seed
    for name, count in (("mix_seed", Env.options.seeds), ("freeze_seed", Env.options.freezes),
                        ("sampled_seed", max(1, Env.options.seeds // 2)),
                        ("failing_seed", max(1, Env.options.seeds // 3))):
        if name in metafunc.fixturenames:
            seeds = list(range(first, first + count))
            metafunc.parametrize(name, seeds, ids=[f"seed{s}" for s in seeds])


def test_fault_mix_sigkill_and_resume_applies_each_stage_once(tmp, mix_seed):
    fault_mix_trial(tmp, mix_seed)


def test_fault_mix_with_failing_devices_rolls_back_and_leaves_nothing_unknown(tmp, failing_seed):
    """The fault mix (429s, 500s, half the answers dropped after applying, idle connections
    closed) against the contract-only fake whose US devices fail their update, with a SIGKILL
    at a random moment: the run ends with us failed and rolled back, eu rolled back with it
    when it was still in flight, nothing sent twice, and no call of the ended run unknown."""
    rng = random.Random(failing_seed)
    faults = {"throttle": 0.3, "error_500": 0.1, "drop_after_apply": 0.5, "idle_close": 0.3}
    with Server(tmp, "fake", faults, seed=failing_seed, fake_args=("--fail-group", "US:73a7-1ft8")) as server:
        db = f"{tmp}/state.db"
        first, run = apply_killed_at_random(PLAN, db, server, rng)
        p = resume_until_done(run, db, server.url, first)
        assert p.returncode == EXIT_STOPPED, (failing_seed, p.stdout, p.stderr)
        assert_state_sound(db, run=run, url=server.url)
        applied = server.applied_per_marker()
        assert all(n == 1 for n in applied.values()), applied  # never twice
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        stages = {s["name"]: s["status"] for s in shown["stages"]}
        if "did not go through in 3 attempts" not in p.stdout:
            assert stages["us"] == "rolled_back", stages
            assert f"{run}/us/rollback" in applied, applied
        assert stages["everyone"] == "waiting", stages


def test_fault_mix_on_a_sampled_wave_applies_each_device_once(tmp, sampled_seed):
    fault_mix_trial(tmp, sampled_seed, plan=SAMPLED_PLAN)


def test_freeze_past_the_lease_takeover_then_thaw_sends_nothing_and_exits_1(tmp, freeze_seed):
    freeze_trial(tmp, freeze_seed)
