"""OpenTelemetry export (issue 13, docs/tracing.md "OpenTelemetry (OTLP)"):
the same outbox delivers to Opik and to an OTLP/HTTP receiver that decodes
every request with the official protocol definitions (fake_otlp.py), with
the same trace and span ids; each destination keeps its own delivery state."""
import json
import socket

from fake_opik import FakeOpik
from fake_otlp import FakeOtlp
from lodeutil import Lode
from test_tracing import PIPELINE, check_one_clean_trace

import pytest


@pytest.fixture
def lode(tmp_path):
    return Lode(tmp_path)


def dead_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d" % port


def both_env(opik_url, otlp_endpoint, **extra):
    env = {"OPIK_URL_OVERRIDE": opik_url, "OPIK_PROJECT_NAME": "lode-tests",
           "OPIK_CONFIG_PATH": "/nonexistent/opik.config",
           "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint, "OTEL_SERVICE_NAME": "lode-test",
           "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,team=search",
           "OPIK_DEFAULT_FLUSH_TIMEOUT": "3", "OTEL_EXPORTER_OTLP_TIMEOUT": "2000"}
    env.update(extra)
    return env


def otlp_span_id(uuid):
    """The documented rule: the UUID's last 8 bytes."""
    return uuid.replace("-", "")[16:]


def check_same_ids(opik_state, otlp_state):
    """One trace, every Opik span once in OTLP with the same ids."""
    assert otlp_state["errors"] == [], otlp_state["errors"]
    trace, by_id, children = check_one_clean_trace(opik_state)
    spans = otlp_state["spans"]
    # every span once: no span id was received twice
    ids = [s["span_id"] for s in otlp_state["received"]]
    assert len(ids) == len(set(ids)), "a span was sent twice over OTLP"
    assert len(spans) == len(by_id)
    assert {s["trace_id"] for s in spans.values()} == {trace["id"].replace("-", "")}
    for sid, s in by_id.items():
        o = spans[otlp_span_id(sid)]
        assert o["name"] == s["name"]
        a = o["attributes"]
        assert a["opik.trace_id"] == s["trace_id"] == trace["id"]
        assert a["opik.span_id"] == sid
        assert a.get("opik.parent_span_id") == s.get("parent_span_id")
        parent = s.get("parent_span_id")
        if parent:
            assert o["parent_span_id"] == otlp_span_id(parent)
            assert o["parent_span_id"] in spans, "parent missing in OTLP"
        else:
            assert o["parent_span_id"] is None
        assert o["end"] >= o["start"] > 0
        assert o["resource"]["service.name"] == "lode-test"
        assert o["resource"]["deployment.environment"] == "test"
    return trace, by_id, spans


def test_otlp_and_opik_get_one_trace_with_the_same_ids(lode):
    lode.write("p.lua", PIPELINE)
    with FakeOpik() as opik, FakeOtlp() as otlp:
        lode.run("run", "p.lua", "docs", "--workers", "3", env=both_env(opik.url, otlp.endpoint),
                 check=0)
        st, ost = opik.state(), otlp.state()
    trace, by_id, spans = check_same_ids(st, ost)
    # content: lode.* attributes, the failed attempt's error and traceback
    step = next(s for s in spans.values() if s["name"] == "load_and_normalize_step")
    assert step["attributes"]["lode.step.number"] == 1
    assert step["attributes"]["lode.step.attempts"] == 1
    assert step["attributes"]["lode.workflow.id"]
    attempt = next(s for s in spans.values() if s["name"] == "flaky_step attempt 1")
    assert attempt["status"]["code"] == 2 and "first attempt fails" in attempt["status"]["message"]
    ev = attempt["events"][0]
    assert ev["name"] == "exception" and "first attempt fails" in ev["attributes"]["exception.message"]
    assert "exception.stacktrace" in ev["attributes"]
    tool = next(s for s in spans.values() if s["name"] == "load_document")
    assert tool["attributes"]["opik.span_type"] == "tool"
    assert json.loads(tool["attributes"]["output"])["text"].startswith("text of")
    root = next(s for s in spans.values() if s["parent_span_id"] is None)
    assert root["name"] == "ingest_folder_workflow" and root["status"]["code"] == 0
    # the outbox: both destinations delivered
    assert lode.sql("SELECT count(*) FROM trace_records WHERE kind='span'"
                    " AND otlp_state<>'sent'") == [(0,)]


def test_gen_ai_usage_and_model_map_to_semantic_conventions(lode):
    lode.write("p.lua", r'''
local lode = require("lode")
local llm = lode.track("llm_call", function(q)
  lode.trace.update({ usage = { prompt_tokens = 12, completion_tokens = 5, total_tokens = 17 },
                      model = "gpt-4o-mini", provider = "openai" })
  return "answer"
end, { type = "llm" })
return lode.workflow("ask", function(q) return llm(q) end)
''')
    with FakeOpik() as opik, FakeOtlp() as otlp:
        lode.run("run", "p.lua", "hi", env=both_env(opik.url, otlp.endpoint), check=0)
        st = otlp.state()
    s = next(s for s in st["spans"].values() if s["name"] == "llm_call")
    a = s["attributes"]
    assert a["gen_ai.usage.input_tokens"] == 12 and a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.provider.name"] == "openai"
    assert s["kind"] == 3  # CLIENT


@pytest.mark.parametrize("down", ["otlp", "opik"])
def test_one_destination_down_never_holds_the_other(lode, down):
    """Down for the whole run: the other gets everything at once; the
    records for the one that was down go later with `lode export`."""
    lode.write("p.lua", PIPELINE)
    with FakeOpik() as opik, FakeOtlp() as otlp:
        dead = dead_port_url()
        env = both_env(opik.url if down == "otlp" else dead + "/api",
                       otlp.endpoint if down == "opik" else dead)
        p = lode.run("run", "p.lua", "docs", "--workers", "3", env=env, timeout=120)
        assert p.returncode == 0, p.stderr
        first_opik, first_otlp = opik.state(), otlp.state()
        if down == "otlp":
            check_one_clean_trace(first_opik)
            assert first_otlp["requests"] == 0
            assert "not delivered to the OTLP endpoint yet" in p.stderr
            pending = lode.sql("SELECT count(*) FROM trace_records WHERE otlp_state='pending'")
            assert pending[0][0] > 0
            assert lode.sql("SELECT count(*) FROM trace_records WHERE state<>'sent'") == [(0,)]
        else:
            assert first_opik["request_count"] == 0
            assert len(first_otlp["spans"]) > 0
            assert lode.sql("SELECT count(*) FROM trace_records WHERE kind='span'"
                            " AND otlp_state<>'sent'") == [(0,)]
            assert "not delivered to Opik yet" in p.stderr
        # later, both up: `lode export` delivers what was held and reports both
        p = lode.run("export", "--json", env=both_env(opik.url, otlp.endpoint), check=0)
        out = json.loads(p.stdout)
        assert out["pending"] == 0 and out["otlp"]["pending"] == 0, out
        if down == "otlp":
            assert out["otlp"]["sent"] > 0 and out["sent"] == 0
        else:
            assert out["sent"] > 0 and out["otlp"]["sent"] == 0
        check_same_ids(opik.state(), otlp.state())
        p = lode.run("export", env=both_env(opik.url, otlp.endpoint), check=0)
        assert "to Opik" in p.stdout and "to the OTLP endpoint" in p.stdout


def test_otlp_only_and_a_rejecting_endpoint(lode):
    """OTLP without Opik; a 400 marks the spans failed for OTLP alone."""
    lode.write("p.lua", PIPELINE)
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": None}
    with FakeOtlp(status=400) as otlp:
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp.endpoint + "/v1/traces",
               "OPIK_CONFIG_PATH": "/nonexistent/opik.config"}
        lode.run("run", "p.lua", "docs", env=env, check=0)
        failed = lode.sql("SELECT count(*) FROM trace_records WHERE otlp_state='failed'")[0][0]
        assert failed > 0
        assert otlp.state()["requests"] >= 1
        p = lode.run("export", "--json", env=env)
        out = json.loads(p.stdout)
        assert out["opik"] is None and out["otlp"]["pending"] == 0
        failed = json.loads(lode.run("export", "--failed", "--json", env=env, check=0).stdout)
        assert failed and {f["destination"] for f in failed} == {"otlp"}
        assert all("HTTP 400" in f["response"] for f in failed)
