"""The end-to-end suites on PostgreSQL, unchanged: with --state-backend=postgresql every
`rollout` the suites start goes through this file as a wrapper that gives each state path
(`--state PATH`, ROLLOUT_STATE) a database of its own on the throw-away server
(scripts/pg.sh; ROLLOUT_TEST_PG_DIR names it, else the suite starts one), then execs the
binary (same pid: signals reach it). The suites read the state through connect().

    pg_state.py REAL_BINARY ARGS...   (what the wrapper script runs)
"""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]


def server_dir():
    return Path(os.environ["ROLLOUT_TEST_PG_DIR"])


def server_url():
    """postgresql://rollout@127.0.0.1:PORT/ (no database); PGPASSWORD set from the server."""
    d = server_dir()
    os.environ["PGPASSWORD"] = (d / "password").read_text().strip()
    url = (d / "url").read_text().strip()
    return url[: url.rfind("/") + 1]


def start_server(where):
    """A server of the suite's own, when ctest did not start one: its directory."""
    subprocess.run(["bash", str(SRC / "scripts/pg.sh"), "start", str(where)], check=True,
                   stdout=subprocess.DEVNULL)
    os.environ["ROLLOUT_TEST_PG_DIR"] = str(where)
    return where


def stop_server(where):
    subprocess.run(["bash", str(SRC / "scripts/pg.sh"), "stop", str(where)], check=False)


def database_for(path):
    """The database that stands for the SQLite path `path`: created on first use."""
    import psycopg2
    name = "s_" + hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:24]
    admin = psycopg2.connect(server_url() + "postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as c:
            c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if not c.fetchone():
                try:
                    c.execute(f"CREATE DATABASE {name}")
                except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
                    pass  # another process of the same test made it first
    finally:
        admin.close()
    return name


def url_for(path):
    if path.startswith("postgres"):
        return path
    return server_url() + database_for(path)


class Connection:
    """sqlite3's con.execute(sql, params) over psycopg2: `?` placeholders, autocommit."""

    def __init__(self, path):
        import psycopg2
        self.con = psycopg2.connect(url_for(path))
        self.con.autocommit = True

    def execute(self, sql, params=()):
        cur = self.con.cursor()
        cur.execute(sql.replace("?", "%s"), tuple(params))
        return cur

    def commit(self):
        pass  # autocommit: each statement is committed as it runs

    def close(self):
        self.con.close()


def connect(path):
    return Connection(path)


def exec_rollout(real, argv):
    argv = list(argv)
    for i, a in enumerate(argv[:-1]):
        if a == "--state":
            argv[i + 1] = url_for(argv[i + 1])
    for i, a in enumerate(argv):
        if a.startswith("--state="):
            argv[i] = "--state=" + url_for(a[len("--state="):])
    if os.environ.get("ROLLOUT_STATE"):
        os.environ["ROLLOUT_STATE"] = url_for(os.environ["ROLLOUT_STATE"])
    os.execv(real, [real, *argv])


def write_wrapper(real, where):
    """An executable that runs `real` on PostgreSQL state; its path."""
    script = Path(where) / "rollout"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                      f"import pg_state\npg_state.exec_rollout({real!r}, sys.argv[1:])\n")
    script.chmod(0o755)
    return str(script)


if __name__ == "__main__":
    exec_rollout(sys.argv[1], sys.argv[2:])
