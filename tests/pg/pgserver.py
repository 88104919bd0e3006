#!/usr/bin/env python3
"""pgserver.py - a private PostgreSQL for one test run (docs/postgres.md).

The tests never use a system cluster: each run makes its own with initdb in a
temporary directory, owned by an unprivileged user (initdb refuses root; as
root the cluster belongs to Debian's `postgres` user), listening on 127.0.0.1
on a free port with trust authentication, and stops it at the end.

As a module:

    with PgServer() as pg:
        pg.url            # postgresql://lode@127.0.0.1:PORT/lode
        pg.new_database("x")  # another empty database, its URL
        pg.psql("SELECT 1")   # runs SQL, returns stdout
        pg.stop(); pg.start() # restart (connection-fault tests)

As a command (for ctest, busted and C tests), it runs CMD with $LODE_TEST_PG
set to the database URL and stops the server after, passing on CMD's exit
status:

    pgserver.py run -- CMD [ARGS...]
"""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

USER = "lode"  # the database role the tests connect as


def _bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                       "`make deps` installs Debian's postgresql")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, tmp=None):
        self.bindir = _bindir()
        self.owned_tmp = tmp is None
        self.tmp = tmp or tempfile.mkdtemp(prefix="lode-pg-")
        self.data = os.path.join(self.tmp, "data")
        self.sock = os.path.join(self.tmp, "sock")
        self.port = _free_port()
        self.running = False
        self.as_user = []
        if os.getuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root, and there is no 'postgres' user to own "
                                   "the test cluster (Debian's postgresql package creates it)")
            self.as_user = ["runuser", "-u", "postgres", "--"]
            os.chmod(self.tmp, 0o755)
            for d in (self.data, self.sock):
                os.makedirs(d, mode=0o700, exist_ok=True)
                os.chown(d, pw.pw_uid, pw.pw_gid)
        else:
            os.makedirs(self.sock, mode=0o700, exist_ok=True)
        self.url = f"postgresql://{USER}@127.0.0.1:{self.port}/lode"

    def _run(self, args, **kw):
        return subprocess.run(self.as_user + args, check=True, capture_output=True,
                              text=True, timeout=kw.pop("timeout", 120), **kw)

    def init(self):
        try:
            self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", USER,
                       "-A", "trust", "-E", "UTF8", "--no-sync"])
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"initdb failed: {e.stderr}") from e
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            # Durability stays on (fsync, synchronous_commit): the tests check
            # what a user's server gives. Only sizes are made small.
            f.write("max_connections = 200\nshared_buffers = 64MB\n"
                    "log_min_messages = warning\n")
        return self

    def start(self):
        try:
            self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-w", "-t", "60",
                       "-l", os.path.join(self.sock, "server.log"), "-o",
                       f"-h 127.0.0.1 -p {self.port} -k {self.sock}", "start"])
        except subprocess.CalledProcessError as e:
            log = ""
            try:
                log = open(os.path.join(self.sock, "server.log")).read()[-4000:]
            except OSError:
                pass
            raise RuntimeError(f"PostgreSQL did not start on 127.0.0.1:{self.port}: "
                               f"{e.stderr}{log}") from e
        self.running = True
        if not getattr(self, "_created", False):
            self.psql("CREATE DATABASE lode", db="postgres")
            self._created = True
        return self

    def stop(self, mode="fast"):
        if self.running:
            subprocess.run(self.as_user + [os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                                           "-m", mode, "-w", "-t", "60", "stop"],
                           capture_output=True, timeout=120)
            self.running = False

    def psql(self, sql, db="lode"):
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h",
                            "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", db, "-c", sql],
                           capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise RuntimeError(f"psql: {sql}: {r.stderr}")
        return r.stdout

    def new_database(self, name):
        self.psql(f'CREATE DATABASE "{name}"', db="postgres")
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def __enter__(self):
        try:
            return self.init().start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.stop("immediate")
        if self.owned_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main(argv):
    if len(argv) < 3 or argv[1] != "run" or argv[2] != "--" or len(argv) < 4:
        print("usage: pgserver.py run -- CMD [ARGS...]", file=sys.stderr)
        return 2
    # ctest's timeout sends SIGTERM: stop the server on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with PgServer() as pg:
        env = dict(os.environ, LODE_TEST_PG=pg.url)
        return subprocess.call(argv[3:], env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
