"""docs/tracing.md: one Opik trace tree per run, built by the executor, delivered
through the durable outbox; checked against the fake Opik (which validates
every request against Opik's OpenAPI schemas)."""
import json
import os
import subprocess
import time

import pytest

from fake_opik import FakeOpik
from lodeutil import LODE, Lode, kill9, wait_for

PIPELINE = r'''
local lode = require("lode")
local function log(line)
  local f = assert(io.open("effects.txt", "a")); f:write(line, "\n"); f:close()
end
local load_document = lode.track("load_document", function(path)
  return { text = "text of " .. path }
end, { type = "tool" })
local load_step = lode.step("load_and_normalize_step", function(path)
  log("load " .. path)
  return load_document(path)
end)
local n = 0
local flaky_step = lode.step("flaky_step", function()
  n = n + 1
  if n == 1 then error("first attempt fails") end
  return n
end, { retries = { max_attempts = 3, interval = 0.01 } })
local slow_step = lode.step("slow_step", function(x)
  log("slow " .. x)
  if os.getenv("HANG") then
    while not io.open("released") do os.execute("sleep 0.02") end
  end
  return x
end)
local child = lode.workflow("process_file_workflow", function(path)
  local doc = load_step(path)
  return #doc.text
end)
local q = lode.queue("files", { concurrency = 2 })
return lode.workflow("ingest_folder_workflow", function(folder)
  local a = child(folder .. "/a.md")
  local b = child(folder .. "/b.md")
  local queued = q:enqueue(child, folder .. "/c.md")
  local started = lode.start(child, folder .. "/d.md")
  assert(queued:result() == a and started:result() == a)
  local f = flaky_step()
  local s = slow_step(a + b)
  load_document("from the body")
  lode.trace.feedback("quality", 0.5, "fine")
  return { a = a, b = b, f = f, s = s }
end, { phase = "INGESTION", tags = { "team:search" }, metadata = { owner = "rag" } })
'''


@pytest.fixture
def lode(tmp_path):
    return Lode(tmp_path)


def opik_env(opik, **extra):
    env = {"OPIK_URL_OVERRIDE": opik.url, "OPIK_PROJECT_NAME": "lode-tests",
           "OPIK_CONFIG_PATH": "/nonexistent/opik.config"}
    env.update(extra)
    return env


def tree(state):
    """{span name: [children names]} and parent checks for one trace."""
    spans = state["spans"]
    by_id = {s["id"]: s for s in spans.values()}
    children = {}
    for s in spans.values():
        children.setdefault(s.get("parent_span_id"), []).append(s)
    return by_id, children


def check_one_clean_trace(state):
    assert state["errors"] == [], state["errors"]
    assert len(state["traces"]) == 1, list(state["traces"])
    trace = next(iter(state["traces"].values()))
    by_id, children = tree(state)
    for s in by_id.values():
        assert s["trace_id"] == trace["id"]
        parent = s.get("parent_span_id")
        assert parent is None or parent in by_id, f"orphan span {s['name']}"
    roots = children.get(None, [])
    assert len(roots) == 1 and roots[0]["name"] == "ingest_folder_workflow"
    return trace, by_id, children


def names(children, span):
    return sorted(c["name"] for c in children.get(span["id"], []))


def test_one_trace_whose_tree_is_the_call_structure(lode):
    lode.write("p.lua", PIPELINE)
    with FakeOpik() as opik:
        # the queued and started children run on other worker threads
        lode.run("run", "--workers", "3", "p.lua", "docs", env=opik_env(opik), check=0)
        state = opik.state()
    trace, by_id, children = check_one_clean_trace(state)
    assert trace["name"] == "ingest_folder_workflow"
    assert trace["project_name"] == "lode-tests"
    assert set(trace["tags"]) == {"execution:workflow", "phase:INGESTION", "team:search"}
    assert trace["metadata"]["phase"] == "INGESTION"
    assert trace["metadata"]["owner"] == "rag"
    root = children[None][0]
    assert names(children, root) == sorted([
        "process_file_workflow", "process_file_workflow", "process_file_workflow",
        "process_file_workflow", "flaky_step", "slow_step", "load_document"])
    for child in [c for c in children[root["id"]] if c["name"] == "process_file_workflow"]:
        assert names(children, child) == ["load_and_normalize_step"]
        step = children[child["id"]][0]
        assert names(children, step) == ["load_document"]
        assert children[step["id"]][0]["type"] == "tool"
        assert step["metadata"]["step"] == 1 and step["metadata"]["attempts"] == 1
    flaky = next(c for c in children[root["id"]] if c["name"] == "flaky_step")
    assert flaky["metadata"]["attempts"] == 2
    attempts = children[flaky["id"]]
    assert [a["name"] for a in attempts] == ["flaky_step attempt 1"]
    assert "first attempt fails" in attempts[0]["error_info"]["message"]
    assert "error_info" not in flaky
    # finished spans carry their end and output; feedback reached the trace
    assert all(s.get("end_time") for s in by_id.values())
    assert root["output"]["a"] == len("text of docs/a.md")
    assert state["feedback"] and state["feedback"][0]["name"] == "quality"
    # `lode trace` draws the same tree from the local database
    wf_id = lode.sql("select id from workflows where parent_id is null")[0][0]
    out = lode.run("trace", wf_id, check=0).stdout
    assert trace["id"] in out and "load_and_normalize_step" in out
    assert "ingest_folder_workflow" in lode.run("workflow", "get", wf_id, check=0).stdout


def test_kill9_and_rerun_keeps_one_trace_same_root_no_duplicate_no_orphan(lode):
    lode.write("p.lua", PIPELINE)
    with FakeOpik() as opik:
        env = opik_env(opik, HANG="1")
        proc = lode.start("run", "p.lua", "docs", env=env)
        assert wait_for(lambda: any(l.startswith("slow") for l in lode.read_lines("effects.txt")))
        kill9(proc)
        root_before = lode.sql("select span_id, trace_id from workflows where parent_id is null")
        lode.write("released", "")
        lode.run("run", "p.lua", "docs", env=env, check=0)
        state = opik.state()
    trace, by_id, children = check_one_clean_trace(state)
    root = children[None][0]
    assert (root["id"], trace["id"]) == root_before[0]
    # replayed steps added no spans: each step span appears exactly once
    counts = {}
    for s in by_id.values():
        counts[s["name"]] = counts.get(s["name"], 0) + 1
    assert counts["load_and_normalize_step"] == 4
    assert counts["process_file_workflow"] == 4
    assert counts["flaky_step"] == 1 and counts["slow_step"] == 1
    # steps finished before the kill did not run again
    assert lode.read_lines("effects.txt").count("load docs/a.md") == 1
    assert lode.read_lines("effects.txt").count("load docs/c.md") == 1


def test_opik_down_for_the_whole_run_then_lode_export_delivers_everything(lode):
    lode.write("p.lua", PIPELINE)
    opik = FakeOpik()
    port_holder = opik.start()
    url = opik.url
    opik.stop()  # nothing listens there now
    env = {"OPIK_URL_OVERRIDE": url, "OPIK_DEFAULT_FLUSH_TIMEOUT": "1",
           "OPIK_CONFIG_PATH": "/nonexistent/opik.config"}
    p = lode.run("run", "p.lua", "docs", env=env, check=0)
    assert "lode export" in p.stderr
    pending = lode.sql("select count(*) from trace_records where state='pending'")[0][0]
    assert pending > 0
    with FakeOpik(port=int(url.split(":")[2].split("/")[0])) as opik:
        assert opik.url == url
        lode.run("export", env={"OPIK_URL_OVERRIDE": url,
                                "OPIK_CONFIG_PATH": "/nonexistent/opik.config"}, check=0)
        state = opik.state()
    check_one_clean_trace(state)
    assert lode.sql("select count(*) from trace_records where state='pending'") == [(0,)]
    # the fake holds each span's final version (an end time)
    assert all(s.get("end_time") for s in state["spans"].values())
    del port_holder


def test_disabled_tracking_sends_nothing_and_runs_the_same(lode):
    lode.write("p.lua", PIPELINE)
    with FakeOpik() as opik:
        p = lode.run("run", "p.lua", "docs", env=opik_env(opik, OPIK_TRACK_DISABLE="true"),
                     check=0)
        time.sleep(0.2)
        assert opik.state()["request_count"] == 0
    assert json.loads(p.stdout)["s"] == 2 * len("text of docs/a.md")
    assert lode.sql("select count(*) from trace_records where state='pending'") == [(0,)]


def test_a_step_called_outside_a_workflow_is_a_manual_trace(lode):
    os.makedirs(os.path.join(lode.dir, "tests", "lua"))
    lode.write("tests/lua/manual_spec.lua", r'''
local lode = require("lode")
describe("manual", function()
  it("runs a step as a plain traced function", function()
    local s = lode.step("chunk_step", function(x) return x * 2 end)
    assert.are.equal(4, s(2))
  end)
end)
''')
    tmp = os.path.join(lode.dir, "specdbs")
    os.makedirs(tmp)
    with FakeOpik() as opik:
        # spec databases as files even in the PostgreSQL run: this is about
        # what `lode test` keeps locally
        env = opik_env(opik, LODE_TEST_TMPDIR=tmp, LODE_TEST_PG="")
        lode.run("test", env=env, check=0)
        # `lode test` keeps records locally (one database per spec file)
        dbs = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".db")]
        assert len(dbs) == 1
        subprocess.run([LODE, "export", "--db", dbs[0]], env={**os.environ, **env},
                       check=True, capture_output=True)
        state = opik.state()
    assert state["errors"] == []
    traces = list(state["traces"].values())
    assert len(traces) == 1
    assert traces[0]["name"] == "chunk_step"
    assert traces[0]["tags"] == ["execution:manual"]


BUSY = r'''
local lode = require("lode")
local helper = lode.track("helper", function(i) return i end)
local work = lode.step("work_step", function(i)
  local t = os.clock() + 0.001 -- about a millisecond of work
  while os.clock() < t do end
  return helper(i)
end)
return lode.workflow("busy_workflow", function(n)
  for i = 1, tonumber(n) do work(i) end
  return n
end)
'''


def test_a_busy_run_is_exported_in_batches_not_a_request_per_commit(lode):
    # every step commits its own records (a tracked call inside it), one a
    # millisecond: the exporter waits a little after a commit, so the records
    # go in a few batched requests rather than one request per commit
    lode.write("busy.lua", BUSY)
    with FakeOpik() as opik:
        t0 = time.monotonic()
        lode.run("run", "busy.lua", "300", env=opik_env(opik))
        elapsed = time.monotonic() - t0
        state = opik.state()
    assert state["errors"] == []
    names = [s["name"] for s in state["spans"].values()]
    assert names.count("work_step") == 300 and names.count("helper") == 300
    span_requests = [r for r in state["requests"] if r["path"].endswith("/spans/batch")]
    # about one request per 50 ms of run (a loaded machine runs longer), and
    # far fewer than one per commit (268 of them without the wait)
    assert 1 <= len(span_requests) <= min(150, elapsed / 0.05 + 10), (len(span_requests), elapsed)
