"""Issue: concurrency. Queues, background workflows, durable sleep, workers,
cancel/resume/fork, several processes on one state database."""
import json
import os
import signal
import subprocess
import time

import pytest

from lodeutil import Lode, kill9, on_pg, wait_for

FANOUT = r'''
local lode = require("lode")
local q = lode.queue("files", { concurrency = 4 })
local function log(line)
  local f = assert(io.open("effects.txt", "a")); f:write(line, "\n"); f:close()
end
local work = lode.step("work", function(i)
  log(tostring(i))
  if os.getenv("SLOW") then os.execute("sleep 0.01") end
  return i * 2
end)
local child = lode.workflow("child", function(i) return work(i) end)
return lode.workflow("parent", function(n)
  n = tonumber(n)
  local hs = {}
  for i = 1, n do hs[i] = q:enqueue(child, i) end
  local sum = 0
  for i = 1, n do sum = sum + hs[i]:result() end
  return sum
end)
'''


@pytest.fixture
def lode(tmp_path):
    return Lode(tmp_path)


def max_running(lode, queue, executor=None):
    """Most workflows of a queue running at once, from recorded start/end
    times (ms). At the same millisecond an end counts before a start: a slot
    freed and taken again within one ms is not an overlap; the tests make each
    child last >= 10 ms so real overlaps cannot hide inside one ms."""
    where = "queue=?" + (" AND executor_id=?" if executor else "")
    args = (queue, executor) if executor else (queue,)
    rows = lode.sql(f"select started_at, ended_at from workflows where {where}", *args)
    events = []
    for s, e in rows:
        events.append((s, 1, 1))
        events.append((e, 0, -1))
    events.sort()
    cur = best = 0
    for _, _, d in events:
        cur += d
        best = max(best, cur)
    return best


# on PostgreSQL (the *_pg run) only the 8-worker case: the 1-worker one
# tests the scheduler, not the backend, and make test's time is bounded
@pytest.mark.parametrize("workers", [pytest.param(1, marks=pytest.mark.skipif(
    on_pg(), reason="the scheduler's case; run on SQLite")), 8])
def test_1000_children_on_a_queue_of_concurrency_4(lode, workers):
    lode.write("p.lua", FANOUT)
    p = lode.run("run", "--workers", str(workers), "p.lua", "1000", env={"SLOW": "1"}, check=0)
    assert json.loads(p.stdout) == 1000 * 1001
    assert lode.sql("select status, count(*) from workflows where name='child' "
                    "group by status") == [("SUCCESS", 1000)]
    assert max_running(lode, "files") <= 4
    assert max_running(lode, "files") >= 2  # it did run concurrently
    assert sorted(int(x) for x in lode.read_lines("effects.txt")) == list(range(1, 1001))


def test_kill9_mid_fanout_then_every_child_succeeds_once(lode):
    lode.write("p.lua", FANOUT)
    env = {"SLOW": "1"}
    proc = lode.start("run", "--workers", "2", "p.lua", "300", env=env)
    assert wait_for(lambda: len(lode.read_lines("effects.txt")) >= 60)
    kill9(proc)
    done_before = {r[0] for r in lode.sql(
        "select w.id from workflows w where name='child' and status='SUCCESS'")}
    p = lode.run("run", "--workers", "2", "p.lua", "300", env=env, check=0)
    assert json.loads(p.stdout) == 300 * 301
    assert lode.sql("select status, count(*) from workflows where name='child' "
                    "group by status") == [("SUCCESS", 300)]
    assert lode.sql("select count(*) from workflows where name='parent'") == [(1,)]
    lines = [int(x) for x in lode.read_lines("effects.txt")]
    dups = {i for i in lines if lines.count(i) > 1}
    # only steps in flight at the kill ran again (at most the queue's 4);
    # no child that had finished ran its step again
    assert len(dups) <= 4
    finished_before = {int(i.rsplit("-", 1)[1]) for i in done_before}
    assert not (dups & finished_before)


WORKERS = r'''
local lode = require("lode")
local q = lode.queue("jobs", { concurrency = 6, worker_concurrency = 2 })
local function log(line)
  local f = assert(io.open("effects.txt", "a")); f:write(line, "\n"); f:close()
end
local work = lode.step("work", function(i) log(tostring(i)); os.execute("sleep 0.02"); return i end)
local child = lode.workflow("job", function(i) return work(i) end)
return lode.workflow("fan", function(n)
  local hs = {}
  for i = 1, tonumber(n) do hs[i] = q:enqueue(child, i) end
  local s = 0
  for i = 1, #hs do s = s + hs[i]:result() end
  return s
end)
'''


def test_two_workers_and_a_run_share_the_queue_with_per_process_limits(lode):
    lode.write("p.lua", WORKERS)
    ws = [lode.start("worker", "--workers", "2", "p.lua") for _ in range(2)]
    try:
        time.sleep(0.3)
        p = lode.run("run", "--workers", "2", "p.lua", "60", check=0, timeout=120)
        assert json.loads(p.stdout) == 60 * 61 // 2
    finally:
        for w in ws:
            w.send_signal(signal.SIGTERM)
        for w in ws:
            assert w.wait(timeout=30) == 0
    lines = sorted(int(x) for x in lode.read_lines("effects.txt"))
    assert lines == list(range(1, 61)), "each child ran exactly once"
    owners = lode.sql("select executor_id, count(*) from workflows where queue='jobs' "
                      "group by executor_id")
    assert len(owners) >= 2, owners  # the workers took part
    for ex, _ in owners:
        assert max_running(lode, "jobs", ex) <= 2
    assert max_running(lode, "jobs") <= 6


LIMITED = r'''
local lode = require("lode")
local q = lode.queue("limited", { limiter = { limit = 5, period = 0.5 } })
local child = lode.workflow("tick", function(i) return i end)
return lode.workflow("fan", function(n)
  local hs = {}
  for i = 1, tonumber(n) do hs[i] = q:enqueue(child, i) end
  for i = 1, #hs do hs[i]:result() end
  return #hs
end)
'''


def test_rate_limiter_never_exceeds_limit_in_any_window(lode):
    lode.write("p.lua", LIMITED)
    lode.run("run", "--workers", "2", "p.lua", "20", check=0, timeout=60)
    starts = sorted(r[0] for r in lode.sql("select started_at from workflows where queue='limited'"))
    assert len(starts) == 20
    for i, s in enumerate(starts):
        in_window = [t for t in starts if s <= t < s + 500]
        assert len(in_window) <= 5, (i, in_window)


PRIORITY = r'''
local lode = require("lode")
local q = lode.queue("prio", { concurrency = 1, priority = true })
local log = lode.step("log", function(tag)
  local f = assert(io.open("order.txt", "a")); f:write(tag, "\n"); f:close(); return tag
end)
local child = lode.workflow("job", function(tag) return log(tag) end)
return lode.workflow("fan", function()
  local hs = {}
  hs[#hs + 1] = q:enqueue({ workflow = child, priority = 5 }, "p5")
  hs[#hs + 1] = q:enqueue({ workflow = child, priority = 1 }, "p1")
  hs[#hs + 1] = q:enqueue(child, "none")
  hs[#hs + 1] = q:enqueue({ workflow = child, priority = 3 }, "p3")
  hs[#hs + 1] = q:enqueue({ workflow = child, dedup_id = "once" }, "d1")
  local ok, err = pcall(function() return q:enqueue({ workflow = child, dedup_id = "once" }, "d2") end)
  for i = 1, #hs do hs[i]:result() end
  return { dedup_refused = not ok, err = tostring(err) }
end)
'''


def test_priority_order_and_deduplication(lode):
    lode.write("p.lua", PRIORITY)
    p = lode.run("run", "--workers", "1", "p.lua", check=0)
    out = json.loads(p.stdout)
    assert out["dedup_refused"] is True
    assert "dedup id 'once' is already used" in out["err"]
    # DBOS: no priority first (in order), then lower numbers first
    assert lode.read_lines("order.txt") == ["none", "d1", "p1", "p3", "p5"]


SLEEPER = r'''
local lode = require("lode")
local before = lode.step("before", function() return 1 end)
local after = lode.step("after", function()
  local f = assert(io.open("after.txt", "a")); f:write("after\n"); f:close(); return 2
end)
return lode.workflow("sleeper", function()
  before(); lode.sleep(3); return after()
end)
'''


def test_durable_sleep_sleeps_only_what_remains(lode):
    lode.write("p.lua", SLEEPER)
    proc = lode.start("run", "p.lua")
    time.sleep(1.0)
    kill9(proc)
    t0 = time.time()
    lode.run("run", "p.lua", check=0)
    elapsed = time.time() - t0
    assert 1.5 <= elapsed <= 3.5, elapsed  # ~2 s left of the 3 s
    wf = lode.sql("select id from workflows")[0][0]
    lode.sql("select 1")
    # replaying after it finished does not sleep
    if on_pg():
        lode.sql("update workflows set status='PENDING' where id=?", wf)
    else:
        import sqlite3
        con = sqlite3.connect(lode.db)
        con.execute("update workflows set status='PENDING' where id=?", (wf,))
        con.commit()
        con.close()
    t0 = time.time()
    lode.run("workflow", "resume", wf, check=0)
    assert time.time() - t0 < 1.0


CANCEL = r'''
local lode = require("lode")
local function log(line)
  local f = assert(io.open("effects.txt", "a")); f:write(line, "\n"); f:close()
end
local steps = {}
for i = 1, 4 do
  steps[i] = lode.step("s" .. i, function()
    log("s" .. i)
    if i == 2 and not io.open("released") then
      while not io.open("released") do os.execute("sleep 0.02") end
    end
    return i
  end)
end
return lode.workflow("w", function()
  local t = 0
  for i = 1, 4 do t = t + steps[i]() end
  return t
end)
'''


def test_cancel_resume_and_fork(lode):
    lode.write("p.lua", CANCEL)
    proc = lode.start("run", "--id", "job", "p.lua")
    assert wait_for(lambda: "s2" in lode.read_lines("effects.txt"))
    lode.run("workflow", "cancel", "job", check=0)
    lode.write("released", "")
    assert proc.wait(timeout=30) == 1
    assert lode.read_lines("effects.txt") == ["s1", "s2"]  # stopped before step 3
    assert lode.sql("select status from workflows where id='job'") == [("CANCELLED",)]
    r = lode.run("workflow", "resume", "job", check=0)
    assert json.loads(r.stdout) == 10
    assert lode.read_lines("effects.txt") == ["s1", "s2", "s3", "s4"]
    r = lode.run("workflow", "resume", "job", check=0)  # finished: nothing runs
    assert "nothing to resume" in r.stdout
    assert len(lode.read_lines("effects.txt")) == 4
    r = lode.run("workflow", "fork", "job", "--step", "3", "--id", "job-fork", check=0)
    assert json.loads(r.stdout) == 10
    assert lode.read_lines("effects.txt")[4:] == ["s3", "s4"]
    assert lode.sql("select count(*) from steps where workflow_id='job-fork'") == [(4,)]


QUEUED_CANCEL = r'''
local lode = require("lode")
local q = lode.queue("one", { concurrency = 1 })
local child = lode.workflow("job", function(tag)
  local f = assert(io.open("ran.txt", "a")); f:write(tag, "\n"); f:close()
  return tag
end)
return lode.workflow("fan", function()
  local a = q:enqueue({ workflow = child, id = "q-a" }, "a")
  local b = q:enqueue({ workflow = child, id = "q-b" }, "b")
  return "enqueued"
end)
'''


def test_cancelling_a_queued_workflow_frees_its_slot(lode):
    lode.write("p.lua", QUEUED_CANCEL)
    # enqueue only: no workers for the queue in this run (workers=1 and the
    # main workflow returns at once, releasing what it did not start)
    lode.run("run", "--workers", "1", "p.lua", check=0)
    lode.run("workflow", "cancel", "q-a", check=0)
    w = lode.start("worker", "--workers", "1", "p.lua")
    try:
        assert wait_for(lambda: "b" in lode.read_lines("ran.txt"), timeout=20)
    finally:
        w.send_signal(signal.SIGTERM)
        w.wait(timeout=30)
    assert "a" not in lode.read_lines("ran.txt")
    assert lode.sql("select status from workflows where id='q-a'") == [("CANCELLED",)]
    q = lode.run("workflow", "queue", check=0)
    assert q.returncode == 0


TIMEOUT = r'''
local lode = require("lode")
local function log(line)
  local f = assert(io.open("effects.txt", "a")); f:write(line, "\n"); f:close()
end
local slow = lode.step("slow", function(i) log("step " .. i); os.execute("sleep 0.2"); return i end)
local q = lode.queue("kids")
local kid = lode.workflow("kid", function() for i = 1, 50 do slow(100 + i) end end)
local inline = lode.workflow("inline_kid", function() for i = 1, 50 do slow(200 + i) end end)
return lode.workflow("limited", function()
  local h = q:enqueue({ workflow = kid, id = "kid-1" })
  inline()
  return h:result()
end, { timeout = 1 })
'''


def test_timeout_cancels_the_workflow_and_its_children(lode):
    lode.write("p.lua", TIMEOUT)
    t0 = time.time()
    p = lode.run("run", "--workers", "2", "p.lua", check=1)
    assert time.time() - t0 < 4
    assert "CANCELLED" in p.stderr and "deadline" in p.stderr, p.stderr
    statuses = dict(lode.sql("select name, status from workflows"))
    assert statuses == {"limited": "CANCELLED", "kid": "CANCELLED", "inline_kid": "CANCELLED"}, \
        statuses
    steps = len(lode.read_lines("effects.txt"))
    assert steps < 20  # 1 s of 0.2 s steps in two workflows, not 100
    # --timeout on the command line does the same for a workflow without one
    lode.write("q.lua", TIMEOUT.replace(", { timeout = 1 })", ")"))
    p = lode.run("run", "--workers", "2", "--timeout", "1", "--db", "other.db", "q.lua", check=1)
    assert "deadline" in p.stderr


RELEASE = r'''
local lode = require("lode")
local q = lode.queue("held", { concurrency = 2 })
local mark = lode.step("mark", function(i)
  local f = assert(io.open("marks.txt", "a")); f:write(i, "\n"); f:close(); return i
end)
local job = lode.workflow("job", function(i)
  mark(i)
  lode.sleep(tonumber(os.getenv("NAP") or "0"))
  return i
end)
return lode.workflow("fan", function()
  q:enqueue({ workflow = job, id = "held-1" }, 1)
  q:enqueue({ workflow = job, id = "held-2" }, 2)
  return "enqueued"
end)
'''


def test_a_stopping_worker_releases_what_it_holds_and_nothing_is_lost(lode):
    lode.write("p.lua", RELEASE)
    lode.run("run", "--workers", "1", "p.lua", check=0)  # enqueue only
    w = lode.start("worker", "--workers", "1", "p.lua", env={"NAP": "3"})
    assert wait_for(lambda: len(lode.read_lines("marks.txt")) == 2, timeout=20)
    w.send_signal(signal.SIGTERM)
    t0 = time.time()
    assert w.wait(timeout=10) == 0
    assert time.time() - t0 < 2  # it did not wait out the 3 s sleeps
    assert lode.sql("select status, executor_id from workflows where queue='held' "
                    "order by id") == [("ENQUEUED", None), ("ENQUEUED", None)]
    # another worker claims them again and finishes them (the recorded wake-up
    # time holds); their first step is not run again
    w2 = lode.start("worker", "--workers", "1", "p.lua", env={"NAP": "3"})
    try:
        assert wait_for(lambda: lode.sql("select count(*) from workflows where queue='held' "
                                         "and status='SUCCESS'") == [(2,)], timeout=20)
    finally:
        w2.send_signal(signal.SIGTERM)
        w2.wait(timeout=10)
    assert sorted(lode.read_lines("marks.txt")) == ["1", "2"]


@pytest.mark.skipif(on_pg(), reason="SQLite-only: the failing database is a SQLite trigger")
def test_a_deadline_cancel_that_cannot_be_recorded_is_reported(lode):
    # the cancel at the deadline fails (a trigger stands in for a failing
    # database): the error says the workflow could not be cancelled, not that
    # it was
    lode.write("empty.lua", 'return require("lode").workflow("empty", function() end)')
    lode.run("run", "empty.lua", check=0)  # makes the state database
    lode.sql("create trigger no_cancel before update of status on workflows "
             "when new.status = 'CANCELLED' "
             "begin select raise(abort, 'cancel refused'); end")
    lode.write("p.lua", TIMEOUT.replace("q:enqueue({ workflow = kid, id = \"kid-1\" })",
                                        "nil"))
    p = lode.run("run", "--workers", "1", "p.lua", check=1)
    assert "could not be cancelled" in p.stderr and "cancel refused" in p.stderr, p.stderr
    assert "was cancelled" not in p.stderr, p.stderr


BACKOFF = r'''
local lode = require("lode")
local q = lode.queue("pair")
local tries = 0
local flaky = lode.step("flaky", function()
  tries = tries + 1
  if tries == 1 then error("first attempt fails") end
  return "flaky ok"
end, { retries = { max_attempts = 2, interval = 1.5 } })
local quick = lode.step("quick", function() return "quick ok" end)
local a = lode.workflow("slow_retry", function() return flaky() end)
local b = lode.workflow("other", function() lode.sleep(0.2); return quick() end)
return lode.workflow("both", function()
  local ha = q:enqueue(a)
  local hb = q:enqueue(b)
  return { ha:result(), hb:result() }
end)
'''


def test_a_retry_back_off_yields_the_thread_to_other_workflows(lode):
    # docs/lua-api.md: inside a workflow the wait between attempts is like
    # lode.sleep; with one thread, the other workflow finishes meanwhile
    lode.write("p.lua", BACKOFF)
    p = lode.run("run", "--workers", "1", "p.lua", check=0)
    assert json.loads(p.stdout) == ["flaky ok", "quick ok"]
    (fs, fe, att), = lode.sql("select started_at, ended_at, attempts from steps "
                              "where name='flaky'")
    (qe,), = lode.sql("select ended_at from steps where name='quick'")
    assert att == 2 and fe - fs >= 1400
    assert fs < qe < fe - 1000, (fs, qe, fe)


DEADLINE_IN_BACKOFF = '''
local lode = require("lode")
local flaky = lode.step("flaky", function() error("not yet") end,
  { retries = { max_attempts = 5, interval = 1.5, backoff = 1 } })
return lode.workflow("late", function() return flaky() end, { timeout = 0.5 })
'''


def test_a_deadline_during_a_retry_back_off_records_no_step(lode):
    # cancelled while waiting to retry: nothing is checkpointed for the step,
    # so a resumed workflow runs it again (as after a cancel before a step)
    lode.write("p.lua", DEADLINE_IN_BACKOFF)
    p = lode.run("run", "--workers", "1", "p.lua", timeout=60)
    assert p.returncode != 0
    assert "deadline" in p.stderr, p.stderr
    assert lode.sql("select count(*) from steps where name='flaky'") == [(0,)]
    assert lode.sql("select status from workflows where name='late'") == [("CANCELLED",)]
