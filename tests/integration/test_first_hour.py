"""The operator's first hour, typed as a newcomer types it: which devices failed, a stage
with nothing left to do, thresholds in devices, a simulated run paused and resumed (and
killed), approvals, saved plans from another folder, rehearsal exit codes, and the
messages around them.

Run: python3 -m pytest tests/integration/test_first_hour.py --rollout BIN (conftest.py).
"""
import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

from e2e import (EXIT_ERROR, EXIT_INVALID, EXIT_OK, EXIT_PAUSED, EXIT_STOPPED, SCALE, TOKEN, Env,
                 Server, applied_per_marker, assert_state_sound, on_a_terminal, rollout, run_id_of, start_apply)

args = Env.options
SRC = Env.src
FOUR_STAGE = SRC / "tests/plans/four-stage.yaml"
CANARY_PLAN = SRC / "plans/canary-then-fleet.yaml"
SMALL_FLEET = SRC / "examples/fleets/small.yaml"
STEADY_FLEET = SRC / "tests/fleets/steady.yaml"



def journal_applied(db, run):
    """How many times the in-process simulator of a --simulate run applied each marker: its
    journal is the simulator's request log under a header line."""
    lines = Path(f"{db}.sim/{run}.jsonl").read_text().splitlines()[1:]
    return applied_per_marker([json.loads(line) for line in lines])


def test_a_failed_gate_says_which_devices_on_which_update_since_when(tmp):
    with Server(tmp, "sim", fleet="tests/fleets/failing-canary.yaml") as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(FOUR_STAGE), "--state", db, "--yes", "--time-scale", SCALE, url=sim.url)
        assert p.returncode == EXIT_STOPPED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        listed = rollout("show", run, "--state", db, "--devices", "--stage", "canary")
        assert listed.returncode == EXIT_OK, listed.stderr
        rows = [line.split() for line in listed.stdout.splitlines()[1:] if line.startswith("canary ")]
        assert rows, listed.stdout
        failed = [r for r in rows if r[5] == "failed"]
        assert failed, listed.stdout
        for r in rows:
            assert r[1].startswith("d-") and r[3] == "Canary", r
            if r[5] != "missing":
                assert r[4].isdigit() and int(r[4]) > 0, r  # the update id
            assert r[8] in ("online", "offline"), r  # read at the gate's decision
            # Rolled back: its rollback's update read back as a success on each device.
            assert r[11:13] == ["success", "since"], r
        only_failed = rollout("show", run, "--state", db, "--devices", "--status", "failed")
        assert {l.split()[1] for l in only_failed.stdout.splitlines()[1:-1]} == {r[1] for r in failed}
        # The same in JSON, under each stage; and in status and the report.
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        canary = next(s for s in shown["stages"] if s["name"] == "canary")
        by_uuid = {d["uuid"]: d for d in canary["device_states"]}
        for r in failed:
            d = by_uuid[r[1]]
            assert d["status"] == "failed" and d["update_id"] == int(r[4]) and d["since"] and d["online"]
        status = rollout("status", run, "--state", db)
        assert f"canary: failed: {failed[0][1]}" in status.stdout, status.stdout
        report = Path(tmp) / "r.html"
        assert rollout("report", run, "--state", db, "--out", str(report)).returncode == EXIT_OK
        html = report.read_text()
        assert "Devices that did not succeed" in html
        for r in failed:
            assert r[1] in html
        # The gate in devices, and a pointer to the device list.
        text = rollout("show", run, "--state", db).stdout
        assert "gate: min_success 100% of 6 = 6 devices, max_failed 0 devices" in text, text
        assert f"rollout show {run} --devices" in text
        bad = rollout("show", run, "--state", db, "--devices", "--stage", "nope")
        assert bad.returncode == EXIT_INVALID and "has no stage 'nope'" in bad.stderr
        assert rollout("show", run, "--state", db, "--status", "failed").returncode == EXIT_INVALID
        assert_state_sound(db)


def test_nothing_left_to_update_is_skipped_and_a_selection_of_nothing_stops(tmp):
    with Server(tmp, "sim") as sim:
        db = f"{tmp}/state.db"
        first = rollout("apply", str(FOUR_STAGE), "--state", db, "--yes", "--time-scale", SCALE, url=sim.url)
        assert first.returncode == EXIT_OK, first.stdout + first.stderr
        # Everything has the update now: `everyone` finds nothing left. The live plan says so.
        plan = rollout("plan", str(FOUR_STAGE), url=sim.url)
        assert plan.returncode == EXIT_OK, plan.stderr
        assert "warning: everyone: nothing left to update now" in plan.stdout, plan.stdout
        again = rollout("apply", str(FOUR_STAGE), "--state", db, "--yes", "--time-scale", SCALE, url=sim.url)
        assert again.returncode == EXIT_OK, again.stdout + again.stderr
        run = run_id_of(again.stdout)
        assert "skipped: nothing left to update" in again.stdout
        show = rollout("show", run, "--state", db).stdout
        assert re.search(r"^everyone\s+skipped\s", show, re.M), show
        status = rollout("status", run, "--state", db).stdout
        assert re.search(r"everyone\s+skipped", status), status
        assert f"{run}/everyone" not in sim.applied_per_marker()
        # A selection that matches no device at all is not "nothing left": min_devices stops it.
        typo = Path(tmp) / "typo.yaml"
        typo.write_text(FOUR_STAGE.read_text().replace(
            "      - {type: update_status, operand: is_not, value: success}",
            "      - {type: update_status, operand: is_not, value: success}\n"
            "      - {type: tag, operand: is, value: no-such-tag}"))
        warned = rollout("plan", str(typo), url=sim.url)
        assert "warning: everyone: targets 0 device(s), fewer than min_devices 1" in warned.stdout, warned.stdout
        stopped = rollout("apply", str(typo), "--state", db, "--yes", "--time-scale", SCALE, url=sim.url)
        assert stopped.returncode == EXIT_STOPPED, stopped.stdout + stopped.stderr
        assert "fewer than min_devices 1" in stopped.stdout


def test_thresholds_are_shown_in_devices(tmp):
    offline = rollout("plan", "--offline", str(CANARY_PLAN))
    assert "max_failed 2% tolerates no failure in a stage of fewer than 50 devices" in offline.stdout
    live = rollout("plan", str(CANARY_PLAN), "--simulate", str(SMALL_FLEET))
    assert live.returncode == EXIT_OK, live.stderr
    assert re.search(r"eu\s+min_success 95% of 20 = 19 devices, max_failed 2% of 20 = 0 devices", live.stdout), \
        live.stdout


def test_a_simulated_run_pauses_is_approved_and_resumes_like_a_real_one(tmp):
    db = f"{tmp}/state.db"
    p = rollout("apply", str(CANARY_PLAN), "--simulate", str(SMALL_FLEET), "--state", db, "--yes",
                "--time-scale", SCALE)
    assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
    run = run_id_of(p.stdout)
    a = rollout("approve", run, "us", "--state", db)
    assert a.returncode == EXIT_OK and f"rollout resume {run}" in a.stdout, a.stdout + a.stderr
    other = Path(tmp) / "other.yaml"
    other.write_text(SMALL_FLEET.read_text())
    wrong = rollout("resume", run, "--state", db, "--simulate", str(other))
    assert wrong.returncode != EXIT_OK and "runs against the simulated fleet" in wrong.stderr, wrong.stderr
    r = rollout("resume", run, "--state", db, "--time-scale", SCALE)
    assert r.returncode == EXIT_OK, r.stdout + r.stderr
    assert journal_applied(db, run) == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}
    # `everyone` found what the earlier stages left: the fleet survived the process.
    shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
    assert next(s for s in shown["stages"] if s["name"] == "everyone")["devices"] == 20, shown
    assert_state_sound(db)


def test_a_killed_simulated_run_resumes_exactly_once(tmp):
    for point in ["after_intent:2", "after_answer:2", "after_outcome:1"]:
        db = f"{tmp}/{point.replace(':', '-')}.db"
        p = rollout("apply", str(FOUR_STAGE), "--simulate", str(STEADY_FLEET), "--state", db, "--yes",
                    "--time-scale", SCALE, env_extra={"ROLLOUT_TEST_CRASH_AT": point})
        assert p.returncode == -9, (point, p.returncode, p.stdout[-2000:], p.stderr)
        run = run_id_of(p.stdout)
        r = rollout("resume", run, "--state", db, "--time-scale", SCALE)
        assert r.returncode == EXIT_OK, (point, r.stdout[-3000:], r.stderr)
        assert journal_applied(db, run) == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}, point
        assert_state_sound(db)


def test_a_saved_plan_runs_from_any_folder(tmp):
    with Server(tmp, "sim") as sim:
        plans = Path(tmp) / "plans"
        plans.mkdir()
        (plans / "p.yaml").write_text(FOUR_STAGE.read_text())
        saved = Path(tmp) / "saved" / "p.plan.json"
        saved.parent.mkdir()
        made = subprocess.run([Env.rollout, "plan", "p.yaml", "--out", str(saved)], cwd=plans,
                              env=dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=sim.url),
                              capture_output=True, text=True)
        assert made.returncode == EXIT_OK, made.stderr
        elsewhere = Path(tmp) / "elsewhere"
        elsewhere.mkdir()
        env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=sim.url)
        # Another plan given with it: says which plan it was saved from, sends nothing.
        other = elsewhere / "other.yaml"
        other.write_text(FOUR_STAGE.read_text().replace("name: four-stage", "name: other"))
        mixed = subprocess.run([Env.rollout, "apply", str(other), "--plan-file", str(saved), "--state",
                                "s.db", "--yes", "--time-scale", SCALE], cwd=elsewhere, env=env,
                               capture_output=True, text=True)
        assert mixed.returncode == EXIT_INVALID, mixed.stderr
        assert f"was saved from the plan {plans / 'p.yaml'}, not {other}" in mixed.stderr, mixed.stderr
        assert not sim.applied_per_marker()
        p = subprocess.run([Env.rollout, "apply", "--plan-file", str(saved), "--state", "s.db", "--yes",
                            "--time-scale", SCALE], cwd=elsewhere, env=env, capture_output=True, text=True)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert sim.applied_per_marker() == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}


def test_rehearse_models_a_late_approval_and_exits_as_the_run_would(tmp):
    late = rollout("rehearse", str(CANARY_PLAN), "--fleet", str(SMALL_FLEET), "--approval-delay", "30m")
    assert late.returncode == EXIT_OK, late.stdout + late.stderr
    rows = {l.split()[0]: l.split() for l in late.stdout.splitlines() if l.split()[:1] in (["canary"], ["eu"], ["us"], ["everyone"])}
    assert all(rows[s][1] == "passed" for s in rows), late.stdout
    # us is asked for when the canary passes (+30m) and approved 30 minutes later.
    assert rows["us"][3] == "+1h", late.stdout
    assert "run completed" in late.stdout
    bad = rollout("rehearse", str(SRC / "examples/demo/bad-build.yaml"), "--fleet", str(SMALL_FLEET))
    assert bad.returncode == EXIT_STOPPED and "run stopped" in bad.stdout, bad.stdout
    many = rollout("rehearse", str(SRC / "examples/demo/bad-build.yaml"), "--fleet", str(SMALL_FLEET),
                   "--runs", "3", "--output", "json")
    assert many.returncode == EXIT_STOPPED
    assert len(many.stdout.splitlines()) == 3


def test_apply_asks_with_a_summary_of_what_will_happen(tmp):
    with Server(tmp, "sim") as sim:
        db = f"{tmp}/state.db"
        env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=sim.url)
        code, out = on_a_terminal([Env.rollout, "apply", str(CANARY_PLAN), "--state", db], env, answer="no")
        assert code == EXIT_INVALID and "not started" in out, out
        assert "us             after canary; waits for an approval; groups US" in out, out
        assert "on failure: rollback with flow 11aa-22bb to default_app v2.3, then stop" in out
        assert "gate: min_success 95%, max_failed 5%, bake 10m" in out  # everyone's own gate
        assert not sim.applied_per_marker()
        assert not Path(db).exists() or not sqlite3.connect(db).execute("SELECT * FROM runs").fetchall()


def test_approve_abort_status_validate_and_graph_say_what_is_true(tmp):
    with Server(tmp, "sim", fleet="examples/fleets/small.yaml") as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(CANARY_PLAN), "--state", db, "--yes", "--time-scale", SCALE, url=sim.url)
        assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        done = rollout("approve", run, "eu", "--state", db)
        assert done.returncode == EXIT_INVALID and "is passed: there is nothing to approve" in done.stderr
        needless = rollout("approve", run, "everyone", "--state", db)
        assert needless.returncode == EXIT_INVALID and "needs no approval" in needless.stderr, needless.stderr
        assert rollout("approve", run, "us", "--state", db).returncode == EXIT_OK
        twice = rollout("approve", run, "us", "--state", db)
        assert twice.returncode == EXIT_INVALID and "already approved" in twice.stderr, twice.stderr
        # Piped, nothing is cut to 80 columns.
        status = rollout("status", run, "--state", db)
        assert not any(line.endswith("...") for line in status.stdout.splitlines()), status.stdout
        assert re.search(r"stages: .*1 awaiting_approval.*2 passed", status.stdout), status.stdout
        # An abort of a run that another process runs: said on stdout, and it succeeds.
        live = start_apply(FOUR_STAGE, f"{tmp}/live.db", sim.url, scale="60")
        for _ in range(100):
            if Path(f"{tmp}/live.db").exists() and rollout("status", "last", "--state", f"{tmp}/live.db").returncode == 0:
                break
        import time
        time.sleep(1)
        a = rollout("abort", "last", "--state", f"{tmp}/live.db")
        live.wait(timeout=60)
        assert a.returncode == EXIT_OK and "stops within seconds" in a.stdout, a.stdout + a.stderr
        assert a.stderr == "", a.stderr
    v = rollout("validate", str(SRC / "plans"))
    assert v.returncode == EXIT_OK and v.stdout.count(": ok: plan") >= 6, v.stdout + v.stderr
    graph = subprocess.run(f"{Env.rollout} graph {SRC / 'plans/parallel-regions.yaml'} | dot -Tsvg",
                           shell=True, capture_output=True, text=True)
    assert graph.returncode == 0 and "<svg" in graph.stdout, graph.stderr


def test_a_refused_call_is_sent_again_by_resume_once_the_cause_is_fixed(tmp):
    plan = Path(tmp) / "new-flow.yaml"
    plan.write_text(FOUR_STAGE.read_text().replace("flow_id: 73a7-1ft8", "flow_id: 9f00-new1"))
    db = f"{tmp}/state.db"
    with Server(tmp, "sim") as before:
        p = rollout("apply", str(plan), "--state", db, "--yes", "--time-scale", SCALE, url=before.url)
        assert p.returncode == EXIT_ERROR, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert "Upswift refused deploy_update: \"Flow '9f00-new1' was not found\"" in p.stdout
        assert f"fix the cause, then continue with rollout resume {run}" in p.stdout, p.stdout
        assert not before.applied_per_marker()
    # The flow is made in Upswift's dashboard: a fleet that knows it.
    fixed = Path(tmp) / "fixed.yaml"
    fixed.write_text((SRC / "tests/fleets/steady.yaml").read_text().replace(
        "flows: [73a7-1ft8, 11aa-22bb]", "flows: [73a7-1ft8, 11aa-22bb, 9f00-new1]"))
    port = int(re.search(r":(\d+)/v1/", before.url).group(1))
    with Server(tmp, "sim", fleet=str(fixed), port=port) as after:  # the run's recorded API
        r = rollout("resume", run, "--state", db, "--time-scale", SCALE, url=after.url)
        assert r.returncode == EXIT_OK, r.stdout + r.stderr
        assert after.applied_per_marker() == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}
    calls = sqlite3.connect(db).execute("SELECT stage, outcome FROM api_calls ORDER BY id").fetchall()
    assert calls[0] == ("canary", "refused") and calls[1] == ("canary", "accepted"), calls
    assert_state_sound(db)


def test_validate_suggests_the_word_that_was_meant(tmp):
    plan = Path(tmp) / "p.yaml"
    plan.write_text("""version: 1
name: p
flow_id: f
project: Demo
stages:
  - name: a
    groups: [A]
  - name: b
    depends_on: [a]
    sample: 2
    filters:
      - {type: update_status, operand: is_not, value: succeeded}
""")
    v = rollout("validate", str(plan))
    assert v.returncode == EXIT_INVALID
    assert "unknown key 'depends_on' in stage #2 (did you mean 'needs'?)" in v.stderr, v.stderr
    assert "sample of stage 'b' must be a map (did you mean 'sample: {count: 2}'?)" in v.stderr
    assert "not 'succeeded' (did you mean 'success'?)" in v.stderr


def test_an_approval_of_a_gate_paused_at_its_timeout_takes_the_first_time(tmp):
    # A device that never comes back: the gate times out and pauses, in a run whose clock
    # goes 600 times faster than the wall clock the approval is given by.
    fleet = Path(tmp) / "dark.yaml"
    fleet.write_text("""seed: 7
flows: [f-1]
updates: {start_delay: {min: 5s, max: 10s}, duration: {min: 1m, max: 2m}}
projects:
  - name: Demo
    groups:
      - {name: G, devices: 4, online: 75%}
""")
    plan = Path(tmp) / "p.yaml"
    plan.write_text("""version: 1
name: paused-gate
flow_id: f-1
project: Demo
stages:
  - name: g
    groups: [G]
    gate: {bake: 5m, timeout: 30m, poll: 1m, min_success: 100%, on_timeout: pause}
""")
    with Server(tmp, "sim", fleet=str(fleet)) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(plan), "--state", db, "--yes", "--time-scale", SCALE, url=sim.url)
        assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert rollout("approve", run, "g", "--state", db, "--comment", "the dark one is on a shelf").returncode == EXIT_OK
        r = rollout("resume", run, "--state", db, "--time-scale", SCALE, url=sim.url)
        assert r.returncode == EXIT_OK, r.stdout + r.stderr  # the first time, not the third
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["approvals"][0]["comment"] == "the dark one is on a shelf"
        events = shown["events"]
        assert [e["time"] for e in events] == sorted(e["time"] for e in events)  # in the order they happened


def test_a_mistyped_group_in_a_later_stage_is_refused_before_the_first_call(tmp):
    # eu names "EU-Nrth": found before the canary is sent and baked, on both servers (the
    # simulator says Upswift does not know the group; the fake lists no device for it).
    plan = Path(tmp) / "typo.yaml"
    plan.write_text(FOUR_STAGE.read_text().replace("groups: [EU-North, EU-South]", "groups: [EU-Nrth, EU-South]"))
    for kind in ("sim", "fake"):
        with Server(tmp, kind, fleet="tests/fleets/steady.yaml") as srv:
            db = f"{tmp}/{kind}.db"
            p = rollout("apply", str(plan), "--state", db, "--yes", "--time-scale", SCALE, url=srv.url)
            assert p.returncode == EXIT_INVALID, (kind, p.stdout, p.stderr)
            assert "stage eu, groups: group EU-Nrth of project Demo" in p.stderr, (kind, p.stderr)
            assert "Nothing was sent. Fix the plan, then apply it again." in p.stderr, p.stderr
            if kind == "fake":
                assert "lists no device (mistyped, or empty) (did you mean 'EU-North'?)" in p.stderr, p.stderr
            assert "stage canary" not in p.stderr and "stage us" not in p.stderr, p.stderr
            assert not [r for r in srv.requests() if r["endpoint"] == "deploy_update"], "nothing sent"
            assert not Path(db).exists() or not json.loads(
                rollout("runs", "--state", db, "--output", "json").stdout), "no run written"


def test_resume_of_a_run_that_never_started_checks_its_plan_and_says_to_start_anew(tmp):
    # Paused for an approval of its first stage; meanwhile the US group is gone from the fleet.
    plan = Path(tmp) / "approve-first.yaml"
    plan.write_text(FOUR_STAGE.read_text().replace("  - name: canary\n", "  - name: canary\n    approval: required\n"))
    fleet = Path(tmp) / "no-us.yaml"
    fleet.write_text("\n".join(l for l in STEADY_FLEET.read_text().splitlines() if "name: US," not in l) + "\n")
    db = f"{tmp}/state.db"
    with Server(tmp, "sim", fleet="tests/fleets/steady.yaml") as srv:
        port = srv.url.split(":")[2].split("/")[0]
        p = rollout("apply", str(plan), "--state", db, "--yes", "--time-scale", SCALE, url=srv.url)
        assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
    with Server(tmp, "sim", fleet=str(fleet), port=int(port)) as srv:
        assert rollout("approve", run, "canary", "--state", db).returncode == EXIT_OK
        r = rollout("resume", run, "--state", db, "--time-scale", SCALE, url=srv.url)
        assert r.returncode == EXIT_INVALID, r.stdout + r.stderr
        assert "stage us, groups: group US of project Demo: " in r.stderr, r.stderr
        assert f"Run {run} never started: start a new run with the fixed plan (rollout apply {plan})" in r.stderr
        assert not [q for q in srv.requests() if q["endpoint"] == "deploy_update"], "nothing sent"


def test_a_simulated_run_whose_fleet_record_is_missing_is_refused_and_migrate_carries_it(tmp):
    db = f"{tmp}/state.db"
    p = rollout("apply", str(CANARY_PLAN), "--simulate", str(SMALL_FLEET), "--state", db, "--yes",
                "--time-scale", SCALE)
    assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
    run = run_id_of(p.stdout)
    assert rollout("approve", run, "us", "--state", db).returncode == EXIT_OK
    record = Path(f"{db}.sim/{run}.jsonl")
    kept = record.read_text()
    record.unlink()
    # Rebuilt from its file alone, the fleet would take canary's and eu's updates again.
    r = rollout("resume", run, "--state", db, "--time-scale", SCALE)
    assert r.returncode == EXIT_INVALID, r.stdout + r.stderr
    assert f"the simulated fleet's record {record} of this run is missing" in r.stderr, r.stderr
    assert not record.exists(), "no fresh fleet was started in its place"
    record.write_text("")
    emptied = rollout("resume", run, "--state", db, "--time-scale", SCALE)
    assert emptied.returncode == EXIT_INVALID and "cannot be read" in emptied.stderr, emptied.stderr
    record.write_text(kept)
    # state migrate copies the record with the run: resumed from the copy, nothing is sent twice.
    db2 = f"{tmp}/moved.db"
    m = rollout("state", "migrate", "--from", db, "--to", db2)
    assert m.returncode == EXIT_OK and "simulated fleets' records of 1 run(s)" in m.stdout, m.stdout + m.stderr
    assert Path(f"{db2}.sim/{run}.jsonl").read_text() == kept
    r = rollout("resume", run, "--state", db2, "--time-scale", SCALE)
    assert r.returncode == EXIT_OK, r.stdout + r.stderr
    assert journal_applied(db2, run) == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}


def test_abort_rollback_of_a_time_scaled_simulated_run_typed_as_the_readme_shows_takes_its_scale(tmp):
    db = f"{tmp}/state.db"
    p = rollout("apply", str(CANARY_PLAN), "--simulate", str(SMALL_FLEET), "--state", db, "--yes",
                "--time-scale", SCALE)
    assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
    run = run_id_of(p.stdout)
    # No --time-scale: the run's own (600) is taken, so its rollback's check is over in seconds
    # of wall time, and no record goes back before the run's.
    a = rollout("abort", "last", "--rollback", "--state", db, timeout=60)
    assert a.returncode == EXIT_STOPPED, a.stdout + a.stderr
    shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
    assert shown["status"] == "aborted"
    assert all(s["status"] in ("rolled_back", "waiting", "stopped") for s in shown["stages"]), shown["stages"]
    times = [e["time"] for e in shown["events"]]
    assert times == sorted(times), "a record went back in time"
    assert "+-" not in rollout("show", run, "--state", db).stdout
