"""The layer rules (docs/architecture.md#layers) hold on the tree, and the
checker (scripts/check_layers.py) finds a violation of each rule planted in
a copy of src/."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.environ.get("LODE_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
CHECK = os.path.join(ROOT, "scripts", "check_layers.py")


def run_check(src):
    p = subprocess.run([sys.executable, CHECK, src], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def test_tree_passes():
    rc, out = run_check(os.path.join(ROOT, "src"))
    assert rc == 0, out


@pytest.fixture
def tree(tmp_path):
    dst = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "src"), dst)
    return dst


def plant(tree, rel, text):
    path = tree / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write("\n" + text + "\n")


PLANTED = [
    # (file, planted text, what the report must say)
    ("core/executor.c", "#include <sqlite3.h>", "core/executor.c:"),
    ("core/executor.h", "#include <lua.h>", "includes <lua.h>"),
    ("core/executor.c", "static void f(void) { sqlite3_free(0); }", "calls sqlite3_free"),
    ("trace/trace_view.c", "int g(void *d) { return sqlite3_exec(d, 0, 0, 0, 0); }",
     "calls sqlite3_exec"),
    ("cli/main.c", "static int h(void) { return sqlite3_threadsafe(); }",
     "calls sqlite3_threadsafe"),
    ("kernels/text_split.c", '#include "core/executor.h"', "kernels may not include core"),
    ("kernels/fs.c", '#include "state/sysdb.h"', "kernels may not include state"),
    ("kernels/embed.c", '#include "trace/trace.h"', "kernels may not include trace"),
    ("kernels/store.c", '#include "lua/lode_host.h"', "kernels may not include lua"),
    ("trace/trace.c", '#include "lua/lode_host.h"', "trace may not include lua"),
    ("trace/trace.c", "#include <lauxlib.h>", "includes <lauxlib.h>"),
    ("trace/trace_export.c", '#include "kernels/embed.h"', "trace may not include kernels"),
    ("core/executor.c", '#include "state/sqlite/schema.h"', "a state backend's own"),
    ("state/sqlite/trace_store.c", '#include "state/pg/pg.h"', "a state backend's own"),
    ("state/sqlite/queues.c", '#include "state/postgres/pg_int.h"', "a state backend's own"),
    ("core/executor.c", '#include "state/postgres/pg_int.h"', "a state backend's own"),
    ("state/postgres/queues.c", '#include "state/sqlite/sysdb_int.h"', "a state backend's own"),
    ("state/postgres/conn.c", "#include <sqlite3.h>", "includes <sqlite3.h>"),
    ("core/executor.c", "#include <libpq-fe.h>", "includes <libpq-fe.h>"),
    ("state/sysdb.c", "static void p(void *c) { PQfinish(c); }", "calls PQfinish"),
    ("cli/main.c", '#include "lua/lode_lua_internal.h"', "public header"),
    ("state/sysdb.h", '#include "core/executor.h"', "state may not include core"),
    ("base/buf.c", '#include "trace/trace.h"', "include cycle between folders"),
    ("misc/extra.c", "int x;", "not in a known layer"),
    ("kernels/store_sqlite.c", "#include <libpq-fe.h>", "use libpq"),
    ("kernels/store.c", "static void p(void *c) { PQfinish(c); }", "calls PQfinish"),
    ("core/executor.c", "static int q(void *c) { return PQstatus(c); }", "calls PQstatus"),
]


@pytest.mark.parametrize("rel,text,says", PLANTED, ids=[p[2] for p in PLANTED])
def test_planted_violation_is_found(tree, rel, text, says):
    rc, out = run_check(str(tree))
    assert rc == 0, "the copy must be clean before planting:\n" + out
    plant(tree, rel, text)
    rc, out = run_check(str(tree))
    assert rc == 1, out
    assert says in out, out
    assert rel.split("/")[0] in out, out


def test_comments_and_strings_do_not_count(tree):
    plant(tree, "core/executor.c",
          '/* sqlite3_exec(db) would be wrong here */\nstatic const char *s = "sqlite3_open(";')
    rc, out = run_check(str(tree))
    assert rc == 0, out
