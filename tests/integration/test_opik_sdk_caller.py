"""A real caller (issue 13, docs/tracing.md "Joining a caller's trace"): a
Node.js program traced with Opik's own TypeScript SDK (npm `opik`) calls
getDistributedTraceHeaders() inside a tracked function and runs `lode run`
with them; the fake Opik receives one trace in which lode's workflow is
nested under the Node span, and it stays there when lode is killed and
recovers the run.

The SDK is installed once into the build folder (npm, from the registry or
npm's cache); LODE_NPM_OPIK_DIR may point at an existing install."""
import json
import os
import shutil
import subprocess

import pytest

from fake_opik import FakeOpik
from lodeutil import LODE, Lode

HERE = os.path.dirname(os.path.abspath(__file__))
PIPELINE = r'''
local lode = require("lode")
local first = lode.step("first_step", function(x) return x .. "!" end)
local second = lode.step("second_step", function(x) return #x end)
local child = lode.workflow("child_workflow", function(x) return first(x) end)
local q = lode.queue("kids")
return lode.workflow("lode_workflow", function(topic)
  local a = first(topic)
  local h = q:enqueue(child, topic)
  return { a = a, n = second(a), c = h:result() }
end)
'''


def opik_sdk():
    """node_modules holding the `opik` package (installed once)."""
    d = os.environ.get("LODE_NPM_OPIK_DIR") or os.path.join(os.path.dirname(LODE), "npm-opik")
    mods = os.path.join(d, "node_modules")
    if not os.path.isdir(os.path.join(mods, "opik")):
        if not shutil.which("npm") or not shutil.which("node"):
            pytest.fail("node and npm are needed (Debian nodejs, npm: make deps)")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "package.json"), "w") as f:
            f.write('{"name": "lode-test-opik", "private": true}\n')
        p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefer-offline",
                            "--loglevel=error", "opik"], cwd=d, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, "npm install opik failed:\n" + p.stderr
    return mods


def test_node_opik_sdk_caller_gets_lode_nested_under_its_span(tmp_path):
    mods = opik_sdk()
    lode = Lode(tmp_path)
    lode.write("p.lua", PIPELINE)
    with FakeOpik(require_stamp=False) as opik:
        # HOME: no ~/.opik.config of the machine's, for the SDK and lode
        env = lode.env({"OPIK_URL_OVERRIDE": opik.url, "OPIK_PROJECT_NAME": "node-caller",
                        "HOME": str(tmp_path)})
        env.pop("LODE_DB", None)
        p = subprocess.run(["node", os.path.join(HERE, "opik_caller.mjs"), mods, LODE,
                            lode.write("p.lua", PIPELINE), lode.db],
                           env=env, capture_output=True, text=True, timeout=180)
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout.strip().splitlines()[-1])
        st = opik.state()
    # the first run was killed at the second step, the second recovered it
    assert out["first"] in ("SIGKILL", -9, 137), out
    assert out["second"] == 0, out["stderr"]
    headers = out["headers"]
    trace_id, node_span = headers["opik_trace_id"], headers["opik_parent_span_id"]
    assert st["errors"] == [], st["errors"]
    # one trace: the Node SDK's, with the Node span and lode's tree inside
    assert list(st["traces"]) == [trace_id]
    assert st["traces"][trace_id]["name"] == "node_caller"
    spans = st["spans"]
    assert {s["trace_id"] for s in spans.values()} == {trace_id}
    assert spans[node_span]["name"] == "node_caller"
    roots = [s for s in spans.values() if s["name"] == "lode_workflow"]
    assert len(roots) == 1 and roots[0]["parent_span_id"] == node_span
    root = roots[0]
    by_parent = {}
    for s in spans.values():
        by_parent.setdefault(s.get("parent_span_id"), []).append(s["name"])
    assert sorted(by_parent[root["id"]]) == ["child_workflow", "first_step", "second_step"]
    # recovered, not restarted: one workflow row, in the caller's trace
    assert lode.sql("SELECT count(*), trace_id, parent_span_id, recovery_attempts FROM workflows"
                    " WHERE parent_id IS NULL") == [(1, trace_id, node_span, 1)]
    assert root.get("end_time") and root["output"]["n"] == len("docs!")
