"""Whole runs end to end against `rollout sim`: completion, rollback, approval, refusals,
invalid input, signals, a second process, faults, and the token kept out of everything."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from e2e import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, EXIT_PAUSED, EXIT_STOPPED, SCALE, Server,
                 nothing_written, run_id_of, start_apply, started)
from cli_helpers import CANARY_PLAN, FAILING, PLAN, ROLLOUT, SRC, STEADY, Sim, TOKEN, assert_db_clean, rollout


def test_four_stage_plan_completes_once_each(tmp):
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


def test_failing_canary_rolls_back_and_exits_3(tmp):
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
        # Rolled back once Upswift's statuses said so: every device read back on v2.3.
        assert shown["stages"][0]["reason"].endswith("rollback: 6 of 6 back on default_app v2.3"), shown["stages"][0]
        assert "rollback: 6 of 6 back on default_app v2.3" in shown["reason"]
        devices = json.loads(rollout("show", run, "--state", db, "--devices", "--output", "json").stdout)["devices"]
        canary = [d for d in devices if d["stage"] == "canary"]
        assert len(canary) == 6 and all(d["rollback"]["status"] == "success" for d in canary), canary
        assert {d["update_status"] for d in canary} <= {"success", "failed", "in_progress", "pending"}
        assert all(d["rollback"] is None for d in devices if d["stage"] != "canary")
        kinds = [e["kind"] for e in shown["events"]]
        assert kinds.index("rollback_check") < kinds.index("rolled_back") and "rollback_failed" not in kinds


def rollback_log(server, run, stage):
    """The deploy_update calls of a stage's rollback the server applied, in order."""
    return [r["body"] for r in server.requests() if r["endpoint"] == "deploy_update" and r.get("applied")
            and f"[rollout {run}/{stage}/rollback]" in r["body"]["metadata"]["comment"]]


def test_a_rollback_that_fails_on_some_devices_is_reported_failed_and_retried_there(tmp):
    # The fake fails the canary's update on two devices (the gate fails, the plan rolls back),
    # then the rollback's on two: the rollback is not "rolled back" until every device is.
    with Server(tmp, "fake", fake_args=["--fail-once", "/canary]=2", "--fail-once", "/canary/rollback]=2"]) as srv:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, api=srv.url)
        assert p.returncode == EXIT_ERROR, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert re.search(r"rollback: 4 of 6 back on default_app v2\.3, 2 failed \(d-\S+ \(canary-\d+\), d-\S+ "
                         r"\(canary-\d+\)\)", p.stdout), p.stdout
        assert f"then `rollout retry {run} canary --rollback`" in p.stdout, p.stdout
        assert "rolled_back" not in p.stdout and "rolled back" not in p.stdout, p.stdout
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["status"] == "failed" and shown["stages"][0]["status"] == "rollback_failed", shown
        assert f"rollout retry {run} canary --rollback" in shown["reason"]
        assert "rollback_failed" in [e["kind"] for e in shown["events"]]
        # A failed run ended, resumably: `runs` says when.
        listed = json.loads(rollout("runs", "--state", db, "--output", "json").stdout)[0]
        assert listed["finished"] and listed["resumable"] is True, listed
        devices = json.loads(rollout("show", run, "--state", db, "--devices", "--stage", "canary",
                                     "--output", "json").stdout)["devices"]
        failed = sorted(d["uuid"] for d in devices if d["rollback"]["status"] == "failed")
        assert len(failed) == 2 and sum(d["rollback"]["status"] == "success" for d in devices) == 4, devices
        assert sum(d["update_status"] == "failed" for d in devices) == 2, devices
        text = rollout("show", run, "--state", db, "--devices", "--stage", "canary").stdout
        assert "ROLLBACK" in text.splitlines()[0] and text.count("failed since") == 2, text
        st = rollout("status", run, "--state", db)
        assert "rollback_failed" in st.stdout, st.stdout
        # One call per device: the canary selects by online state, which may have changed.
        assert len(rollback_log(srv, run, "canary")) == 6

        # A forward retry of a stage whose rollback failed is refused, and names the way on.
        f = rollout("retry", run, "canary", "--state", db, api=srv.url)
        assert f.returncode == EXIT_INVALID and f"rollout retry {run} canary --rollback" in f.stderr, f.stderr
        # Sent again to the two devices where it failed, one call each, then checked again.
        r = rollout("retry", run, "canary", "--rollback", "--state", db, "--time-scale", SCALE, api=srv.url)
        assert r.returncode == EXIT_STOPPED, r.stdout + r.stderr
        assert "rollback retry 1 of stage canary: 2 device(s)" in r.stdout, r.stdout
        again = rollback_log(srv, run, "canary")[6:]
        assert sorted(b["devices_filter"]["filters"][0]["value"] for b in again) == failed, again
        assert all("(retry 1)" in b["metadata"]["comment"] for b in again)
        assert "rollback: 6 of 6 back on default_app v2.3" in r.stdout, r.stdout
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["status"] == "stopped" and shown["stages"][0]["status"] == "rolled_back", shown
        devices = json.loads(rollout("show", run, "--state", db, "--devices", "--stage", "canary",
                                     "--output", "json").stdout)["devices"]
        assert all(d["rollback"]["status"] == "success" for d in devices), devices
        # Nothing is left to send again: refused, nothing sent.
        n = len(srv.requests())
        again = rollout("retry", run, "canary", "--rollback", "--state", db, api=srv.url)
        assert again.returncode == EXIT_INVALID and "nothing to send again" in again.stderr, again.stderr
        assert len(srv.requests()) == n


def test_approval_pauses_then_approve_and_resume_complete(tmp):
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


def test_refused_call_quotes_upswift_and_sends_nothing_more(tmp):
    with Sim(tmp, STEADY) as sim:
        plan = Path(tmp) / "bad-flow.yaml"
        plan.write_text(PLAN.read_text().replace("flow_id: 73a7-1ft8", "flow_id: no-such-flow"))
        db = f"{tmp}/state.db"
        p = rollout("apply", str(plan), "--state", db, "--yes", "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_ERROR, p.stdout + p.stderr
        assert "Upswift refused deploy_update: \"Flow 'no-such-flow' was not found\"" in p.stdout
        assert sim.applied_per_marker() == {}


def test_invalid_plan_exits_2_and_writes_nothing(tmp):
    db = f"{tmp}/state.db"
    p = rollout("apply", str(SRC / "tests/plans/invalid/cycle.yaml"), "--state", db, "--yes")
    assert p.returncode == EXIT_INVALID
    assert "dependency cycle: a -> b -> c -> a" in p.stderr
    assert nothing_written(db)
    d = rollout("apply", str(PLAN), "--dry-run", "--state", db)
    assert d.returncode == EXIT_OK and "nothing is sent" in d.stdout
    assert nothing_written(db)


def test_missing_token_and_plain_http_are_refused(tmp):
    env = {"UPSWIFT_USER_TOKEN": ""}
    p = rollout("apply", str(PLAN), "--state", f"{tmp}/s.db", "--yes", env_extra=env)
    assert p.returncode == EXIT_INVALID and "set UPSWIFT_USER_TOKEN" in p.stderr
    p = rollout("apply", str(PLAN), "--state", f"{tmp}/s.db", "--yes", api="http://example.com/v1/")
    assert p.returncode == EXIT_INVALID and "only https is allowed" in p.stderr
    p = rollout("apply", str(PLAN), "--state", f"{tmp}/s.db", "--yes", "--time-scale", "60")
    assert p.returncode == EXIT_INVALID and "only for simulated fleets" in p.stderr


def test_sigint_exits_130_and_resume_completes(tmp):
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=sim.url)
        proc = subprocess.Popen([ROLLOUT, "apply", str(PLAN), "--state", db, "--yes", "--time-scale", "60"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = started(proc)
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        out = first + out
        assert proc.returncode == EXIT_INTERRUPTED, out + err
        run = run_id_of(out)
        assert "interrupted" in out
        r = rollout("resume", run, "--state", db, "--time-scale", SCALE, api=sim.url)
        assert r.returncode == EXIT_OK, r.stdout + r.stderr
        assert sim.applied_per_marker() == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}


def test_a_live_run_is_not_run_twice(tmp):
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        env = dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN, UPSWIFT_API_URL=sim.url)
        proc = subprocess.Popen([ROLLOUT, "apply", str(PLAN), "--state", db, "--yes", "--time-scale", "30"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started(proc)
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


def test_faults_429_5xx_slow_drops_complete_without_duplicates(tmp):
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
            if p.returncode == EXIT_PAUSED:
                # A gate whose reads kept being refused (429s) until its timeout on a slow
                # machine (a sanitizer build) is inconclusive: a person approves it.
                for stage in sorted(set(re.findall(r"(\w+) \(inconclusive gate\)", p.stdout))):
                    assert rollout("approve", run, stage, "--state", db).returncode == EXIT_OK
            else:
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


def test_the_token_is_in_no_log_output_or_database(tmp):
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
        assert TOKEN.encode() not in raw  # the SQLite file's bytes; on PostgreSQL, no file
        assert_db_clean(db)  # every row of every table, either backend


def test_an_unknown_crash_point_is_refused_before_anything_is_written(tmp):
    """The kill tests name crash points from the engine's one list; a typo must not pass as a
    test that never kills."""
    db = f"{tmp}/state.db"
    p = rollout("apply", str(PLAN), "--state", db, "--yes", api="http://127.0.0.1:9/v1/",
                env_extra={"ROLLOUT_TEST_CRASH_AT": "after_intnet:2"})
    assert p.returncode == EXIT_INVALID, p.stdout + p.stderr
    assert "'after_intnet', which is not a crash point" in p.stderr and "after_intent" in p.stderr
    assert nothing_written(db)


def test_a_mistyped_command_option_or_stage_says_what_was_meant(tmp):
    p = rollout("aply", "plan.yaml")
    assert p.returncode == EXIT_INVALID and "unknown command 'aply' (did you mean 'apply'?)" in p.stderr, p.stderr
    p = rollout("show", "last", "--devcies")
    assert p.returncode == EXIT_INVALID, p.stderr
    assert "rollout show: unknown option '--devcies' (did you mean '--devices'?)" in p.stderr, p.stderr
    p = rollout("state", "migrat")
    assert p.returncode == EXIT_INVALID and "(did you mean 'migrate'?)" in p.stderr, p.stderr
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(SRC / "tests/plans/approval-four-stage.yaml"), "--state", db, "--yes",
                    "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
        p = rollout("approve", "last", "uss", "--state", db)
        assert p.returncode == EXIT_INVALID, p.stderr
        assert "has no stage 'uss' (did you mean 'us'?); its stages: canary, eu, us, everyone" in p.stderr, p.stderr


@pytest.mark.sqlite_file
def test_state_migrate_merges_refuses_the_same_run_twice_and_leaves_nothing_when_refused(tmp):
    plan = str(SRC / "plans/canary-then-fleet.yaml")
    fleet = str(SRC / "examples/fleets/small.yaml")
    a, b, c = f"{tmp}/a.db", f"{tmp}/b.db", f"{tmp}/c.db"
    for db in (a, b):
        p = rollout("apply", plan, "--simulate", fleet, "--state", db, "--yes", "--time-scale", SCALE)
        assert p.returncode == EXIT_PAUSED, p.stdout + p.stderr
    ids = lambda db: sorted(r["id"] for r in json.loads(rollout("runs", "--state", db, "--output", "json").stdout))
    first, second = ids(a), ids(b)
    p = rollout("state", "migrate", "--from", a, "--to", b)
    assert p.returncode == EXIT_OK, p.stdout + p.stderr
    assert ids(b) == sorted(first + second)  # merged beside the run it held
    before = Path(b).read_bytes()
    p = rollout("state", "migrate", "--from", a, "--to", b)
    assert p.returncode == EXIT_ERROR and "already: nothing was copied" in p.stderr, p.stderr
    assert ids(b) == sorted(first + second)
    # A refused migrate into a new file leaves no file: a live run of the source refuses it.
    live = subprocess.Popen([ROLLOUT, "apply", str(SRC / "tests/plans/four-stage.yaml"), "--simulate", fleet,
                             "--state", f"{tmp}/live.db", "--yes", "--no-progress"],
                            env=dict(os.environ, UPSWIFT_USER_TOKEN=TOKEN), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert live.stdout.readline().startswith("run r-")
        p = rollout("state", "migrate", "--from", f"{tmp}/live.db", "--to", c)
        assert p.returncode == EXIT_ERROR and "is being run by" in p.stderr, p.stderr
        assert not Path(c).exists() and not Path(c + "-wal").exists()
    finally:
        live.kill()
        live.communicate()


def test_pause_holds_new_stages_of_a_live_run_while_its_gate_decides_and_resume_goes_on(tmp):
    # A minute is a second here: the canary's 5-minute bake is under way when the pause comes.
    with Sim(tmp, STEADY, scale="60") as sim:
        db = f"{tmp}/state.db"
        proc = start_apply(PLAN, db, sim.url, scale="60")
        lines = [started(proc)]
        run = run_id_of(lines[0])
        for line in proc.stdout:
            lines.append(line)
            if re.search(r"\scanary\s+dispatched:", line):
                break
        p = rollout("pause", run, "--comment", "dashboards look odd", "--state", db)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        assert f"pause of run {run} recorded" in p.stdout, p.stdout
        out, err = proc.communicate(timeout=120)
        out = "".join(lines) + out
        assert proc.returncode == EXIT_PAUSED, out + err
        assert "dashboards look odd" in out and f"rollout resume {run} lets it go on" in out, out
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["status"] == "paused" and shown["reason"].startswith("paused by "), shown["reason"]
        statuses = {s["name"]: s["status"] for s in shown["stages"]}
        # The canary's gate went on deciding; nothing started after the pause.
        assert statuses == {"canary": "passed", "eu": "waiting", "us": "waiting", "everyone": "waiting"}, statuses
        kinds = [e["kind"] for e in shown["events"]]
        assert "pause" in kinds and "stage_started" not in kinds[kinds.index("pause"):], kinds
        assert sim.applied_per_marker() == {f"{run}/canary": 1}
        # What each stage waits for, as the start planner says: the pause, or their needs.
        status = json.loads(rollout("status", run, "--state", db, "--output", "json").stdout)
        waiting = {s["stage"]: s["waiting_for"] for s in status["stages"]}
        assert waiting == {"canary": "", "eu": f"the run's pause: rollout resume {run} lifts it",
                           "us": f"the run's pause: rollout resume {run} lifts it",
                           "everyone": "needs eu, us"}, waiting
        # Not running any more: a second pause is refused, nothing recorded.
        again = rollout("pause", run, "--state", db)
        assert again.returncode == EXIT_INVALID and "not running" in again.stderr, again.stderr
        # resume lifts it, saying whose it was, and the run goes on to the end.
        r = rollout("resume", run, "--state", db, "--time-scale", "60", api=sim.url)
        assert r.returncode == EXIT_OK, r.stdout + r.stderr
        assert f"pause of run {run} by " in r.stdout and " lifted" in r.stdout, r.stdout
        assert sim.applied_per_marker() == {f"{run}/{s}": 1 for s in ["canary", "eu", "us", "everyone"]}
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["status"] == "completed"
        lifted = [e for e in shown["events"] if e["kind"] == "pause_lifted"]
        assert lifted and "lifted by" in lifted[0]["message"], shown["events"]


def test_a_stage_scope_rollback_names_the_stages_that_keep_the_new_version_and_abort_rolls_them_back(tmp):
    # canary, then eu, then us (which fails on the fake): us rolls back, canary and eu passed.
    plan = Path(tmp) / "sequential.yaml"
    plan.write_text(PLAN.read_text().replace("  - name: us\n    needs: [canary]", "  - name: us\n    needs: [eu]"))
    with Server(tmp, "fake", fake_args=["--fail-group", "US:73a7-1ft8"]) as srv:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(plan), "--state", db, "--yes", "--time-scale", SCALE, api=srv.url)
        assert p.returncode == EXIT_STOPPED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        assert (f"; canary and eu keep the new version (rollout abort {run} --rollback rolls them back too)"
                in p.stdout), p.stdout
        assert not rollback_log(srv, run, "eu") and not rollback_log(srv, run, "canary")
        # Typed as the run says: the stopped run's passed stages roll back, each device once.
        a = rollout("abort", run, "--rollback", "--state", db, "--time-scale", SCALE, api=srv.url)
        assert a.returncode == EXIT_STOPPED, a.stdout + a.stderr
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        assert shown["status"] == "aborted", shown["status"]
        assert {s["name"]: s["status"] for s in shown["stages"]} == {
            "canary": "rolled_back", "eu": "rolled_back", "us": "rolled_back", "everyone": "waiting"}, shown["stages"]
        assert len(rollback_log(srv, run, "eu")) == 1  # eu's whole selection, once
        assert len(rollback_log(srv, run, "canary")) == 6  # the canary selects by online state: each device
        assert len(rollback_log(srv, run, "us")) == 1  # not again
        # Nothing is left on the new version: a second abort is refused.
        again = rollout("abort", run, "--rollback", "--state", db, api=srv.url)
        assert again.returncode == EXIT_INVALID and "already aborted" in again.stderr, again.stderr


def test_an_approval_given_from_another_terminal_shows_in_the_live_apply_log(tmp):
    plan = SRC / "tests/plans/approval-four-stage.yaml"
    with Sim(tmp, STEADY, scale="60") as sim:
        db = f"{tmp}/state.db"
        proc = start_apply(plan, db, sim.url, scale="60")
        lines = [started(proc)]
        run = run_id_of(lines[0])
        for line in proc.stdout:
            lines.append(line)
            if re.search(r"\sus\s+approval_needed:", line):
                break
        a = rollout("approve", run, "us", "--comment", "EU looks healthy", "--state", db)
        assert a.returncode == EXIT_OK, a.stdout + a.stderr
        out, err = proc.communicate(timeout=120)
        out = "".join(lines) + out
        assert proc.returncode == EXIT_OK, out + err
        assert re.search(r"\sus\s+approved: approved by \S+: EU looks healthy", out), out
        assert out.index("approved by") < out.index(" us           dispatch"), out
