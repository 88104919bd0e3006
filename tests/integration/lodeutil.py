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


class Lode:
    """Runs lode in a folder with its own state database."""

    def __init__(self, folder):
        self.dir = str(folder)
        self.db = os.path.join(self.dir, "state.db")

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
