"""What a person watching a run sees: the event stream against its schema, the live progress
on a terminal and plain lines off one, status --watch from another process, rehearsals."""
import json
import os
import re
import subprocess

from e2e import EXIT_INVALID, EXIT_OK, EXIT_STOPPED, SCALE, run_id_of
from cli_helpers import EVENT_SCHEMA, FAILING, PLAN, ROLLOUT, SOME_FAILURES, STEADY, Sim, TOKEN, parse_time, read_pty, rollout


def test_event_stream_follows_its_schema_from_run_to_end(tmp):
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


def test_progress_redraws_on_a_terminal_and_is_plain_otherwise(tmp):
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
    # The redrawn block's lines: its header ("run R STATUS · ...") and its stages. The
    # announcement above it, and events, may wrap: they are never redrawn.
    headers = [line for line in plain.splitlines() if re.match(r"run r-\S+ \w+ · ", line)]
    assert headers, plain[-3000:]
    for line in headers + [line for line in plain.splitlines() if line.startswith("  ")]:
        assert len(line) <= 100, f"wider than the terminal: {line!r}"
    # NO_COLOR or --no-progress on a terminal, or a pipe: timestamped lines, no escapes.
    for run_pty, extra_env, extra_argv in ((True, {"NO_COLOR": "1"}, []), (True, {}, ["--no-progress"]),
                                           (False, {}, [])):
        rc, out = apply_on_a_fresh_fleet(run_pty, extra_env, extra_argv)
        assert rc == EXIT_OK, out
        assert "\x1b" not in out, (extra_env, extra_argv)
        assert re.search(r"^\d\d:\d\d:\d\d  canary\s+dispatched:", out, re.M), out


def test_status_watch_follows_a_run_from_another_process(tmp):
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


def test_rehearsal_predicts_the_real_run(tmp):
    """The fleet's own seed: the rehearsal (virtual clock) and a real time-scaled run
    against `rollout sim` make the same decisions, calls and (within a poll) times."""
    p = rollout("rehearse", str(PLAN), "--fleet", str(SOME_FAILURES), "--output", "json")
    assert p.returncode == EXIT_STOPPED, p.stderr  # the exit code of the predicted ending
    predicted = json.loads(p.stdout)
    assert predicted["ending"] == "stopped"  # seed 21: an EU-North device fails
    # Time 120 times faster, not 600: the times are compared within two polls (125 s), which
    # is then a second of wall time that a loaded machine (or ASan) may lag, not 0.2 s.
    with Sim(tmp, SOME_FAILURES, scale="120") as sim:
        db = f"{tmp}/state.db"
        p = rollout("apply", str(PLAN), "--state", db, "--yes", "--time-scale", "120", "--output", "json", api=sim.url)
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
    # us runs beside eu: where eu fails, us is cut off and rolled back with it, which is not a
    # failure of its own gate; everyone then never starts.
    rows = {l.split()[0]: l.split()[1:6] for l in p.stdout.splitlines() if l.split()[:1] in (["us"], ["everyone"])}
    assert rows["us"][1] == "0%" and rows["us"][3] == f"{m.group(1)}%", rows
    assert rows["everyone"][4] == f"{m.group(1)}%", rows
    assert "the us gate fails" not in p.stdout
