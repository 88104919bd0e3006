"""docs/tracing.md, "lode trace": the text view of a large run (previews,
--errors, --depth, --slowest, --name, --span, folding, --json), queue wait
and durable sleep in the trace, and progress seen from a second process."""
import json
import os
import re
import time

import pytest

from lodeutil import Lode, wait_for

# 2,000 trivial children on a queue, every 700th fails; a durable sleep
GEN = r'''
local lode = require("lode")
local work = lode.step("work_step", function(path)
  if path:match("bad") then error("cannot read " .. path) end
  return { chunks = #path }
end)
local child = lode.workflow("process_file_workflow", function(path)
  return work(path)
end)
local q = lode.queue("files", { concurrency = 4 })
return lode.workflow("gen_workflow", function(n)
  n = tonumber(n)
  local hs = {}
  for i = 1, n do
    local p = string.format("/data/file%05d.md", i)
    if i % 700 == 0 then p = p .. ".bad" end
    hs[i] = q:enqueue(child, p)
  end
  lode.sleep(0.3)
  local ok, failed = 0, 0
  for i = 1, n do
    if pcall(function() return hs[i]:result() end) then ok = ok + 1 else failed = failed + 1 end
  end
  return { ok = ok, failed = failed }
end)
'''


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    lode = Lode(tmp_path_factory.mktemp("big"))
    lode.write("gen.lua", GEN)
    t = time.time()
    lode.run("run", "gen.lua", "2000", check=0, timeout=120)
    assert time.time() - t < 60
    wf = lode.sql("SELECT id FROM workflows WHERE name='gen_workflow'")[0][0]
    return lode, wf


def test_previews_name_the_file_each_child_handled_and_long_runs_fold(big):
    lode, wf = big
    out = lode.run("trace", wf, check=0).stdout
    lines = out.splitlines()
    assert len(lines) < 40, out
    assert "gen_workflow(2000) → {" in out
    assert re.search(r"process_file_workflow\(/data/file00001\.md\) → \{\"chunks\":18\}", out)
    assert "work_step(/data/file00001.md)" in out
    # 2,000 children: three shown, the rest folded with their failures counted
    assert "… 1,997 more process_file_workflow, 2 failed: see --errors" in out
    # --all unfolds
    assert lode.run("trace", wf, "--all", check=0).stdout.count("process_file_workflow(") == 2000


def test_errors_shows_only_failed_paths_with_their_ancestors(big):
    lode, wf = big
    out = lode.run("trace", wf, "--errors", check=0).stdout
    assert out.count("process_file_workflow(") == 2, out
    assert "/data/file00700.md.bad" in out and "/data/file01400.md.bad" in out
    assert "error: LuaError: /" in out and "cannot read /data/file00700.md.bad" in out
    assert "gen_workflow(2000)" in out  # the ancestor
    assert "file00001" not in out


def test_depth_name_and_slowest(big):
    lode, wf = big
    out = lode.run("trace", wf, "--depth", "1", check=0).stdout
    assert len(out.splitlines()) == 2 and "(+4,003 below)" in out, out
    out = lode.run("trace", wf, "--depth", "2", check=0).stdout
    assert "process_file_workflow(" in out and "work_step" not in out
    out = lode.run("trace", wf, "--name", "work_step*", "--all", check=0).stdout
    assert out.count("work_step(") == 2000 and "lode.sleep" not in out
    out = lode.run("trace", wf, "--slowest", "5", check=0).stdout.splitlines()
    assert len(out) == 6 and out[1].startswith("gen_workflow(2000)"), out
    durs = [re.search(r"  (\d+(?:\.\d+)?)(ms|s) ", l) for l in out[1:]]
    ms = [float(m.group(1)) * (1000 if m.group(2) == "s" else 1) for m in durs]
    assert ms == sorted(ms, reverse=True)


def test_span_shows_one_span_whole(big):
    lode, wf = big
    errs = lode.run("trace", wf, "--errors", check=0).stdout
    sid = re.search(r"process_file_workflow\(/data/file00700\.md\.bad\).*#([0-9a-f-]{36})",
                    errs).group(1)
    out = lode.run("trace", wf, "--span", sid, check=0).stdout
    assert out.startswith("span " + sid + "  process_file_workflow")
    assert '"/data/file00700.md.bad"' in out and "stack traceback:" in out
    assert '"queued_ms"' in out and "queued " in out
    # a unique prefix is enough; --full needs --span; an unknown span fails
    assert lode.run("trace", wf, "--span", sid[:23], check=0).stdout == out
    assert lode.run("trace", wf, "--span", sid, "--full", check=0).stdout.startswith("span ")
    assert lode.run("trace", wf, "--full").returncode == 2
    assert lode.run("trace", wf, "--span", "nope-nope").returncode == 1


def test_json_keeps_the_whole_structure(big):
    lode, wf = big
    doc = json.loads(lode.run("trace", wf, "--json", check=0).stdout)
    root = doc["spans"][0]
    kids = [k for k in root["children"] if k["name"] == "process_file_workflow"]
    assert len(kids) == 2000
    assert kids[0]["input"] == {"input": ["/data/file00001.md"]}
    assert kids[0]["output"] == {"chunks": 18}
    assert kids[0]["metadata"]["queue"] == "files" and kids[0]["queued_ms"] >= 0


SLEEPY = r'''
local lode = require("lode")
local child = lode.workflow("slow_child", function(i)
  os.execute("sleep 0.2")
  return i
end)
local q = lode.queue("one_at_a_time", { concurrency = 1 })
return lode.workflow("sleepy_workflow", function()
  local a = q:enqueue(child, 1)
  local b = q:enqueue(child, 2)
  lode.sleep(0.25)
  return a:result() + b:result()
end)
'''


def test_queue_wait_and_durable_sleep_are_visible(tmp_path):
    lode = Lode(tmp_path)
    lode.write("p.lua", SLEEPY)
    lode.run("run", "p.lua", check=0)
    wf = lode.sql("SELECT id FROM workflows WHERE name='sleepy_workflow'")[0][0]
    doc = json.loads(lode.run("trace", wf, "--json", check=0).stdout)
    kids = doc["spans"][0]["children"]
    children = [k for k in kids if k["name"] == "slow_child"]
    assert len(children) == 2
    # the second waited for the first (concurrency 1): its wait is apart from its run
    second = max(children, key=lambda k: k["queued_ms"])
    assert second["metadata"]["queued_ms"] >= 150
    assert second["duration_ms"] - second["queued_ms"] < second["duration_ms"]
    sleep = [k for k in kids if k["name"] == "lode.sleep"]
    assert len(sleep) == 1
    m = sleep[0]["metadata"]
    assert m["woke_ms"] >= m["planned_wake_ms"] and m["late_ms"] == m["woke_ms"] - m["planned_wake_ms"]
    assert m["planned_wake_ms"] - sleep[0]["start_ms"] == 250
    assert sleep[0]["input"] == {"seconds": 0.25}
    out = lode.run("trace", wf, check=0).stdout
    assert re.search(r"slow_child\(2\) → 2  \S+ \(queued \S+\)  ok", out), out
    assert "lode.sleep({\"seconds\":0.25})" in out


def test_a_second_workflow_get_shows_a_running_ingestion_s_progress(tmp_path):
    lode = Lode(tmp_path)
    os.mkdir(os.path.join(lode.dir, "corpus"))
    for i in range(1500):
        lode.write("corpus/f%04d.md" % i, "# Title %d\n\n" % i + "word " * 300)
    ingest = os.path.join(os.path.dirname(__file__), "..", "..", "pipelines", "ingest_folder.lua")
    proc = lode.start("run", ingest, "corpus", "--store", "s.store")
    try:
        def wf_id():
            try:
                r = lode.sql("SELECT id FROM workflows WHERE name='ingest_folder_workflow'")
            except Exception:
                return None
            return r[0][0] if r else None
        assert wait_for(lambda: wf_id() is not None, timeout=30)
        wf = wf_id()
        seen = []

        def running_with_progress():
            p = lode.run("workflow", "get", wf)
            if "status:       PENDING" in p.stdout and "progress:" in p.stdout:
                seen.append(p.stdout)
                return True
            return False
        assert wait_for(running_with_progress, timeout=60, step=0.02), "no progress seen"
        assert re.search(r"progress:     ingest: \d+/1500 files", seen[0]), seen[0]
        j = json.loads(lode.run("workflow", "get", wf, "--json", check=0).stdout)
        assert j["progress"]["total_files"] == 1500
        listed = lode.run("workflow", "list", "--name", "ingest_folder_workflow", check=0).stdout
        assert re.search(r"ingest_folder_workflow .*ingest: \d+/1500 files", listed)
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0, proc.stderr.read()
    p = lode.run("workflow", "get", wf, check=0).stdout
    assert "progress:     ingest: 1500/1500 files" in p, p
