"""Faults that used to hurt (issue 17): a full disk, a huge record, a refused
key, export's timeout, a runaway step, a newer or corrupt state database,
links out of a walked folder, table errors. Each test names the docs/ page
that promises the behaviour."""
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_opik import FakeOpik  # noqa: E402
from lodeutil import FILL, LODE, SOURCE, Lode, opik_free_env, wait_for  # noqa: E402


@pytest.fixture
def env(tmp_path):
    return opik_free_env(tmp_path)


def run(env, *args, timeout=120, cwd=None):
    return subprocess.run([LODE, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def states(db):
    with sqlite3.connect(str(db)) as c:
        return dict(c.execute("SELECT state, count(*) FROM trace_records GROUP BY state"))


# ---- 3. a refused key (docs/tracing.md, "Outages, retries and rejected records")

@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_keeps_every_record_pending(tmp_path, env, status):
    db = tmp_path / "t.db"
    p = subprocess.run([FILL, str(db), "--traces", "4", "--spans", "30"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    with FakeOpik(auth_status=status) as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        env["OPIK_API_KEY"] = "wrong-key-123"
        env["OPIK_WORKSPACE"] = "team-x"
        t0 = time.monotonic()
        p = run(env, "export", "--db", str(db))
        took = time.monotonic() - t0
        st = opik.state()
    assert p.returncode == 1, p.stdout + p.stderr
    assert "refused the API key or workspace" in p.stderr
    assert "OPIK_API_KEY" in p.stderr  # where the key came from
    assert "workspace 'team-x'" in p.stderr  # which workspace was used
    assert "wrong-key-123" not in p.stdout + p.stderr
    assert took < 10
    assert len(st["requests"]) <= 2, st["requests"]  # no splitting to single records
    assert states(db) == {"pending": 4 + 4 * 30}
    # the key fixed: everything goes
    with FakeOpik() as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        p = run(env, "export", "--db", str(db))
        assert p.returncode == 0, p.stdout + p.stderr
    assert states(db) == {"sent": 4 + 4 * 30}


def test_refused_key_from_the_config_file_is_named(tmp_path, env):
    db = tmp_path / "t.db"
    subprocess.run([FILL, str(db), "--traces", "1", "--spans", "2"], env=env, check=True,
                   capture_output=True, timeout=60)
    with FakeOpik(auth_status=401) as opik:
        cfg = tmp_path / "opik.config"
        cfg.write_text("[opik]\nurl_override = %s\napi_key = file-key\n" % opik.url)
        env["OPIK_CONFIG_PATH"] = str(cfg)
        p = run(env, "export", "--db", str(db))
    assert p.returncode == 1
    assert str(cfg) in p.stderr and "file-key" not in p.stderr
    assert states(db) == {"pending": 1 + 2}


def test_live_exporter_refused_key_condemns_nothing(tmp_path, env):
    db = tmp_path / "t.db"
    with FakeOpik(auth_status=401) as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        env["OPIK_API_KEY"] = "wrong"
        p = subprocess.run([FILL, str(db), "--traces", "3", "--spans", "10", "--export",
                            "--flush", "2"], env=env, capture_output=True, text=True,
                           timeout=60)
        st = opik.state()
    assert p.returncode == 0, p.stderr
    assert "refused the API key" in p.stderr
    assert len(st["requests"]) <= 2
    assert "failed" not in states(db)


# ---- 4. lode export --timeout (docs/tracing.md, "lode export") ------------------

def silent_server():
    """Accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    held = []

    def accept():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            held.append(c)

    threading.Thread(target=accept, daemon=True).start()
    return s, "http://127.0.0.1:%d/api" % s.getsockname()[1]


@pytest.mark.parametrize("timeout", [0, 3])
def test_export_timeout_is_honoured(tmp_path, env, timeout):
    db = tmp_path / "t.db"
    subprocess.run([FILL, str(db), "--traces", "2", "--spans", "3"], env=env, check=True,
                   capture_output=True, timeout=60)
    sock, url = silent_server()
    try:
        env["OPIK_URL_OVERRIDE"] = url
        t0 = time.monotonic()
        p = run(env, "export", "--timeout", str(timeout), "--db", str(db))
        took = time.monotonic() - t0
    finally:
        sock.close()
    assert p.returncode == 1, p.stdout + p.stderr
    assert "still pending" in p.stdout
    assert took < timeout + 1.0, took
    assert states(db) == {"pending": 2 + 2 * 3}


def test_export_timeout_zero_makes_one_pass_that_delivers(tmp_path, env):
    # "0: one pass": what is due goes out once, within about a second
    db = tmp_path / "t.db"
    subprocess.run([FILL, str(db), "--traces", "3", "--spans", "20"], env=env, check=True,
                   capture_output=True, timeout=60)
    with FakeOpik() as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        t0 = time.monotonic()
        p = run(env, "export", "--timeout", "0", "--db", str(db))
        took = time.monotonic() - t0
    assert p.returncode == 0, p.stdout + p.stderr
    assert states(db) == {"sent": 3 + 3 * 20}
    assert took < 5, took


def test_export_timeout_is_in_help_and_checked(env):
    p = run(env, "help", "export")
    assert "--timeout S" in p.stdout
    assert run(env, "export", "--timeout", "soon").returncode == 2
    assert run(env, "export", "--timeout", "-1").returncode == 2


# ---- 7. links out of the folder; modes of lode's files (docs/fs.md, docs/operations.md)

def test_ingest_skips_links_out_of_the_folder_and_files_are_private(tmp_path, env):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("TOP SECRET outside text\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nhello inside\n")
    os.symlink(str(tmp_path / "outside" / "secret.txt"), str(docs / "passwd.txt"))
    os.symlink(str(tmp_path / "outside"), str(docs / "etc"))
    pipeline = os.path.join(SOURCE, "pipelines", "ingest_folder.lua")
    old = os.umask(0o022)
    try:
        p = run(env, "run", pipeline, "docs", cwd=str(tmp_path))
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "skipped link docs/passwd.txt" in p.stderr and "skipped link docs/etc" in p.stderr
    with sqlite3.connect(str(tmp_path / ".lode" / "store.db")) as c:
        docs_in = [r[0] for r in c.execute("SELECT path FROM documents")]
    assert len(docs_in) == 1 and docs_in[0].endswith("a.md"), docs_in
    assert os.stat(tmp_path / ".lode").st_mode & 0o777 == 0o700
    assert os.stat(tmp_path / ".lode" / "lode.db").st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / ".lode" / "store.db").st_mode & 0o777 == 0o600
    # allowed on request
    p = run(env, "run", pipeline, "docs", "--follow-links", "all", cwd=str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    with sqlite3.connect(str(tmp_path / ".lode" / "store.db")) as c:
        assert c.execute("SELECT count(*) FROM documents").fetchone()[0] == 3


# ---- 5. a runaway step (docs/lua-api.md "lode.step", docs/concurrency.md "Timeouts")

RUNAWAY = r'''
local lode = require("lode")
local spin = lode.step("spin", function()
  local n = 0
  while true do n = n + 1 end
end)
return lode.workflow("abuse", function() spin(); return "never" end)
'''

SECOND_TIME = r'''
local lode = require("lode")
local calls = 0
local flaky = lode.step("flaky", function()
  calls = calls + 1
  if calls == 1 or os.getenv("ALWAYS") then
    local co = coroutine.wrap(function() while true do end end)
    co()  -- a coroutine made by the step is interrupted too
  end
  return "done on call " .. calls
end, { timeout = 1, retries = { max_attempts = 2, interval = 0 } })
return lode.workflow("patient", function() return flaky() end)
'''


def test_runaway_step_is_interrupted_at_the_workflow_deadline(tmp_path, env):
    lode = Lode(tmp_path)
    lode.write("abuse.lua", RUNAWAY)
    t0 = time.monotonic()
    proc = lode.start("run", "--timeout", "2", "abuse.lua")
    try:
        # the row exists from the start, so another process sees (and could cancel) it
        assert wait_for(lambda: "abuse" in lode.run("workflow", "list").stdout, timeout=1.5)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    took = time.monotonic() - t0
    assert took < 5, took
    assert proc.returncode != 0
    assert "deadline" in err, err
    assert lode.sql("select status from workflows where name='abuse'") == [("CANCELLED",)]
    assert lode.sql("select count(*) from steps where name='spin'") == [(0,)]


def test_step_timeout_interrupts_and_retries(tmp_path, env):
    lode = Lode(tmp_path)
    lode.write("p.lua", SECOND_TIME)
    t0 = time.monotonic()
    p = lode.run("run", "p.lua", timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert time.monotonic() - t0 < 5
    assert "done on call 2" in p.stdout
    rows = lode.sql("select status, attempts, error from steps where name='flaky'")
    # the row keeps the failed attempt's error (lode workflow steps shows it, issue 14)
    assert [r[:2] for r in rows] == [("SUCCESS", 2)], rows
    assert rows[0][2].startswith("attempt 1 of 2: ") and "timed out after 1 s" in rows[0][2]
    # a step that always runs away fails after its attempts, saying why
    p = lode.run("run", "--db", "other.db", "p.lua", env={"ALWAYS": "1"}, timeout=30)
    assert p.returncode != 0
    assert "step 'flaky' timed out after 1 s" in p.stderr, p.stderr
    with sqlite3.connect(os.path.join(lode.dir, "other.db")) as c:
        rows = c.execute("select status, attempts from steps where name='flaky'").fetchall()
    assert rows == [("ERROR", 2)], rows


STARTED_IN_A_STEP = r'''
local lode = require("lode")
local child = lode.workflow("child", function()
  local t = os.clock()
  while os.clock() - t < 2 do end  -- longer than the step's limit
  return "child done"
end)
local outer = lode.step("outer", function()
  return lode.start(child):result()
end, { timeout = 1, retries = { max_attempts = 1 } })
return lode.workflow("main", function()
  local ok, e = pcall(outer)
  return tostring(e)
end)
'''


def test_workflow_started_in_a_step_does_not_inherit_its_limit(tmp_path, env):
    # review9 2c: the child's body thread was made by lua_newthread from the
    # limited step's thread and so got its hook: interrupted with its message
    lode = Lode(tmp_path)
    lode.write("p.lua", STARTED_IN_A_STEP)
    p = lode.run("run", "p.lua", timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "child done" in p.stdout, p.stdout + p.stderr
    assert "timed out" not in p.stdout + p.stderr


def test_step_timeout_is_checked_at_declaration(tmp_path, env):
    lode = Lode(tmp_path)
    lode.write("p.lua", 'local lode = require("lode")\n'
               'local s = lode.step("s", function() end, { timeout = -1 })\n'
               'return lode.workflow("w", function() return s() end)\n')
    p = lode.run("run", "p.lua")
    assert p.returncode != 0
    assert "option 'timeout' must be a positive number of seconds, at most 1e9 (got number -1)" in p.stderr, p.stderr


# ---- 2. a huge error (docs/operations.md "Sizes of what is kept", docs/tracing.md)

HUGE = r'''
local lode = require("lode")
local boom = lode.step("boom", function()
  error("é" .. string.rep("é", 10 * 1024 * 1024))  -- 20 MB + 2 bytes
end)
local small = lode.step("small", function() return "fine" end)
return lode.workflow("huge", function(kind)
  if kind == "small" then return small() end
  return boom()
end)
'''


def test_huge_error_is_cut_and_delivery_does_not_stall(tmp_path, env):
    lode = Lode(tmp_path)
    lode.write("p.lua", HUGE)
    full = 2 + 20 * 1024 * 1024
    p = lode.run("run", "p.lua", env={"HOME": str(tmp_path)}, timeout=120)
    assert p.returncode != 0
    p = lode.run("run", "p.lua", "small", env={"HOME": str(tmp_path)}, timeout=60)
    assert p.returncode == 0, p.stderr
    size = sum(os.path.getsize(lode.db + s) for s in ("", "-wal") if os.path.exists(lode.db + s))
    assert size < 5 * 1024 * 1024, size
    # strictly UTF-8 (sqlite3 decodes TEXT strictly), bounded, with the full size
    for (err,) in lode.sql("select error from workflows where name='huge' and error is not null") \
            + lode.sql("select error from steps where name='boom'"):
        assert len(err.encode()) < 64 * 1024 + 200, len(err)
        m = re.search(r"\[error truncated by lode: (\d+) of (\d+) bytes kept\]$", err)
        assert m, err[-200:]
        assert int(m.group(1)) <= 64 * 1024 and int(m.group(2)) > full, m.group(0)
    with FakeOpik() as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        p = run(env, "export", "--db", lode.db, timeout=60)
        st = opik.state()
    assert p.returncode == 0, p.stdout + p.stderr
    assert st["errors"] == []
    bodies = lode.sql("select length(body) from trace_records")
    assert max(b for (b,) in bodies) < 300 * 1024, bodies
    assert states(lode.db) == {"sent": len(bodies)}
    assert len(st["traces"]) == 2  # the small run's too
    errs = [b["error_info"] for b in list(st["spans"].values()) + list(st["traces"].values())
            if "error_info" in b]
    assert errs and all("[error truncated by lode: " in e["traceback"] for e in errs)
    size = sum(os.path.getsize(lode.db + s) for s in ("", "-wal") if os.path.exists(lode.db + s))
    assert size < 5 * 1024 * 1024, size


def test_a_record_too_big_to_send_fails_alone(tmp_path, env):
    db = tmp_path / "t.db"
    subprocess.run([FILL, str(db), "--traces", "2", "--spans", "3"], env=env, check=True,
                   capture_output=True, timeout=60)
    with sqlite3.connect(str(db)) as c:
        # a span whose body no request can carry (written by an older lode, say)
        c.execute("insert into trace_records(id, kind, trace_id, parent_id, name, type, "
                  "start_ms, end_ms, error, body, rev, state, updated_at) "
                  "select '01900000-0000-7000-8000-0000000000bb', kind, trace_id, parent_id, "
                  "name, type, start_ms, end_ms, error, "
                  "'{\"x\":\"' || hex(zeroblob(9 * 1024 * 1024)) || '\"}', rev, state, "
                  "updated_at from trace_records where kind='span' limit 1")
    with FakeOpik() as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        t0 = time.monotonic()
        p = run(env, "export", "--db", str(db), timeout=60)
        took = time.monotonic() - t0
        st = opik.state()
    assert took < 20, took
    assert "more than one request may carry" in p.stderr, p.stderr
    assert states(db) == {"sent": 2 + 2 * 3, "failed": 1}
    with sqlite3.connect(str(db)) as c:
        (last,) = c.execute("select last_error from trace_records where state='failed'").fetchone()
    assert "bytes, more than one request may carry" in last
    assert len(st["spans"]) == 2 * 3 and len(st["traces"]) == 2


# ---- 1. a full state database (docs/operations.md "When the state database fails")

FILL_UP = r'''
local lode = require("lode")
local q = lode.queue("kids", { concurrency = 4 })
local write = lode.step("write", function(i)
  return { i = i, text = string.rep(string.format("%05d", i), 16 * 1024) }  -- 80 KB
end)
local kid = lode.workflow("kid", function(i) return write(i).i end)
return lode.workflow("fill", function(n)
  local hs = {}
  for i = 1, tonumber(n) do hs[i] = q:enqueue(kid, i) end
  local sum = 0
  for i = 1, tonumber(n) do sum = sum + hs[i]:result() end
  return sum
end)
'''


@pytest.mark.parametrize("pages,workers", [(120, "1"), (400, "2")])
def test_full_state_database_ends_the_run_and_nothing_is_lost(tmp_path, env, pages, workers):
    lode = Lode(tmp_path)
    lode.write("p.lua", FILL_UP)
    t0 = time.monotonic()
    p = lode.run("run", "--workers", workers, "p.lua", "50", timeout=60,
                 env={"LODE_TEST_MAX_PAGES": str(pages), "LODE_STATE_RETRY_S": "3"})
    took = time.monotonic() - t0
    assert p.returncode == 1, p.stdout + p.stderr
    assert took < 30, took
    assert p.stderr.count("disk full (or its size limit reached); retrying for up to 3 s") == 1, \
        p.stderr
    assert "for 3 s; giving up" in p.stderr and "nothing recorded is lost" in p.stderr
    kids = dict(lode.sql("select status, count(*) from workflows where name='kid' group by 1"))
    assert "PENDING" not in kids and "ERROR" not in kids, kids  # all back on the queue
    assert kids.get("SUCCESS", 0) < 50
    # space is back: the next run takes everything up, each child once
    p = lode.run("run", "--workers", workers, "p.lua", "50", timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert lode.sql("select name, status, count(*) from workflows group by 1, 2 order by 1") == \
        [("fill", "SUCCESS", 1), ("kid", "SUCCESS", 50)]
    assert lode.sql("select count(*), count(distinct workflow_id) from steps "
                    "where name='write'") == [(50, 50)]
    from_kids = lode.sql("select input from workflows where name='kid'")
    assert len(set(from_kids)) == 50


ONE_KID = r'''
local lode = require("lode")
local q = lode.queue("kids")
local write = lode.step("write", function(i)
  return { i = i, text = string.rep(string.format("%05d", i), 16 * 1024) }  -- 80 KB
end)
local kid = lode.workflow("kid", function(i) return write(i).i end)
return lode.workflow("fan", function()
  q:enqueue({ workflow = kid, id = "kid-1" }, 1)
  return "enqueued"
end)
'''


def test_idle_worker_does_not_give_up_once_nothing_fails(tmp_path, env):
    # review9 1a: a failed write started the give-up clock and only a
    # checkpoint stopped it, so a worker left with nothing to do ended with
    # exit 1 after LODE_STATE_RETRY_S although nothing failed any more
    import signal
    lode = Lode(tmp_path)
    lode.write("p.lua", ONE_KID)
    lode.run("run", "p.lua", check=0)  # enqueues kid-1 only
    pages = lode.sql("pragma page_count")[0][0]
    w = lode.start("worker", "--workers", "1", "p.lua",
                   env={"LODE_TEST_MAX_PAGES": str(pages + 4), "LODE_STATE_RETRY_S": "3"})
    try:
        time.sleep(0.8)  # kid-1's 80 KB checkpoint has failed (disk full)
        assert lode.run("workflow", "cancel", "kid-1").returncode == 0
        time.sleep(5.5)  # past LODE_STATE_RETRY_S: nothing has failed since the cancel
        assert w.poll() is None, w.communicate()
    finally:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
        out, err = w.communicate(timeout=10)
    assert w.returncode == 0, err
    assert "disk full" in err, err  # the fault did happen
    assert "giving up" not in err, err


ONE_KID_UNTIL_SMALL = ONE_KID.replace(
    "  return { i = i, text",
    '  local f = io.open("small")\n  if f then f:close(); return { i = i } end\n  return { i = i, text')


def test_a_release_that_fails_is_retried_by_the_live_worker(tmp_path, env):
    # review9 1b: kid-1 fails for lack of space and goes back to its queue,
    # but that release (a write) fails too: it stayed PENDING under the live
    # worker, where requeue_dead never looks, until the worker restarted
    import signal
    lode = Lode(tmp_path)
    lode.write("p.lua", ONE_KID_UNTIL_SMALL)
    lode.run("run", "p.lua", check=0)  # enqueues kid-1 only
    def write_sql(q):
        with sqlite3.connect(lode.db) as c:  # commits, unlike lode.sql
            c.execute(q)

    write_sql("create table block(x)")
    write_sql("insert into block values (1)")
    write_sql("create trigger no_release before update of status on workflows "
             "when new.status = 'ENQUEUED' and exists (select 1 from block) "
             "begin select raise(abort, 'release refused'); end")
    pages = lode.sql("pragma page_count")[0][0]
    w = lode.start("worker", "--workers", "1", "p.lua",
                   env={"LODE_TEST_MAX_PAGES": str(pages + 4), "LODE_STATE_RETRY_S": "60"})
    try:
        assert wait_for(lambda: lode.sql("select status, executor_id is not null from "
                                         "workflows where id='kid-1'") == [("PENDING", 1)],
                        timeout=10)
        time.sleep(1.0)  # its checkpoint failed, then its release
        lode.write("small", "")
        write_sql("delete from block")
        assert wait_for(lambda: lode.sql("select status from workflows where id='kid-1'")
                        == [("SUCCESS",)], timeout=15), \
            lode.sql("select status, executor_id from workflows where id='kid-1'")
    finally:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
        out, err = w.communicate(timeout=10)
    assert "disk full" in err, err


OWN_FAILURE = ONE_KID_UNTIL_SMALL.replace(
    'lode.queue("kids")', 'lode.queue("kids", { concurrency = 2 })').replace(
    'return lode.workflow("fan", function()\n', r'''local own = lode.workflow("own", function()
  local f = assert(io.open("runs.txt", "a")); f:write("run\n"); f:close()
  lode.sleep(1.5)
  error("own failure, not the disk's")
end)
return lode.workflow("fan", function()
  q:enqueue({ workflow = own, id = "own-1" })
''')


def test_a_body_failing_for_its_own_reason_after_a_fault_is_recorded(tmp_path, env):
    # review9 1c: "abandoned" was decided by the thread's fault count since
    # the body began: own-1 began before kid-1's full-disk fault on the same
    # thread, so its own later failure was taken for the disk's: nothing
    # recorded, released and run again
    import signal
    lode = Lode(tmp_path)
    lode.write("p.lua", OWN_FAILURE)
    lode.run("run", "p.lua", check=0)  # enqueues own-1 and kid-1 only
    pages = lode.sql("pragma page_count")[0][0]
    w = lode.start("worker", "--workers", "1", "p.lua",
                   env={"LODE_TEST_MAX_PAGES": str(pages + 4), "LODE_STATE_RETRY_S": "60"})
    try:
        time.sleep(0.5)  # kid-1's checkpoint has failed; own-1 sleeps
        lode.write("small", "")
        assert wait_for(lambda: lode.sql("select status from workflows where id='own-1'")
                        == [("ERROR",)], timeout=15)
        time.sleep(0.5)
        assert lode.read_lines("runs.txt") == ["run"]  # run once, not re-run
        assert "own failure" in lode.sql("select error from workflows where id='own-1'")[0][0]
        assert wait_for(lambda: lode.sql("select status from workflows where id='kid-1'")
                        == [("SUCCESS",)], timeout=15)
    finally:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
        out, err = w.communicate(timeout=10)
    assert "disk full" in err, err


NESTED_LIMIT = r'''
local lode = require("lode")
local inner = lode.step("inner", function()
  while true do end
end, { retries = { max_attempts = 3, interval = 2 } })
local outer = lode.step("outer", function()
  return inner()
end, { timeout = 1, retries = { max_attempts = 1 } })
return lode.workflow("nest", function() return outer() end)
'''


def test_an_outer_step_limit_firing_inside_an_inner_step_is_the_outer_steps(tmp_path, env):
    # review9 2a: the inner step took the outer step's timeout for its own,
    # retried with a blocking back-off (2 s, 4 s) and overran the outer limit
    lode = Lode(tmp_path)
    lode.write("p.lua", NESTED_LIMIT)
    t0 = time.monotonic()
    p = lode.run("run", "p.lua", timeout=60)
    took = time.monotonic() - t0
    assert p.returncode != 0, p.stdout + p.stderr
    assert took < 4, (took, p.stderr)
    assert "step 'outer' timed out after 1 s" in p.stderr, p.stderr
    assert "attempt 2 of 3" not in p.stderr, p.stderr
    assert lode.sql("select status, attempts from steps where name='outer'") == [("ERROR", 1)]


NESTED_DEADLINE = NESTED_LIMIT.replace("{ timeout = 1, retries = { max_attempts = 1 } }",
                                       "{ retries = { max_attempts = 2, interval = 0 } }")


def test_a_workflow_deadline_firing_inside_an_inner_step_cancels_the_workflow(tmp_path, env):
    # review9 2a: the outer step saw an ordinary failure, retried, and
    # recorded an ERROR checkpoint (a resumed workflow would replay it)
    lode = Lode(tmp_path)
    lode.write("p.lua", NESTED_DEADLINE)
    p = lode.run("run", "--timeout", "1", "p.lua", timeout=60)
    assert p.returncode != 0, p.stdout + p.stderr
    assert "deadline" in p.stderr, p.stderr
    assert lode.sql("select status from workflows where name='nest'") == [("CANCELLED",)]
    assert lode.sql("select count(*) from steps where name='outer'") == [(0,)]
