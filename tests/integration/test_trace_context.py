"""Joining a caller's trace (issue 13, docs/tracing.md "Joining a caller's
trace"): Opik's distributed-trace headers and W3C traceparent/baggage, from
the environment or `lode run --trace-context`; malformed ones are ignored
with a warning, never a crash, never a foreign id taken as a UUIDv7."""
import json
import re

import pytest

from fake_opik import FakeOpik
from fake_otlp import FakeOtlp
from lodeutil import Lode

PIPELINE = r'''
local lode = require("lode")
local s = lode.step("one_step", function(x) return x end)
local child = lode.workflow("child_workflow", function(x) return s(x) end)
local q = lode.queue("kids")
return lode.workflow("main_workflow", function(x)
  local h = q:enqueue(child, x)
  return { s = s(x), c = h:result() }
end)
'''

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CALLER_TRACE = "0192f0c1-a2b3-7cde-8f00-112233445566"
CALLER_SPAN = "0192f0c1-a2b3-7cde-9f00-aabbccddeeff"


@pytest.fixture
def lode(tmp_path):
    lode = Lode(tmp_path)
    lode.write("p.lua", PIPELINE)
    return lode


def env(opik=None, otlp=None, **extra):
    e = {"OPIK_CONFIG_PATH": "/nonexistent/opik.config"}
    if opik:
        e.update(OPIK_URL_OVERRIDE=opik.url, OPIK_PROJECT_NAME="ctx")
    if otlp:
        e.update(OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint)
    e.update(extra)
    return e


def top_row(lode):
    return lode.sql("SELECT trace_id, parent_span_id, trace_extra FROM workflows"
                    " WHERE parent_id IS NULL ORDER BY rowid DESC LIMIT 1")[0]


BAD = [
    # (carriers, what the warning names)
    ({"TRACEPARENT": "garbage"}, "traceparent"),
    ({"TRACEPARENT": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, "traceparent"),
    ({"TRACEPARENT": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}, "traceparent"),
    ({"TRACEPARENT": "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "traceparent"),
    ({"TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"}, "traceparent"),
    ({"TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"}, "traceparent"),
    ({"TRACEPARENT": "00-" + "0192f0c1a2b37cde8f0011223344556" + "-00f067aa0ba902b7-01"}, "traceparent"),
    ({"BAGGAGE": "no-equals-sign"}, "baggage"),
    ({"BAGGAGE": "k=v,"}, "baggage"),
    ({"BAGGAGE": "k=v w"}, "baggage"),
    ({"BAGGAGE": "k=%zz"}, "baggage"),
    ({"BAGGAGE": "k=" + "v" * 9000}, "baggage"),
    # an Opik pair that is not two UUIDv7s, or only half of one
    ({"OPIK_TRACE_ID": "0192f0c1-a2b3-4cde-8f00-112233445566",  # a UUIDv4
      "OPIK_PARENT_SPAN_ID": CALLER_SPAN}, "opik_trace_id"),
    ({"OPIK_TRACE_ID": CALLER_TRACE, "OPIK_PARENT_SPAN_ID": "not-a-uuid"}, "opik_parent_span_id"),
    ({"OPIK_TRACE_ID": CALLER_TRACE}, "only one was given"),
    ({"OPIK_TRACE_ID": CALLER_TRACE + "0", "OPIK_PARENT_SPAN_ID": CALLER_SPAN}, "opik_trace_id"),
    ({"OPIK_TRACE_ID": "'; DROP TABLE workflows; --", "OPIK_PARENT_SPAN_ID": CALLER_SPAN},
     "opik_trace_id"),
    ({"BAGGAGE": "opik_trace_id=0192f0c1-a2b3-1cde-8f00-112233445566,"
                 "opik_parent_span_id=" + CALLER_SPAN}, "opik_trace_id"),
]


@pytest.mark.parametrize("carriers,named", BAD, ids=[str(i) for i in range(len(BAD))])
def test_malformed_context_is_ignored_with_a_warning(lode, carriers, named):
    p = lode.run("run", "p.lua", "x", env=env(**carriers))
    assert p.returncode == 0, p.stderr
    assert "warning" in p.stderr and named in p.stderr and "ignored" in p.stderr, p.stderr
    trace_id, parent, _ = top_row(lode)
    assert UUID7.match(trace_id) and parent is None
    for v in carriers.values():
        assert trace_id not in v  # never a foreign id as the trace


@pytest.mark.parametrize("arg", ['not json', '["a list"]', '{"opik_trace_id": 5}',
                                 '{"traceparent": "00-zz"}', '{"opik_trace_id": "%s"}' % CALLER_TRACE])
def test_malformed_trace_context_option_is_ignored(lode, arg):
    p = lode.run("run", "--trace-context", arg, "p.lua", "x", env=env())
    assert p.returncode == 0, p.stderr
    assert "warning" in p.stderr and "--trace-context" in p.stderr, p.stderr
    trace_id, parent, _ = top_row(lode)
    assert UUID7.match(trace_id) and trace_id != CALLER_TRACE and parent is None


def test_opik_headers_nest_the_run_under_the_caller_span(lode):
    ctx = json.dumps({"opik_trace_id": CALLER_TRACE, "opik_parent_span_id": CALLER_SPAN})
    with FakeOpik() as opik, FakeOtlp() as otlp:
        lode.run("run", "--trace-context", ctx, "p.lua", "x", env=env(opik, otlp), check=0)
        st, ot = opik.state(), otlp.state()
    assert st["errors"] == []
    # the caller owns the trace: lode writes spans into it, no trace record
    assert st["traces"] == {}
    spans = st["spans"]
    assert {s["trace_id"] for s in spans.values()} == {CALLER_TRACE}
    root = [s for s in spans.values() if s.get("parent_span_id") == CALLER_SPAN]
    assert [r["name"] for r in root] == ["main_workflow"]
    assert any(s["name"] == "child_workflow" and s["parent_span_id"] == root[0]["id"]
               for s in spans.values())
    # OTLP: the same trace, the root's parent is the caller span by the id rule
    oroot = next(s for s in ot["spans"].values() if s["name"] == "main_workflow")
    assert oroot["trace_id"] == CALLER_TRACE.replace("-", "")
    assert oroot["parent_span_id"] == CALLER_SPAN.replace("-", "")[16:]
    assert oroot["attributes"]["opik.parent_span_id"] == CALLER_SPAN


def test_env_carriers_are_the_same_as_the_option(lode):
    with FakeOpik() as opik:
        lode.run("run", "p.lua", "x", env=env(opik, OPIK_TRACE_ID=CALLER_TRACE,
                                             OPIK_PARENT_SPAN_ID=CALLER_SPAN), check=0)
        st = opik.state()
    assert {s["trace_id"] for s in st["spans"].values()} == {CALLER_TRACE}
    assert top_row(lode)[:2] == (CALLER_TRACE, CALLER_SPAN)


def test_w3c_traceparent_with_a_uuid7_trace_id_is_the_trace(lode):
    tp = "00-%s-00f067aa0ba902b7-01" % CALLER_TRACE.replace("-", "")
    with FakeOpik() as opik, FakeOtlp() as otlp:
        lode.run("run", "p.lua", "x", env=env(opik, otlp, TRACEPARENT=tp, BAGGAGE="user=ann"),
                 check=0)
        st, ot = opik.state(), otlp.state()
    # Opik: one trace with the caller's id (no Opik parent span is known)
    assert list(st["traces"]) == [CALLER_TRACE]
    assert st["traces"][CALLER_TRACE]["metadata"]["caller_traceparent"] == tp
    # OTLP: the caller's span is the root's parent
    oroot = next(s for s in ot["spans"].values() if s["name"] == "main_workflow")
    assert oroot["trace_id"] == CALLER_TRACE.replace("-", "")
    assert oroot["parent_span_id"] == "00f067aa0ba902b7" and oroot["links"] == []


def test_w3c_trace_id_that_is_not_uuid7_is_linked_not_taken(lode):
    """A caller's OpenTelemetry trace id (random, not a UUIDv7) cannot be an
    Opik trace id: lode keeps its own trace (the same in Opik and OTLP),
    records the caller in the metadata and links the caller's span in OTLP."""
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with FakeOpik() as opik, FakeOtlp() as otlp:
        lode.run("run", "p.lua", "x", env=env(opik, otlp, TRACEPARENT=tp), check=0)
        st, ot = opik.state(), otlp.state()
    assert st["errors"] == []
    [(tid, trace)] = st["traces"].items()
    assert UUID7.match(tid) and trace["metadata"]["caller_traceparent"] == tp
    assert {s["trace_id"] for s in ot["spans"].values()} == {tid.replace("-", "")}
    oroot = next(s for s in ot["spans"].values() if s["name"] == "main_workflow")
    assert oroot["parent_span_id"] is None
    assert oroot["links"] == [{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                               "span_id": "00f067aa0ba902b7"}]


def test_caller_baggage_travels_on_with_lode_http_headers(lode, tmp_path):
    lode.write("h.lua", r'''
local lode = require("lode")
local s = lode.step("s", function() return lode.trace.headers() end)
return lode.workflow("w", function() return s() end)
''')
    p = lode.run("run", "--json", "h.lua", env=env(BAGGAGE="user=ann,tenant=t%201"), check=0)
    h = json.loads(p.stdout)["result"]
    assert h["baggage"].startswith("opik_trace_id=" + h["opik_trace_id"])
    assert h["baggage"].endswith(",user=ann,tenant=t%201")
