"""The durable executor's promises (docs/durability.md), driven through `lode`."""
import json
import random
import time

import pytest

from lodeutil import Lode, kill9, wait_for

FIVE_STEPS = r'''
local lode = require("lode")
local function log(line)
  local f = assert(io.open("effects.txt", "a")); f:write(line, "\n"); f:close()
end
local function step(i)
  return lode.step("s" .. i, function(acc)
    log("s" .. i)
    if i == 3 and os.getenv("HANG_AT_3") and not io.open("released") then
      while not io.open("released") do os.execute("sleep 0.02") end
    end
    return acc .. i
  end)
end
local steps = {}
for i = 1, 5 do steps[i] = step(i) end
return lode.workflow("five", function(start)
  local acc = start
  for i = 1, 5 do acc = steps[i](acc) end
  return { result = acc, n = 5 }
end)
'''


@pytest.fixture
def lode(tmp_path):
    return Lode(tmp_path)


def test_kill9_during_step3_resumes_without_rerunning_finished_steps(lode):
    lode.write("p.lua", FIVE_STEPS)
    proc = lode.start("run", "p.lua", "x", env={"HANG_AT_3": "1"})
    assert wait_for(lambda: "s3" in lode.read_lines("effects.txt"))
    kill9(proc)
    assert lode.read_lines("effects.txt") == ["s1", "s2", "s3"]
    lode.write("released", "")
    p = lode.run("run", "p.lua", "x", check=0)
    # steps 1-2 did not run again, step 3 ran again, then 4 and 5
    assert lode.read_lines("effects.txt") == ["s1", "s2", "s3", "s3", "s4", "s5"]
    assert json.loads(p.stdout) == {"result": "x12345", "n": 5}
    # the same as an uninterrupted run
    other = Lode(lode.dir + "/clean")
    import os
    os.makedirs(other.dir)
    other.write("p.lua", FIVE_STEPS)
    assert json.loads(other.run("run", "p.lua", "x", check=0).stdout) == json.loads(p.stdout)
    assert lode.sql("select count(*) from workflows where status='SUCCESS'") == [(1,)]


def test_same_id_twice_runs_once_and_prints_recorded_result(lode):
    lode.write("p.lua", FIVE_STEPS)
    first = lode.run("run", "--id", "job-1", "p.lua", "y", check=0)
    second = lode.run("run", "--id", "job-1", "p.lua", "y", check=0)
    assert lode.read_lines("effects.txt") == ["s1", "s2", "s3", "s4", "s5"]
    assert json.loads(second.stdout) == json.loads(first.stdout) == {"result": "y12345", "n": 5}
    # reusing the id for another workflow name is an error
    lode.write("q.lua", 'local lode = require("lode")\n'
               'return lode.workflow("other", function() return 1 end)\n')
    bad = lode.run("run", "--id", "job-1", "q.lua", check=2)
    assert "already used by workflow 'five'" in bad.stderr


RETRY = r'''
local lode = require("lode")
local attempts = 0
local flaky = lode.step("flaky", function()
  attempts = attempts + 1
  local f = assert(io.open("attempts.txt", "a"))
  f:write(string.format("%.3f\n", require("socket_time")())); f:close()
  if attempts <= 2 then error("transient failure " .. attempts) end
  return attempts
end, { retries = { max_attempts = MAX, interval = 0.2, backoff = 2.0 } })
return lode.workflow("retrying", function() return flaky() end)
'''

CLOCK = r'''
return function()
  local p = io.popen("date +%s.%N"); local t = tonumber(p:read("l")); p:close(); return t
end
'''


def test_retries_follow_the_backoff_and_keep_every_error(lode):
    lode.write("socket_time.lua", CLOCK)
    lode.write("ok.lua", RETRY.replace("MAX", "3"))
    t0 = time.time()
    p = lode.run("run", "ok.lua", check=0)
    elapsed = time.time() - t0
    assert json.loads(p.stdout) == 3
    times = [float(x) for x in lode.read_lines("attempts.txt")]
    assert len(times) == 3
    gaps = [times[1] - times[0], times[2] - times[1]]
    assert 0.18 <= gaps[0] <= 0.5, gaps
    assert 0.38 <= gaps[1] <= 0.8, gaps
    assert gaps[1] > gaps[0] + 0.1, gaps  # the backoff doubled the pause

    # max_attempts = 2: fails, both errors kept, no sleep after the last attempt
    import os
    os.remove(os.path.join(lode.dir, "attempts.txt"))
    lode.write("fail.lua", RETRY.replace("MAX", "2"))
    t0 = time.time()
    p = lode.run("run", "fail.lua", check=1)
    elapsed = time.time() - t0
    assert len(lode.read_lines("attempts.txt")) == 2
    assert "transient failure 2" in p.stderr
    wf_id = lode.sql("select id from workflows where status='ERROR'")[0][0]
    steps = lode.run("workflow", "steps", wf_id, check=0).stdout
    assert "transient failure 1" in steps and "transient failure 2" in steps
    js = json.loads(lode.run("workflow", "steps", wf_id, "--json", check=0).stdout)
    assert js[0]["attempts"] == 2 and js[0]["status"] == "ERROR"
    # one 0.2 s pause between the attempts, and none after the last (0.4 s)
    assert 180 <= js[0]["duration_ms"] < 550, js[0]["duration_ms"]


def test_renamed_step_is_reported_as_another_version_and_fails_determinism(lode):
    lode.write("p.lua", FIVE_STEPS)
    proc = lode.start("run", "p.lua", "z", env={"HANG_AT_3": "1"})
    assert wait_for(lambda: "s3" in lode.read_lines("effects.txt"))
    kill9(proc)
    wf_id = lode.sql("select id from workflows")[0][0]
    lode.write("released", "")
    lode.write("p.lua", FIVE_STEPS.replace('lode.step("s" .. i,',
                                           'lode.step(i == 2 and "renamed" or "s" .. i,'))
    p = lode.run("run", "p.lua", "other-input", check=0)
    assert "another version" in p.stderr
    assert f"lode workflow resume {wf_id}" in p.stderr
    assert f"lode workflow cancel {wf_id}" in p.stderr
    assert lode.sql("select status from workflows where id=?", wf_id) == [("PENDING",)]
    import os
    r = lode.run("workflow", "resume", wf_id, check=1)
    expected = (f"workflow {wf_id} step 2: recorded 's2' but the pipeline now calls "
                "'renamed'; the workflow is not deterministic")
    assert expected in r.stderr
    assert lode.sql("select status from workflows where id=?", wf_id) == [("ERROR",)]
    os.chdir("/")  # resume works from any directory
    r = Lode(lode.dir).run("workflow", "get", wf_id, check=0)
    assert "not deterministic" in r.stdout


CRASHER = r'''
local lode = require("lode")
local ok = lode.step("ok", function() return 1 end)
local boom = lode.step("boom", function() return 2 end)
return lode.workflow("crasher", function() ok(); boom(); return "done" end,
  { max_recovery_attempts = 2 })
'''


def test_a_workflow_that_keeps_crashing_is_dead_lettered(lode):
    lode.write("p.lua", CRASHER)
    crash = {"LODE_TEST_CRASH_AT": "boom:1"}
    for _ in range(3):  # the first run and two recoveries all die
        p = lode.run("run", "p.lua", env=crash)
        assert p.returncode == -9, p.stderr
    p = lode.run("run", "p.lua", env=crash)
    assert p.returncode == 1
    assert "MAX_RECOVERY_ATTEMPTS_EXCEEDED" in p.stderr
    listing = lode.run("workflow", "list", "--status", "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
                       check=0).stdout
    assert "crasher" in listing
    wf_id = lode.sql("select id from workflows")[0][0]
    # resume gives it a new budget; without the crash it finishes
    r = lode.run("workflow", "resume", wf_id, check=0)
    assert json.loads(r.stdout) == "done"


@pytest.mark.parametrize("name,text,needle", [
    ("syntax.lua", 'local lode = require("lode")\nlocal x = = 1\n', "syntax.lua:2:"),
    ("noreturn.lua", 'local lode = require("lode")\nlode.workflow("w", function() end)\n',
     "noreturn.lua:2: the pipeline returns nothing"),
    ("number.lua", 'return 42\n', "number.lua:1: the pipeline returns a number"),
    ("raises.lua", 'local lode = require("lode")\n\nerror("bad config")\n', "raises.lua:3: bad config"),
    ("missing.lua", None, "missing.lua: pipeline file not found"),
])
def test_bad_pipeline_files_exit_2_naming_file_and_line(lode, name, text, needle):
    import os
    if text is not None:
        lode.write(name, text)
    p = lode.run("run", name, check=2)
    assert needle in p.stderr, p.stderr
    assert not os.path.exists(lode.db), "nothing may be written for a bad pipeline"


LONG = r'''
local lode = require("lode")
local work = lode.step("work", function(i, acc) return (acc * 31 + i) % 1000003 end)
return lode.workflow("long", function(n)
  local acc = 7
  for i = 1, tonumber(n) do acc = work(i, acc) end
  return acc
end)
'''


def test_kill9_at_random_moments_never_corrupts_and_always_resumes(lode):
    lode.write("p.lua", LONG)
    rnd = random.Random(1234)
    n = 20000
    for _ in range(20):
        proc = lode.start("run", "p.lua", str(n))
        time.sleep(rnd.uniform(0.0, 0.3))
        kill9(proc)
        import os
        if os.path.exists(lode.db):
            assert lode.sql("pragma integrity_check") == [("ok",)]
    p = lode.run("run", "p.lua", str(n), check=0)
    acc = 7
    for i in range(1, n + 1):
        acc = (acc * 31 + i) % 1000003
    assert json.loads(p.stdout) == acc
    assert lode.sql("pragma integrity_check") == [("ok",)]
    # every killed run was resumed by the next (a run that finished before
    # its kill makes the next one new): nothing left behind, and every
    # workflow has each position checkpointed exactly once
    rows = lode.sql("select status, count(*) from workflows group by status")
    assert len(rows) == 1 and rows[0][0] == "SUCCESS", rows
    runs = rows[0][1]
    assert runs <= 21
    assert lode.sql("select count(*) from steps") == [(n * runs,)]
    assert lode.sql("select count(*) from (select distinct workflow_id, step_no from steps)") \
        == [(n * runs,)]


def test_clean_runs_unregister_their_executor_and_a_killed_one_stays(lode):
    # docs/concurrency.md: a process's executors row says it is alive; it goes
    # when the process exits cleanly, and stays when it is killed (recovery
    # then sees its workflows are orphaned)
    lode.write("p.lua", FIVE_STEPS)
    for arg in ("a", "b", "c"):
        lode.run("run", "p.lua", arg, check=0)
    assert lode.sql("select count(*) from executors") == [(0,)]
    lode.run("run", "--workers", "3", "p.lua", "w", check=0)
    assert lode.sql("select count(*) from executors") == [(0,)]
    proc = lode.start("run", "p.lua", "k", env={"HANG_AT_3": "1"})
    assert wait_for(lambda: "s3" in lode.read_lines("effects.txt")[-1:])
    kill9(proc)
    assert lode.sql("select pid from executors") == [(proc.pid,)]


def test_dead_lettering_that_cannot_be_recorded_is_reported_not_assumed(lode):
    # the status change to MAX_RECOVERY_ATTEMPTS_EXCEEDED fails (a trigger
    # stands in for a failing database): the run says so, and the workflow is
    # not reported as dead-lettered while it is still PENDING
    lode.write("p.lua", CRASHER)
    for _ in range(3):  # the first run and two recoveries all die
        p = lode.run("run", "p.lua", env={"LODE_TEST_CRASH_AT": "boom:1"})
        assert p.returncode == -9, p.stderr
    lode.sql("create trigger no_dead_letter before update of status on workflows "
             "when new.status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' "
             "begin select raise(abort, 'dead letter refused'); end")
    p = lode.run("run", "p.lua")
    assert "dead letter refused" in p.stderr, p.stderr
    assert "marked MAX_RECOVERY_ATTEMPTS_EXCEEDED" not in p.stderr, p.stderr
    assert lode.sql("select status from workflows where name='crasher'") == [("PENDING",)]


def test_bad_options_are_reported_at_the_declaration_with_file_and_line(lode):
    lode.write("p.lua", 'local lode = require("lode")\n'
               'return lode.workflow("tour", function() return 1 end, { timeout = "soon" })\n')
    p = lode.run("run", "p.lua", check=2)
    assert ("p.lua:2: lode.workflow 'tour': option 'timeout' must be a positive number "
            "of seconds, at most 1e9 (got string \"soon\")") in p.stderr, p.stderr
    lode.write("q.lua", 'local lode = require("lode")\n'
               'local q = lode.queue("jobs", { concurrency = 2, workers = 3 })\n'
               'return lode.workflow("w", function() end)\n')
    p = lode.run("run", "q.lua", check=2)
    assert "q.lua:2: lode.queue 'jobs': unknown option 'workers'" in p.stderr, p.stderr


def test_a_declaration_inside_a_workflow_says_where_declarations_go(lode):
    lode.write("p.lua", 'local lode = require("lode")\n'
               'return lode.workflow("w", function()\n'
               '  local s = lode.step("late", function() return 1 end)\n'
               '  return s()\n'
               'end)\n')
    p = lode.run("run", "p.lua", check=1)
    assert ("p.lua:3: lode.step 'late' is declared inside a running workflow; declare "
            "workflows, steps, tracked functions and queues at the top level of the pipeline "
            "file") in p.stderr, p.stderr


def test_a_workflow_takes_a_thousand_arguments(lode):
    """Every argument reaches the body, as many as a command line holds (a
    new coroutine has room for about 20 values; 100 crashed lode)."""
    lode.write("count.lua", 'local lode = require("lode")\n'
               'return lode.workflow("count", function(...)\n'
               '  local n, last = select("#", ...), select(select("#", ...), ...)\n'
               '  return n .. ":" .. last\nend)\n')
    p = lode.run("run", "count.lua", *[str(i) for i in range(1, 1001)], check=0)
    assert p.stdout.strip() == '"1000:1000"', p.stdout
