"""Helpers for integration tests that drive the real `lode` binary."""
import os
import signal
import sqlite3
import subprocess
import time

LODE = os.environ.get("LODE_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "lode")
SOURCE = os.environ.get("LODE_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
# the test helper that fills a trace store through the C API, built beside lode
FILL = os.path.join(os.path.dirname(LODE), "lode_trace_fill")


def opik_free_env(tmp_path):
    """The environment without any Opik setting of the machine's."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("OPIK_")}
    e["HOME"] = str(tmp_path)  # no ~/.opik.config from the machine
    e["OPIK_CONFIG_PATH"] = str(tmp_path / "no-opik.config")
    return e


# With $LODE_TEST_PG (a PostgreSQL URL, set by `tests/pg/pgserver.py run`),
# every Lode gets a fresh database on that server instead of a file: the
# same tests then run on the PostgreSQL backend (ctest's *_pg entries).
TEST_PG = os.environ.get("LODE_TEST_PG") or None
_pg_count = [0]


def on_pg():
    return TEST_PG is not None


def pg_psql(url, query):
    """Runs SQL on PostgreSQL with psql; rows as tuples (numbers as int)."""
    p = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
                        "-d", url, "-c", "SET search_path TO lode, public", "-c", query],
                       capture_output=True, text=True, timeout=120)
    if p.returncode:
        raise RuntimeError(f"psql: {query}: {p.stderr}")
    rows = []
    for line in p.stdout.splitlines():
        cells = []
        for c in line.split("\x1f"):
            try:
                cells.append(int(c))
            except ValueError:
                cells.append(None if c == "" else c)
        rows.append(tuple(cells))
    return rows


def new_pg_database():
    """A fresh database on the test server, its URL."""
    _pg_count[0] += 1
    name = "t%d_%d_%d" % (os.getpid(), _pg_count[0], int(time.time() * 1000) % 100000)
    base = TEST_PG.rsplit("/", 1)[0]
    subprocess.run(
        ["psql", "-X", "-q", "-d", base + "/postgres", "-c", f'CREATE DATABASE "{name}"'],
        check=True, capture_output=True, timeout=120)
    return f"{base}/{name}"


def _sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


class Lode:
    """Runs lode in a folder with its own state database (a file, or a fresh
    PostgreSQL database when $LODE_TEST_PG is set)."""

    def __init__(self, folder):
        self.dir = str(folder)
        self.db = new_pg_database() if on_pg() else os.path.join(self.dir, "state.db")

    def env(self, extra=None):
        e = dict(os.environ)
        e["LODE_DB"] = self.db
        e.pop("LODE_TEST_CRASH_AT", None)
        for k in list(e):
            if k.startswith("OPIK_"):
                del e[k]
        if extra:
            e.update(extra)
        return e

    def run(self, *args, env=None, timeout=120, check=None):
        p = subprocess.run([LODE, *args], cwd=self.dir, env=self.env(env),
                           capture_output=True, text=True, timeout=timeout)
        if check is not None:
            assert p.returncode == check, f"exit {p.returncode}\nstdout:{p.stdout}\nstderr:{p.stderr}"
        return p

    def start(self, *args, env=None):
        return subprocess.Popen([LODE, *args], cwd=self.dir, env=self.env(env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def read_lines(self, name):
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [l.rstrip("\n") for l in f]

    def sql(self, query, *params):
        if on_pg():
            parts = query.split("?")
            assert len(parts) == len(params) + 1, query
            q = parts[0] + "".join(_sql_literal(v) + rest for v, rest in zip(params, parts[1:]))
            return pg_psql(self.db, q)
        con = sqlite3.connect(self.db)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()


def wait_for(pred, timeout=30.0, step=0.01):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def kill9(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
