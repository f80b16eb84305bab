"""SIGKILL at every crash point of the engine (src/engine/markers.h, 1st to 4th time) and at
random moments, then resume: each stage's deploy_update is applied exactly once."""
import random
import signal

import pytest

from cli_helpers import SAMPLED_PLAN, STEADY, Sim, assert_db_clean, kill_and_resume, rollout, sampled_wave_targets
from e2e import EXIT_OK, SCALE, Env, connect_state, crash_points, run_id_of


# Every crash point a run without a failure reaches (a rollback's has its own tests).
@pytest.mark.parametrize("nth", [1, 2, 3, 4])
@pytest.mark.parametrize("point", [p for p in crash_points() if p != "after_rollback_intent"])
def test_sigkill_at_then_resume_dispatches_exactly_once(tmp, point, nth):
    kill_and_resume(tmp, crash_at=f"{point}:{nth}")


def pytest_generate_tests(metafunc):
    """--random-kills N moments drawn from --kill-seed (the same seed replays the same moments)."""
    if "kill_after" in metafunc.fixturenames:
        rng = random.Random(Env.options.kill_seed)
        delays = [rng.uniform(0.2, 2.5) for _ in range(Env.options.random_kills)]
        metafunc.parametrize("kill_after", delays, ids=[f"{d:.2f}s" for d in delays])


def test_sigkill_after_then_resume_dispatches_exactly_once(tmp, kill_after):
    kill_and_resume(tmp, kill_after=kill_after)


def test_sampled_wave_draws_the_same_devices_after_kill_and_resume(tmp):
    """SIGKILL between the wave's per-device calls: resume draws the same 5 devices, each
    gets exactly one update, and none of them is one the earlier stage targeted."""
    with Sim(tmp, STEADY) as sim:
        db = f"{tmp}/state.db"
        # The 3rd answer: eu's call's, then the wave's 1st and 2nd (its intents were all
        # committed before the first was sent).
        p = rollout("apply", str(SAMPLED_PLAN), "--state", db, "--yes", "--time-scale", SCALE,
                    env_extra={"ROLLOUT_TEST_CRASH_AT": "after_answer:3"}, api=sim.url)
        assert p.returncode == -signal.SIGKILL, p.stdout + p.stderr
        run = run_id_of(p.stdout)
        con = connect_state(db)
        drawn = [u for u, in con.execute(
            "SELECT device_uuid FROM snapshot_devices WHERE run_id = ? AND stage = 'wave' ORDER BY device_id", (run,))]
        eu = {u for u, in con.execute(
            "SELECT device_uuid FROM snapshot_devices WHERE run_id = ? AND stage = 'eu'", (run,))}
        con.close()
        assert len(drawn) == 5 and len(eu) == 8
        p = rollout("resume", run, "--state", db, "--time-scale", SCALE, api=sim.url)
        assert p.returncode == EXIT_OK, p.stdout + p.stderr
        con = connect_state(db)
        after = [u for u, in con.execute(
            "SELECT device_uuid FROM snapshot_devices WHERE run_id = ? AND stage = 'wave' ORDER BY device_id", (run,))]
        con.close()
        assert after == drawn
        per_device = sampled_wave_targets(sim, run)
        assert per_device == {u: 1 for u in drawn}, per_device
        assert not (set(drawn) & eu)
        assert sim.applied_per_marker()[f"{run}/eu"] == 1
        assert_db_clean(db)
