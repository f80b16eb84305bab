"""Health gates end to end: devices lost mid-update (against `rollout sim` and the contract-only
fake), run-wide abort_when, and ramps killed and resumed, through the real binary."""
import json
import re
import os
import signal
import subprocess
import time

import pytest

from e2e import EXIT_ERROR, EXIT_OK, EXIT_STOPPED, SCALE, Server, connect_state, run_id_of
from cli_helpers import EVENT_SCHEMA, ROLLOUT, SRC, TOKEN, Sim, assert_db_clean, rollout

DARK = SRC / "examples/fleets/dark-devices.yaml"
LOST_PLAN = SRC / "tests/plans/lost-devices.yaml"
ABORT_PLAN = SRC / "tests/plans/abort-when.yaml"
RAMP_PLAN = SRC / "tests/plans/ramp.yaml"


def server(tmp, kind, fleet, faults=None):
    if kind == "sim":
        return Sim(tmp, fleet)
    return Server(tmp, "fake", faults=faults or {})


def shown(run, db):
    p = rollout("show", run, "--state", db, "--output", "json")
    assert p.returncode == EXIT_OK, p.stderr
    return json.loads(p.stdout)


def deploys(srv, run, stage):
    """Applied deploy_update calls of a stage, by the marker in their comment."""
    return [r for r in srv.requests() if r["endpoint"] == "deploy_update" and r.get("applied")
            and f"[rollout {run}/{stage}]" in r["body"]["metadata"].get("comment", "")]


def snapshot(db, run, stage):
    con = connect_state(db)
    uuids = sorted(u for (u,) in con.execute(
        "SELECT device_uuid FROM snapshot_devices WHERE run_id = ? AND stage = ?", (run, stage)))
    con.close()
    return uuids


def seconds(text):
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


@pytest.mark.parametrize("kind", ["sim", "fake"])
def test_devices_dark_mid_update_fail_the_stage_long_before_its_timeout_and_roll_back(tmp, kind):
    import jsonschema
    with server(tmp, kind, DARK, {"dark_mid_update": 0.5}) as srv:
        db = f"{tmp}/state.db"
        started = time.monotonic()
        p = rollout("apply", str(LOST_PLAN), "--state", db, "--yes", "--time-scale", SCALE, "--output", "json",
                    api=srv.url)
        # The dark devices cannot take the rollback either: it is not finished on them within
        # its 30-minute timeout, and the run fails for a person, naming them.
        assert p.returncode == EXIT_ERROR, p.stdout + p.stderr
        # The 3-hour timeout is 18 s at this time scale: the stage failed on its lost devices
        # first, and its rollback's 30 minutes are 3 s.
        assert time.monotonic() - started < 15
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        for obj in lines:
            jsonschema.validate(obj, EVENT_SCHEMA)
        run = lines[0]["run"]
        lost_events = [o for o in lines if o["type"] == "event" and o["kind"] == "device_lost"]
        assert lost_events and all(o["stage"] == "eu" for o in lost_events)
        fail = [o for o in lines if o["type"] == "gate" and o["verdict"] == "fail"]
        assert fail and fail[-1]["lost"] >= 1 and "more than max_lost 0 allows" in fail[-1]["reason"]

        doc = shown(run, db)
        eu = next(s for s in doc["stages"] if s["name"] == "eu")
        assert eu["status"] == "rollback_failed", eu
        failed_at = next(o["time"] for o in lines if o["type"] == "event" and o["kind"] == "stage_failed")
        assert seconds(failed_at) - seconds(eu["dispatched"]) < 3600, eu  # virtual time
        lost = [d for d in eu["device_states"] if d["status"] == "lost"]
        assert len(lost) == fail[-1]["lost"]
        unfinished = eu["reason"].split("not finished within 30m")[1]
        for d in lost:
            assert d["update_status"] in ("in_progress", "pending") and d["online"] == "offline"
            assert d["uuid"] in eu["reason"], "the reason names each lost device"
            assert d["lost_since"]
            assert d["uuid"] in unfinished, "... and each is named as not rolled back"
            assert d["rollback"]["status"] in ("pending", "in_progress", "missing"), d
        assert next(s for s in doc["stages"] if s["name"] == "us")["status"] == "waiting"
        assert len(deploys(srv, run, "eu")) == 1 and not deploys(srv, run, "us")
        assert len(deploys(srv, run, "eu/rollback")) >= 1

        # Wherever failed shows, lost shows: status, the device list, show's table, the report.
        status = json.loads(rollout("status", run, "--state", db, "--output", "json").stdout)
        st = next(s for s in status["stages"] if s["stage"] == "eu")
        assert st["counts"]["lost"] == len(lost)
        assert sorted(d["uuid"] for d in st["not_succeeded"] if d["status"] == "lost") == \
            sorted(d["uuid"] for d in lost)
        listed = rollout("show", run, "--state", db, "--devices", "--status", "lost")
        assert listed.stdout.count(" lost (") == len(lost), listed.stdout
        table = rollout("show", run, "--state", db).stdout
        assert "LOST" in table and f"lost: {lost[0]['uuid']}" in table, table
        report = f"{tmp}/report.html"
        assert rollout("report", run, "--state", db, "--out", report).returncode == EXIT_OK
        html = open(report).read()
        assert 'class="device s-lost"' in html and 'data-layer="lost"' in html
        assert_db_clean(db)


def test_one_lost_device_within_max_lost_2_passes_and_is_listed_as_lost(tmp):
    plan = f"{tmp}/lost-2.yaml"
    text = LOST_PLAN.read_text().replace("groups: [EU-North]", "groups: [EU-South]")
    text = text.replace("max_lost: 0", "max_lost: 2").replace("groups: [US]", "groups: [Canary]")
    open(plan, "w").write(text)
    with Sim(tmp, DARK) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", plan, "--state", db, "--yes", "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        eu = next(s for s in shown(run, db)["stages"] if s["name"] == "eu")
        assert eu["status"] == "passed"
        assert [d["uuid"] for d in eu["device_states"] if d["status"] == "lost"] == ["d-brick-0001"]
        assert "1 lost" in eu["reason"] and "lost: d-brick-0001 (brick)" in eu["reason"], eu["reason"]
        assert eu["gate_decisions"][-1]["lost"] == 1 and eu["gate_decisions"][-1]["success"] == 8


def test_abort_when_stops_a_run_whose_stages_each_pass_but_whose_failures_add_up(tmp):
    with Sim(tmp, DARK) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(ABORT_PLAN), "--state", db, "--yes", "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_STOPPED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        doc = shown(run, db)
        status = {s["name"]: s["status"] for s in doc["stages"]}
        assert status == {"us": "passed", "rest": "failed", "canary": "waiting"}, status
        rest = next(s for s in doc["stages"] if s["name"] == "rest")
        assert "abort_when failed 15% met (15% of 15 = 3 device(s)): 3 of the 15 devices" in rest["reason"]
        assert "abort_when failed 15% met" in doc["reason"]
        assert any(e["kind"] == "abort_criteria" for e in doc["events"])
        assert len(deploys(sim, run, "us")) == 1 and len(deploys(sim, run, "rest")) == 1
        assert not deploys(sim, run, "canary")


@pytest.mark.parametrize("kind", ["sim", "fake"])
def test_a_ramp_killed_mid_step_resumes_with_the_same_draw_each_device_once(tmp, kind):
    with server(tmp, kind, SRC / "tests/fleets/steady.yaml") as srv:
        db = f"{tmp}/state.db"
        # Killed once the second step's four intents are durable, none of them sent.
        env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=srv.url,
                   ROLLOUT_TEST_CRASH_AT="after_intent:6")
        proc = subprocess.run([ROLLOUT, "apply", str(RAMP_PLAN), "--state", db, "--yes", "--time-scale", SCALE,
                               "--no-progress"], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
        run = run_id_of(proc.stdout)
        before = {stage: snapshot(db, run, stage) for stage in ("eu@25%", "eu@50%")}
        assert [len(before["eu@25%"]), len(before["eu@50%"])] == [4, 4]
        p = rollout("resume", run, "--state", db, "--time-scale", SCALE, api=srv.url)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        doc = shown(run, db)
        assert [s["name"] for s in doc["stages"]] == ["eu@25%", "eu@50%", "eu@100%", "rest"]
        targets = {s["name"]: snapshot(db, run, s["name"]) for s in doc["stages"]}
        for stage in before:
            assert targets[stage] == before[stage], "the draw changed across the kill"
        assert [len(targets[s]) for s in ("eu@25%", "eu@50%", "eu@100%")] == [4, 4, 8]
        ramp = [u for s in ("eu@25%", "eu@50%", "eu@100%") for u in targets[s]]
        assert len(set(ramp)) == 16, "a device in two steps"
        for stage in ("eu@25%", "eu@50%", "eu@100%"):
            sent = sorted(r["body"]["devices_filter"]["filters"][0]["value"] for r in deploys(srv, run, stage))
            assert sent == targets[stage], (stage, sent)  # each drawn device once, no other
        assert len(deploys(srv, run, "rest")) == 1


def test_rehearsal_and_the_live_plan_know_lost_devices_abort_when_and_ramps(tmp):
    steady = SRC / "tests/fleets/steady.yaml"
    p = rollout("rehearse", str(LOST_PLAN), "--fleet", str(DARK))
    # As apply would: the lost devices fail the stage, and cannot take its rollback either.
    assert p.returncode == EXIT_ERROR, p.stdout + p.stderr
    assert "more than max_lost 0 allows" in p.stdout and "lost: d-" in p.stdout, p.stdout
    assert re.search(r"^eu\s+rollback_failed\s", p.stdout, re.M) and "not finished within 30m" in p.stdout, p.stdout
    assert "get_devices_state" in p.stdout
    p = rollout("rehearse", str(ABORT_PLAN), "--fleet", str(DARK))
    assert p.returncode == EXIT_STOPPED and "abort_when failed 15% met" in p.stdout, p.stdout
    p = rollout("rehearse", str(RAMP_PLAN), "--fleet", str(steady))
    assert p.returncode == EXIT_OK, p.stdout
    rows = {line.split()[0]: line.split() for line in p.stdout.splitlines() if line.startswith("eu@")}
    assert {name: (row[1], row[2]) for name, row in rows.items()} == {
        "eu@25%": ("passed", "4"), "eu@50%": ("passed", "4"), "eu@100%": ("passed", "8")}, p.stdout
    with Sim(tmp, steady) as sim:
        p = rollout("plan", str(RAMP_PLAN), "--output", "json", api=sim.url)
        assert p.returncode == EXIT_OK, p.stderr
        doc = json.loads(p.stdout)
        assert [(s["name"], s["targets"]) for s in doc["stages"]] == [
            ("eu@25%", 4), ("eu@50%", 4), ("eu@100%", 8), ("rest", 6)]
        assert doc["api_calls"]["deploy_update"] == 17
        text = rollout("plan", str(LOST_PLAN), api=sim.url).stdout
        assert "max_lost 0 devices (offline 10m mid-update)" in text, text
        assert not any(r["endpoint"] == "deploy_update" for r in sim.requests())
    offline = rollout("plan", "--offline", str(ABORT_PLAN)).stdout
    assert "abort_when:   failed 15% of the devices the dispatched stages targeted, counted once 5 have finished" \
        in offline, offline


@pytest.mark.parametrize("seed", [11, 12])
def test_a_ramp_killed_at_random_moments_sends_each_device_once(tmp, seed):
    import random
    rng = random.Random(seed)
    with Sim(tmp, SRC / "tests/fleets/steady.yaml") as sim:
        db = f"{tmp}/state.db"
        env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=sim.url)
        env.pop("ROLLOUT_TEST_CRASH_AT", None)
        argv = [ROLLOUT, "apply", str(RAMP_PLAN), "--state", db, "--yes", "--time-scale", SCALE, "--no-progress"]
        run = None
        for attempt in range(3):
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(rng.uniform(0.3, 2.5))
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            if not run and os.path.exists(db):
                con = connect_state(db)
                ids = [i for (i,) in con.execute("SELECT id FROM runs")]
                con.close()
                assert len(ids) <= 1, ids
                run = ids[0] if ids else None
            if run:
                argv = [ROLLOUT, "resume", run, "--state", db, "--time-scale", SCALE, "--no-progress"]
        assert run, "the run was never created"
        p = rollout("resume", run, "--state", db, "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_OK or "completed" in rollout("show", run, "--state", db).stdout, \
            p.stdout + p.stderr
        steps = ("eu@25%", "eu@50%", "eu@100%")
        targets = {s: snapshot(db, run, s) for s in steps}
        assert [len(targets[s]) for s in steps] == [4, 4, 8]
        assert len({u for s in steps for u in targets[s]}) == 16
        for stage in steps:
            sent = sorted(r["body"]["devices_filter"]["filters"][0]["value"] for r in deploys(sim, run, stage))
            assert sent == targets[stage], (stage, sent)
        assert len(deploys(sim, run, "rest")) == 1
        assert_db_clean(db)
