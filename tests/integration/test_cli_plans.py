"""Saved plans, sampled waves, retries and webhooks end to end."""
import json
import re
import time
import threading
import http.server
from pathlib import Path

import requests

from e2e import EXIT_INVALID, EXIT_OK, EXIT_STOPPED, SCALE, run_id_of
from cli_helpers import FAILING, PLAN, PREVIEW_FLEET, PREVIEW_PLAN, SRC, STEADY, Sim, TOKEN, assert_db_clean, rollout


def test_live_plan_counts_each_stage_and_apply_runs_the_saved_plan(tmp):
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


def test_stale_saved_plan_is_refused_and_sends_nothing(tmp):
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


def test_retry_sends_again_to_the_failed_devices_only(tmp):
    """A canary fails on some devices and the run stops; rollout retry --failed-only sends
    one specific_device deploy_update to each failed device, and nothing to the others."""
    with Sim(tmp, FAILING) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(SRC / "tests/plans/retry.yaml"), "--state", db, "--yes", "--time-scale", SCALE,
                    api=sim.url)
        assert p.returncode == EXIT_STOPPED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        refused = rollout("retry", run, "canary", "--devices", "no-such-device", "--state", db, api=sim.url)
        assert refused.returncode == EXIT_INVALID and "is not one of stage canary's" in refused.stderr, refused.stderr
        refused = rollout("retry", run, "eu", "--failed-only", "--state", db, api=sim.url)
        assert refused.returncode == EXIT_INVALID and "has not been dispatched" in refused.stderr
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
        canary = next(s for s in shown["stages"] if s["name"] == "canary")
        assert canary["last_observation"]["failed"] > 0
        before = len(sim.requests())
        # --failed-only is the default: said or not, the same retry.
        p = rollout("retry", run, "canary", "--state", db, "--time-scale", SCALE, api=sim.url)
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


def test_retry_of_chosen_devices_sends_to_those_only(tmp):
    """retry --devices: only the chosen of the failed devices get the update again; a device
    whose update did not fail is refused by name, and nothing is sent."""
    with Sim(tmp, FAILING) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(SRC / "tests/plans/retry.yaml"), "--state", db, "--yes", "--time-scale", SCALE,
                    api=sim.url)
        assert p.returncode == EXIT_STOPPED, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        # What the fleet says now of this run's update on each canary (the gate failed early:
        # some were still updating then), once every update has finished.
        marker = f"[rollout {run}/canary]"
        for _ in range(50):
            details = requests.get(sim.url + "devices_details", json={
                "user_token": TOKEN, "project_name": "Demo", "group_name": "Canary", "limit": 50}).json()
            status = {d["device_uuid"]: next(u["update_status"] for u in d["updates"] if marker in u["comment"])
                      for d in details["message"] if any(marker in u["comment"] for u in d["updates"])}
            if all(s in ("success", "failed") for s in status.values()):
                break
            time.sleep(0.1)
        failed = sorted(u for u, s in status.items() if s == "failed")
        fine = sorted(u for u, s in status.items() if s == "success")
        assert failed and fine, status
        before = len(sim.requests())
        refused = rollout("retry", run, "canary", "--devices", f"{failed[0]},{fine[0]}", "--state", db, api=sim.url)
        assert refused.returncode == EXIT_INVALID, refused.stdout + refused.stderr
        assert f"the update of device {fine[0]} in stage canary is success, not failed" in refused.stderr
        assert not [r for r in sim.requests()[before:] if r["endpoint"] == "deploy_update"]
        p = rollout("retry", run, "canary", "--devices", failed[0], "--state", db, "--time-scale", SCALE, api=sim.url)
        assert p.returncode in (EXIT_OK, EXIT_STOPPED), p.stdout + p.stderr
        assert "retry 1 of stage canary: 1 device(s)" in p.stdout, p.stdout
        retried = [r["body"]["devices_filter"]["filters"][0]["value"] for r in sim.requests()[before:]
                   if r["endpoint"] == "deploy_update" and r.get("applied")
                   and f"[rollout {run}/canary] (retry 1)" in r["body"]["metadata"].get("comment", "")]
        assert retried == [failed[0]], retried


def test_webhooks_get_the_run_in_order_and_a_dead_one_holds_nothing_up(tmp):
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


def test_plan_offline_shows_each_body_exactly_as_the_run_sends_it(tmp):
    """`plan --offline` prints each stage's deploy_update body with its marker; a run of the
    same plan records the very same bodies (RUN being its id), byte for byte once parsed."""
    planned = json.loads(rollout("plan", "--offline", str(PLAN), "--output", "json").stdout)
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        shown = json.loads(rollout("show", run, "--state", db, "--output", "json").stdout)
    sent = {c["stage"]: c["body"] for c in shown["api_calls"] if c["kind"] == "dispatch"}
    for stage in planned["stages"]:
        expected = json.loads(json.dumps(stage["deploy_update"]).replace("[rollout RUN/", f"[rollout {run}/"))
        assert sent[stage["name"]] == expected, (stage["name"], sent[stage["name"]], expected)
    text = rollout("plan", "--offline", str(PLAN)).stdout
    assert "[rollout RUN/canary]" in text and "RUN stands for the run's id" in text, text
