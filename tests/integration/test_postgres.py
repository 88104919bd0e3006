"""lode on PostgreSQL (issue 12, docs/postgres.md): every CLI command, the
schema and its advisory lock, queues across hosts woken by NOTIFY, leases
and fencing (a host paused past its lease), a server restarted mid-run, and
three hosts serving one ingestion while one is killed.

A "host" is a lode process with its own executor id; they share one private
PostgreSQL (tests/pg/pgserver.py: ctest runs this file under
`pgserver.py run`, which sets $LODE_TEST_PG; run alone, the `pg` fixture
starts a server). Each test has a database of its own on it.
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lodeutil  # noqa: E402
from fake_opik import FakeOpik  # noqa: E402
from lodeutil import Lode, kill9, pg_psql, wait_for  # noqa: E402


@pytest.fixture(scope="module")
def server():
    """$LODE_TEST_PG's server, else a private one for this module."""
    if os.environ.get("LODE_TEST_PG"):
        yield None
        return
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pg"))
    from pgserver import PgServer
    with PgServer() as pg:
        lodeutil.TEST_PG = pg.url
        yield pg
        lodeutil.TEST_PG = None


@pytest.fixture
def lode(server, tmp_path):
    lodeutil.TEST_PG = lodeutil.TEST_PG or os.environ.get("LODE_TEST_PG")
    return Lode(tmp_path)


def max_running(lode, queue, executor=None):
    """Most workflows of a queue running at once, from recorded start/end
    times (an end counts before a start at the same ms)."""
    where = "queue=?" + (" AND executor_id=?" if executor else "")
    args = (queue, executor) if executor else (queue,)
    events = []
    for s, e in lode.sql(f"select started_at, ended_at from workflows where {where}", *args):
        events += [(s, 1, 1), (e, 0, -1)]
    cur = best = 0
    for _, _, d in sorted(events):
        cur += d
        best = max(best, cur)
    return best


def docs_example():
    """The pipeline docs/postgres.md shows (its first lua block), run as written."""
    text = open(os.path.join(lodeutil.SOURCE, "docs", "postgres.md")).read()
    return re.search(r"```lua\n(.*?)```", text, re.S).group(1)


SUM = docs_example()


def test_every_cli_command_works_on_postgres(lode):
    lode.write("p.lua", SUM)
    p = lode.run("run", "--id", "sum-1", "--db", lode.db, "p.lua", "10", check=0)
    assert p.stdout.strip() == "55"
    # the same id again is a replay: recorded result, nothing re-run
    assert lode.run("run", "--id", "sum-1", "p.lua", "10", check=0).stdout.strip() == "55"
    rows = json.loads(lode.run("workflow", "list", "--json", check=0).stdout)
    assert [r["id"] for r in rows] == ["sum-1"] and rows[0]["status"] == "SUCCESS"
    got = json.loads(lode.run("workflow", "get", "sum-1", "--json", check=0).stdout)
    assert got["status"] == "SUCCESS"
    steps = lode.run("workflow", "steps", "sum-1", check=0).stdout
    assert len([l for l in steps.splitlines() if re.match(r"\d+\s+add", l)]) == 10
    p = lode.run("workflow", "fork", "--step", "4", "sum-1", check=0)
    assert "55" in p.stdout
    lode.run("trace", "sum-1", check=0)
    html = os.path.join(lode.dir, "t.html")
    lode.run("trace", "--html", html, check=0)
    assert "<html" in open(html).read().lower()
    assert lode.run("workflow", "queue", "--json", check=0).stdout.strip() == "[]"
    # a queued child shows in `workflow queue` while it runs
    lode.write("q.lua", QUEUED)
    run = lode.start("run", "--id", "held", "q.lua")
    assert wait_for(lambda: "held-child" in lode.run("workflow", "queue", check=0).stdout)
    lode.write("go", "")
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0 and out.strip() == "7", err
    os.unlink(os.path.join(lode.dir, "go"))
    # cancel a running workflow from another process, then resume it
    lode.write("w.lua", WAITS)
    run = lode.start("run", "--id", "waits", "w.lua")
    assert wait_for(lambda: lode.sql("select count(*) from steps where workflow_id='waits'")
                    == [(1,)])
    lode.run("workflow", "cancel", "waits", check=0)
    lode.write("go", "")
    assert run.wait(timeout=30) != 0
    assert lode.sql("select status from workflows where id='waits'") == [("CANCELLED",)]
    p = lode.run("workflow", "resume", "waits", check=0, timeout=60)
    assert "SUCCESS" in p.stderr, p.stderr
    assert lode.sql("select count(*) from steps where workflow_id='waits'") == [(3,)]
    # export to a (fake) Opik: every record delivered
    with FakeOpik() as opik:
        p = lode.run("export", env={"OPIK_URL_OVERRIDE": opik.url,
                                    "OPIK_CONFIG_PATH": "/nonexistent"}, check=0)
        assert "delivered" in p.stdout
        assert opik.state()["errors"] == []
    assert lode.sql("select count(*) from trace_records where state='pending'") == [(0,)]


WAITS = r'''
local lode = require("lode")
local function gate() while not io.open("go") do os.execute("sleep 0.02") end return true end
local a = lode.step("a", function() return 1 end)
local b = lode.step("b", gate)
local c = lode.step("c", function() return 3 end)
return lode.workflow("waits", function() a(); b(); c(); return 0 end)
'''

QUEUED = r'''
local lode = require("lode")
local q = lode.queue("held")
local gate = lode.step("gate", function()
  while not io.open("go") do os.execute("sleep 0.02") end
  return 7
end)
local child = lode.workflow("kid", function() return gate() end)
return lode.workflow("held_parent", function()
  return q:enqueue({ workflow = child, id = "held-child" }):result()
end)
'''


def test_schema_created_once_by_many_hosts_and_a_newer_one_refused(lode):
    lode.write("p.lua", SUM)
    # four hosts start on an empty database at once: the advisory lock lets
    # one create the schema, the others find it made
    ps = [lode.start("run", "p.lua", "3") for _ in range(4)]
    for p in ps:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out.strip() == "6"
    assert lode.sql("select name from migrations") == [("pg-1",), ("pg-2",)]
    pg_psql(lode.db, "INSERT INTO lode.migrations VALUES('pg-99', 0)")
    p = lode.run("run", "p.lua", "3")
    assert p.returncode != 0
    assert "newer lode" in p.stderr and "pg-99" in p.stderr, p.stderr
    assert lode.sql("select count(*) from workflows") == [(4,)]  # nothing written


FANOUT = r'''
local lode = require("lode")
local q = lode.queue("jobs", { concurrency = 4, worker_concurrency = 2 })
local work = lode.step("work", function(i) os.execute("sleep 0.03"); return i end)
local child = lode.workflow("job", function(i) return work(i) end)
return lode.workflow("fan", function(n)
  local hs = {}
  for i = 1, tonumber(n) do hs[i] = q:enqueue(child, i) end
  local s = 0
  for i = 1, #hs do s = s + hs[i]:result() end
  return s
end)
'''


def test_queue_limits_hold_across_hosts(lode):
    lode.write("p.lua", FANOUT)
    ws = [lode.start("worker", "--workers", "2", "p.lua") for _ in range(3)]
    try:
        time.sleep(0.3)
        p = lode.run("run", "--workers", "2", "p.lua", "60", check=0, timeout=120)
        assert json.loads(p.stdout) == 60 * 61 // 2
    finally:
        for w in ws:
            w.send_signal(signal.SIGTERM)
        for w in ws:
            assert w.wait(timeout=30) == 0
    assert lode.sql("select status, count(*) from workflows where queue='jobs' group by status") \
        == [("SUCCESS", 60)]
    owners = lode.sql("select executor_id, count(*) from workflows where queue='jobs' "
                      "group by executor_id")
    assert len(owners) >= 3, owners
    for ex, _ in owners:
        assert max_running(lode, "jobs", ex) <= 2
    assert max_running(lode, "jobs") <= 4


CHAIN = r'''
local lode = require("lode")
local q = lode.queue("ping")
local child = lode.workflow("ping", function(i) return i end)
-- keeps the run's only thread busy, so the child is the idle worker's
local busy = lode.step("busy", function() os.execute("sleep 0.15"); return true end)
return lode.workflow("chain", function(n)
  for i = 1, tonumber(n) do
    local h = q:enqueue(child, i)
    busy()
    h:result()
  end
  return n
end)
'''


def test_a_queued_child_starts_within_milliseconds_on_an_idle_worker(lode):
    lode.write("p.lua", CHAIN)
    # the run only enqueues; the idle worker (woken by NOTIFY) runs the children
    w = lode.start("worker", "p.lua")
    try:
        time.sleep(1.5)  # the worker is idle, past its slow poll's first round
        lode.run("run", "p.lua", "20", check=0, timeout=120)
    finally:
        w.send_signal(signal.SIGTERM)
        assert w.wait(timeout=30) == 0
    rows = lode.sql("select started_at, created_at, executor_id from workflows where name='ping'")
    (run_ex,), = lode.sql("select executor_id from workflows where name='chain'")
    waits = [s - c for s, c, ex in rows if ex != run_ex]
    # which process claims each child is a race (the run's own thread takes
    # more of them in a slow sanitizer build): enough of them for a median
    assert len(waits) >= 5, rows
    med = statistics.median(waits)
    print("queued child start latency on PostgreSQL: median %d ms, max %d ms"
          % (med, max(waits)))
    assert med < 50, waits


PAUSE = r'''
local lode = require("lode")
local q = lode.queue("slow", { worker_concurrency = 2 })
local function pid()
  local f = assert(io.open("/proc/self/stat")); local s = f:read("l"); f:close()
  return tonumber(s:match("^(%d+)"))
end
local function log(line)
  local f = assert(io.open("effects.txt", "a")); f:write(line, "\n"); f:close()
end
local step = lode.step("tick", function(i, k)
  log(string.format("%d %d %d", pid(), i, k))
  os.execute("sleep 0.1")
  return "p" .. pid() .. "p"
end)
local child = lode.workflow("slow_child", function(i)
  local who = {}
  for k = 1, 15 do who[k] = step(i, k) end
  return who
end)
-- keeps the run's one thread busy while host A claims the children
local busy = lode.step("busy", function() os.execute("sleep 1"); return true end)
return lode.workflow("pause_parent", function(n)
  local hs = {}
  for i = 1, tonumber(n) do hs[i] = q:enqueue(child, i) end
  busy()
  for i = 1, #hs do hs[i]:result() end
  return #hs
end)
'''


def test_a_host_paused_past_its_lease_records_nothing_for_work_taken_over(lode):
    """Item 3: host A is SIGSTOPped while it runs two children; its lease
    (1 s here) runs out; host B re-queues and finishes them; A, resumed,
    records no checkpoint for them and says so."""
    lode.write("p.lua", PAUSE)
    env = {"LODE_PG_LEASE_S": "1"}
    a = lode.start("worker", "p.lua", env=env)
    time.sleep(0.5)
    run = lode.start("run", "--workers", "1", "p.lua", "2", env=env)
    b = None
    try:
        # A holds a child and is a few steps in
        assert wait_for(lambda: sum(l.split()[0] == str(a.pid)
                                    for l in lode.read_lines("effects.txt")) >= 4, timeout=30)
        a.send_signal(signal.SIGSTOP)
        paused_at = time.time()
        b = lode.start("worker", "p.lua", env=env)
        # another host takes A's over once A's lease has run out
        n_before = len(lode.read_lines("effects.txt"))
        assert wait_for(lambda: len(lode.read_lines("effects.txt")) > n_before + 4, timeout=30)
        assert time.time() - paused_at >= 1.0
        time.sleep(0.3)
        a.send_signal(signal.SIGCONT)
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert json.loads(out) == 2
    finally:
        for p in (a,):
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        a_out, a_err = a.communicate(timeout=30)
        if b is not None:
            b.send_signal(signal.SIGTERM)
            b.communicate(timeout=30)
    # every checkpoint of the children after the takeover is B's: A's step in
    # flight at the pause may have run again, but was not recorded
    took_over = {}
    for wid, no, who in lode.sql(
            "select w.id, s.step_no, encode(s.output, 'escape') from steps s join workflows w"
            " on w.id = s.workflow_id where w.name='slow_child' and s.name='tick'"
            " order by w.id, s.step_no"):
        who = int(re.search(r"p(\d+)p", who).group(1))
        if who != a.pid:
            took_over.setdefault(wid, no)
        else:
            assert wid not in took_over, (wid, no, "an A checkpoint after the takeover")
    assert took_over, "B took nothing over"
    assert lode.sql("select status, count(*) from workflows where name='slow_child'"
                    " group by status") == [("SUCCESS", 2)]
    assert lode.sql("select count(*) from steps s join workflows w on w.id=s.workflow_id"
                    " where w.name='slow_child'") == [(30,)]
    # A noticed: it said the work is no longer its own
    assert "no longer this process's" in a_err, a_err


STEADY = r'''
local lode = require("lode")
local function log(line)
  local f = assert(io.open("effects.txt", "a")); f:write(line, "\n"); f:close()
end
local step = lode.step("tick", function(k) log(tostring(k)); os.execute("sleep 0.05"); return k end)
return lode.workflow("steady", function(n)
  local s = 0
  for k = 1, tonumber(n) do s = s + step(k) end
  return s
end)
'''


def test_a_server_restart_mid_run_loses_and_doubles_nothing(lode, server, tmp_path):
    if server is None:
        pytest.skip("needs a server this module controls (run without $LODE_TEST_PG)")
    lode.write("p.lua", STEADY)
    run = lode.start("run", "p.lua", "60")
    assert wait_for(lambda: len(lode.read_lines("effects.txt")) >= 10, timeout=30)
    server.stop()
    time.sleep(3)
    server.start()
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert json.loads(out) == 60 * 61 // 2
    assert "connection was lost" in err and "connected again" in err, err
    effects = [int(x) for x in lode.read_lines("effects.txt")]
    # each step recorded once; a step in flight at the stop may have run twice
    assert lode.sql("select count(*), count(distinct step_no) from steps") == [(60, 60)]
    assert sorted(set(effects)) == list(range(1, 61))
    assert len(effects) - 60 <= 1, effects
    # a server that stays away: a clear error naming it, after the bounded retry
    run = lode.start("run", "--id", "doomed", "p.lua", "200", env={"LODE_PG_RETRY_S": "2"})
    assert wait_for(lambda: len(lode.read_lines("effects.txt")) >= 70, timeout=30)
    server.stop()
    t0 = time.time()
    out, err = run.communicate(timeout=60)
    server.start()
    assert run.returncode != 0
    assert time.time() - t0 < 30
    assert "gave up after 2 s" in err and "127.0.0.1" in err, err


def test_three_hosts_serve_one_ingestion_one_killed(lode):
    """Item 2: three processes with their own executor ids serve one
    ingestion of >= 200 files into a PostgreSQL state database and a
    PostgreSQL store; one is SIGKILLed mid-run."""
    from test_pipelines import INGEST, check_trace, make_corpus, opik_env, store_rows
    files = make_corpus(os.path.join(lode.dir, "corpus"), binary=False)
    n = len(files)
    assert n >= 200
    # the store on PostgreSQL too (a database of its own); $LODE_TEST_STORE
    # may name another (a SQLite file the three share, say)
    store = os.environ.get("LODE_TEST_STORE") or lodeutil.new_pg_database()
    with FakeOpik() as opik:
        env = opik_env(opik)
        hosts = [lode.start("worker", "--workers", "2", INGEST, env=env) for _ in range(2)]
        run = lode.start("run", "--workers", "2", INGEST, "corpus", "--store", store, env=env)
        try:
            # one of the workers dies once files are flowing
            def flowing():
                try:
                    return lode.sql("select count(*) from workflows where"
                                    " name='process_file_workflow' and status='SUCCESS'")[0][0] >= 30
                except RuntimeError:  # the schema is not made yet
                    return False
            assert wait_for(flowing, timeout=120)
            kill9(hosts[0])
            out, err = run.communicate(timeout=600)
            assert run.returncode == 0, err
        finally:
            for h in hosts[1:]:
                h.send_signal(signal.SIGTERM)
                h.communicate(timeout=60)
        p = lode.run("export", env=env, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        state = opik.state()
    owners = {r[0] for r in lode.sql("select executor_id from workflows where"
                                     " name='process_file_workflow'")}
    assert len(owners) == 3, owners  # every host did some of the work
    assert lode.sql("select status, count(*) from workflows where name='process_file_workflow'"
                    " group by status") == [("SUCCESS", n)]
    # no finished step ran twice: one row per step, and no step recorded by
    # a process other than the child's last owner after ... (rows are keyed
    # by (workflow, step): a second run of a finished step would replay it)
    assert lode.sql("select count(*) from (select workflow_id, step_no, count(*) from steps"
                    " group by 1, 2 having count(*) > 1) d") == [(0,)]
    if store.startswith("postgres"):
        # every file once; every stored document has its chunks (its own or
        # those of the identical content it shares), each (doc, ordinal) once
        assert pg_psql(store, "select count(*), count(distinct path) from lode_store.documents") \
            == [(n, n)]
        assert pg_psql(store, "select path from lode_store.documents d where not exists"
                              " (select 1 from lode_store.chunks c where"
                              " c.doc_id = coalesce(d.shared_from, d.id))") \
            == [("corpus/txt/empty.txt",)]  # the corpus's empty file has no chunk
        assert pg_psql(store, "select count(*) from (select doc_id, ordinal from"
                              " lode_store.chunks group by 1, 2 having count(*) > 1) x") == [(0,)]
    else:
        docs, chunks = store_rows(os.path.join(lode.dir, store))
        assert len(docs) == n
        assert len({(c[0], c[1]) for c in chunks}) == len(chunks)  # no duplicate chunk
    counts = check_trace(state, n, killed=True)
    assert counts["process_file_workflow"] == n


def test_bad_connections_are_usage_errors_and_write_nothing(tmp_path):
    """Item 6: a bad connection string, a wrong password, an unknown role,
    an unreachable server and a database the role may not use: each a clear
    error naming the cause, exit 2, nothing written, for every command that
    opens the state database. Its own server: password authentication needs
    a pg_hba.conf line the shared one has not."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pg"))
    from pgserver import PgServer
    pg = PgServer().init()
    hba = os.path.join(pg.data, "pg_hba.conf")
    with open(hba) as f:
        rules = f.read()
    with open(hba, "w") as f:
        f.write("host all pw 127.0.0.1/32 scram-sha-256\n" + rules)
    try:
        pg.start()
        pg.psql("CREATE ROLE pw LOGIN PASSWORD 'right'")
        pg.psql("CREATE DATABASE locked")
        pg.psql("REVOKE CONNECT ON DATABASE locked FROM PUBLIC")
        import socket
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        port = pg.port
        cases = [
            ("postgresql://lode@127.0.0.1:notaport/lode", "invalid"),
            (f"postgresql://pw:wrong@127.0.0.1:{port}/lode", "password authentication failed"),
            (f"postgresql://nosuch@127.0.0.1:{port}/lode", 'role "nosuch" does not exist'),
            (f"postgresql://lode@127.0.0.1:{closed}/lode", "Connection refused"),
            (f"postgresql://pw:right@127.0.0.1:{port}/locked", "permission denied for database"),
        ]
        (tmp_path / "p.lua").write_text(
            'local lode = require("lode")\nreturn lode.workflow("p", function() return 1 end)\n')
        commands = [["run", "p.lua"], ["worker", "p.lua"], ["workflow", "list"],
                    ["trace", "0191e0a4-0000-7000-8000-000000000000"], ["export"]]
        env = dict(os.environ, OPIK_URL_OVERRIDE="http://127.0.0.1:9/api",
                   OPIK_CONFIG_PATH="/nonexistent")
        env.pop("LODE_DB", None)
        for url, why in cases:
            for cmd in commands:
                p = subprocess.run([lodeutil.LODE, "--db", url, *cmd], cwd=tmp_path, env=env,
                                   capture_output=True, text=True, timeout=60)
                assert p.returncode == 2, (url, cmd, p.returncode, p.stderr)
                assert why in p.stderr, (url, cmd, p.stderr)
                assert "wrong" not in p.stderr and "right" not in p.stderr, p.stderr
        assert not (tmp_path / ".lode").exists()
        for db in ("lode", "locked"):
            assert pg.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'lode'",
                           db=db).strip() == "0"
    finally:
        pg.close()
