"""pytest's view of the end-to-end suites: the binary and the source tree under test, the
suites' own options, and a fresh directory per test.

    python3 -m pytest tests/integration/test_cli_runs.py --rollout build/rollout --source .
    ... -k sigkill_at       one theme of cases (pytest's -k), as --only did
    ... --state-backend=postgresql   the same cases on PostgreSQL (pg_state.py)
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import e2e
import pg_state


def pytest_addoption(parser):
    group = parser.getgroup("rollout")
    group.addoption("--rollout", default=os.environ.get("ROLLOUT_BIN", "build/rollout"),
                    help="the rollout binary under test (default: $ROLLOUT_BIN, else build/rollout)")
    group.addoption("--source", default=str(Path(__file__).resolve().parents[2]),
                    help="the source tree (plans, fleets, schemas); default: this one")
    group.addoption("--random-kills", type=int, default=4,
                    help="test_cli_kills: SIGKILL trials at random moments")
    group.addoption("--kill-seed", type=int, default=1234,
                    help="test_cli_kills: seeds the random moments (the same seed replays them)")
    group.addoption("--seeds", type=int, default=6, help="test_never_twice: fault-mix trials")
    group.addoption("--first-seed", type=int, default=1, help="test_never_twice: the first seed")
    group.addoption("--freezes", type=int, default=2,
                    help="test_never_twice: freeze-and-takeover trials")
    group.addoption("--state-backend", choices=("sqlite", "postgresql"), default="sqlite",
                    help="where the runs' state lives: SQLite files, or databases on a PostgreSQL "
                         "server ($ROLLOUT_TEST_PG_DIR's, else one the suite starts)")


def pytest_configure(config):
    # Before any test module is imported: they read these at import.
    e2e.Env.rollout = str(Path(config.getoption("--rollout")).resolve())
    e2e.Env.src = Path(config.getoption("--source")).resolve()
    e2e.Env.options = config.option
    config.addinivalue_line("markers", "sqlite_file: a case about SQLite's state file itself")
    e2e.Env.backend = config.getoption("--state-backend")
    if e2e.Env.backend == "postgresql":
        own = tempfile.mkdtemp(prefix="rollout-pg-suite-")
        os.chmod(own, 0o755)  # the server's own user (scripts/pg.sh, as root) goes through it
        if not os.environ.get("ROLLOUT_TEST_PG_DIR"):
            config.own_pg_server = pg_state.start_server(Path(own) / "server")
        config.own_dir = own
        e2e.Env.real_rollout = e2e.Env.rollout
        e2e.Env.rollout = pg_state.write_wrapper(e2e.Env.rollout, own)


def pytest_unconfigure(config):
    if getattr(config, "own_pg_server", None):
        pg_state.stop_server(config.own_pg_server)
    if getattr(config, "own_dir", None):
        shutil.rmtree(config.own_dir, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    """Cases about SQLite's file itself (its path, its locks, its bytes) stay on SQLite."""
    if config.getoption("--state-backend") != "postgresql":
        return
    skip = pytest.mark.skip(reason="about SQLite's state file itself")
    for item in items:
        if "sqlite_file" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tmp(tmp_path):
    """A fresh directory for the test's state database, logs and servers' files. After the
    test, every SQLite state database in it keeps the invariant that no terminal run has a
    call whose outcome is unknown (e2e.unknown_calls_of_terminal_runs)."""
    yield str(tmp_path)
    for db in sorted(tmp_path.rglob("*.db")):
        found = e2e.unknown_calls_of_terminal_runs_in_file(db)
        assert not found, f"{db}: terminal runs with calls whose outcome is unknown: {found}"
