"""Trace export against the fake Opik: outage, flaky server, 422, secrets,
OPIK_TRACK_DISABLE, body validity, and the `lode trace` tree.

The database is filled through the C API by build/lode_trace_fill (built by
cmake/trace.cmake next to the lode binary), the way the executor records
spans: each span is written first as started, then again as finished.
"""
import json
import re
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_opik import FakeOpik  # noqa: E402
from lodeutil import FILL, new_pg_database, on_pg, opik_free_env, pg_psql  # noqa: E402

BIN = os.environ.get("LODE_BIN", os.path.join(os.getcwd(), "build", "lode"))


@pytest.fixture
def env(tmp_path):
    return opik_free_env(tmp_path)


def dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d/api" % port


def fill(db, env, *args, check=True):
    p = subprocess.run([FILL, str(db), *args], env=env, capture_output=True, text=True,
                       timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return json.loads(p.stdout), p


def lode(env, *args, timeout=90):
    return subprocess.run([BIN, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def new_db(tmp_path):
    """A state database: a file, or a fresh PostgreSQL database ($LODE_TEST_PG)."""
    return new_pg_database() if on_pg() else tmp_path / "t.db"


def query(db, sql):
    if on_pg():
        return pg_psql(db, sql)
    with sqlite3.connect(str(db)) as c:
        return c.execute(sql).fetchall()


def rows(db):
    if on_pg():
        return [tuple(c if c is None else str(c) for c in r)
                for r in pg_psql(db, "SELECT id, kind, state, body, name FROM trace_records")]
    with sqlite3.connect(str(db)) as c:
        return c.execute("SELECT id, kind, state, body, name FROM trace_records").fetchall()


def assert_final_versions(db, state):
    """Every local trace/span reached the fake, as its last (finished) version."""
    local = rows(db)
    spans = [r for r in local if r[1] == "span"]
    traces = [r for r in local if r[1] == "trace"]
    assert set(state["spans"]) == {r[0] for r in spans}
    assert set(state["traces"]) == {r[0] for r in traces}
    for sid, body in state["spans"].items():
        assert "end_time" in body, sid
        assert body["output"]["pass"] == 1, body
        assert body["project_name"] == "Default Project"
    for tid, body in state["traces"].items():
        assert "end_time" in body and body["output"] == {"files": 3}
    fb = [r for r in local if r[1] == "feedback"]
    assert len(state["feedback"]) == len(fb)


def test_outage_during_run_then_export_delivers_everything(tmp_path, env):
    db = new_db(tmp_path)
    env["OPIK_URL_OVERRIDE"] = dead_url()
    t0 = time.monotonic()
    out, _ = fill(db, env, "--traces", "3", "--spans", "5", "--twice", "--feedback",
                  "--export", "--flush", "0.5")
    assert time.monotonic() - t0 < 10
    assert out["pending"] == 3 + 15 + 3  # nothing lost, nothing sent
    assert {r[2] for r in rows(db)} == {"pending"}
    with FakeOpik() as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        p = lode(env, "export", "--db", str(db))
        assert p.returncode == 0, p.stdout + p.stderr
        assert "delivered 21 records" in p.stdout
        st = opik.state()
    assert st["errors"] == []
    assert_final_versions(db, st)
    assert {r[2] for r in rows(db)} == {"sent"}
    paths = [r["path"] for r in st["requests"]]
    assert paths.index("/api/v1/private/traces/batch") < paths.index("/api/v1/private/spans/batch")


def test_live_exporter_keeps_the_newest_version(tmp_path, env):
    db = new_db(tmp_path)
    with FakeOpik() as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        out, _ = fill(db, env, "--traces", "5", "--spans", "8", "--twice", "--export")
        st = opik.state()
    assert out["pending"] == 0
    assert st["errors"] == []
    assert_final_versions(db, st)


@pytest.mark.parametrize("seed", [3, 11])
def test_flaky_opik_every_record_arrives(tmp_path, env, seed):
    db = new_db(tmp_path)
    with FakeOpik(fail_rate=0.3, seed=seed, retry_after=0.05) as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        out, _ = fill(db, env, "--traces", "20", "--spans", "10", "--twice", "--feedback",
                      "--export", "--flush", "30", "--pause-ms", "10")
        assert out["pending"] == 0
        # records written with no exporter running go out through `lode export`
        fill(db, env, "--traces", "10", "--spans", "10", "--twice")
        p = lode(env, "export", "--db", str(db))
        assert p.returncode == 0, p.stdout + p.stderr
        st = opik.state()
    statuses = [r["status"] for r in st["requests"]]
    assert any(s in (500, 429) for s in statuses), statuses  # failures did happen
    assert st["errors"] == []
    assert_final_versions(db, st)
    assert {r[2] for r in rows(db)} == {"sent"}


def test_batches_respect_item_and_byte_caps(tmp_path, env):
    """3,000 spans need >= 3 span batches of <= 1000 items; the fake's schema
    (maxItems 1000) would reject a bigger one."""
    db = new_db(tmp_path)
    fill(db, env, "--traces", "5", "--spans", "600")
    with FakeOpik() as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        p = lode(env, "export", "--db", str(db))
        assert p.returncode == 0, p.stdout + p.stderr
        st = opik.state()
    span_reqs = [r for r in st["requests"] if r["path"].endswith("/spans/batch")]
    assert len(span_reqs) >= 3
    assert all(r["items"] <= 1000 for r in span_reqs)
    assert all(r["bytes"] <= 4 * 1024 * 1024 for r in st["requests"])
    assert len(st["spans"]) == 3000 and st["errors"] == []


def test_422_one_record_reported_others_delivered(tmp_path, env):
    db = new_db(tmp_path)
    fill(db, env, "--traces", "3", "--spans", "6", "--twice", "--bad-name", "poison_step")
    with FakeOpik(reject_names={"poison_step"}) as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        p = lode(env, "export", "--db", str(db))
        assert p.returncode == 1
        assert "1 record was rejected" in p.stdout
        assert "lode export --failed" in p.stdout
        st = opik.state()
        n = st["request_count"]
        assert n < 15  # the bad record was isolated by halving, not retried
        # nothing left to retry automatically: a second export sends nothing
        p2 = lode(env, "export", "--db", str(db))
        assert p2.returncode == 0, p2.stdout
        assert opik.state()["request_count"] == n
    bad = [r for r in rows(db) if r[4] == "poison_step"]
    assert len(bad) == 1 and bad[0][2] == "failed"
    others = [r for r in rows(db) if r[4] != "poison_step"]
    assert {r[2] for r in others} == {"sent"}
    assert len(st["spans"]) == 17 and len(st["traces"]) == 3
    assert st["errors"] == []
    p = lode(env, "export", "--failed", "--db", str(db))
    assert p.returncode == 0
    assert bad[0][0] in p.stdout and "HTTP 422" in p.stdout and "poison_step" in p.stdout
    p = lode(env, "export", "--failed", "--json", "--db", str(db))
    failed = json.loads(p.stdout)
    assert [f["id"] for f in failed] == [bad[0][0]]
    assert "rejected by the fake" in failed[0]["response"]


def test_422_for_a_whole_batch(tmp_path, env):
    """The fake rejects the 2nd batch (and those records for good): they are
    failed, everything else is delivered, and the export ends."""
    db = new_db(tmp_path)
    fill(db, env, "--traces", "4", "--spans", "5")
    with FakeOpik(fail_422_batch=2) as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        p = lode(env, "export", "--db", str(db), timeout=60)
        st = opik.state()
    assert p.returncode == 1
    bad = {i for r in st["rejected"] for i in r["ids"]}
    states = {r[0]: r[2] for r in rows(db)}
    assert bad and all(states[i] == "failed" for i in bad)
    assert all(s == "sent" for i, s in states.items() if i not in bad)
    assert st["errors"] == []


def test_api_key_header_and_no_secret_anywhere(tmp_path, env):
    db = new_db(tmp_path)
    key = "lode-SECRET-key-5f3a9c"
    env.update(OPIK_API_KEY=key, OPIK_WORKSPACE="team-ws", OPIK_PROJECT_NAME="rag demo",
               LODE_LOG="debug")
    logs = ""
    with FakeOpik(fail_first=2, reject_names={"poison_step"}, echo_headers=True) as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        out, p = fill(db, env, "--traces", "2", "--spans", "4", "--twice", "--feedback",
                      "--bad-name", "poison_step", "--export", "--flush", "20")
        logs += p.stdout + p.stderr
        for args in (["export"], ["export", "--failed"], ["trace", "wf-0"],
                     ["export", "--retry-failed"]):
            q = lode(env, *args, "--db", str(db))
            logs += q.stdout + q.stderr
        st = opik.state()
    assert st["request_count"] > 2
    for h in st["headers"]:
        assert h.get("Authorization") == key  # exactly the key: no "Bearer "
        assert h.get("Comet-Workspace") == "team-ws"
    assert all(b["project_name"] == "rag demo" for b in st["spans"].values())
    assert "warning" in logs  # the rejection was logged...
    assert key not in logs    # ...without the key
    # the server echoed our headers in its error bodies; what we kept is scrubbed
    kept = [r[0] for r in query(db, "SELECT last_error FROM trace_records"
                                   " WHERE state='failed'")]
    assert kept and all("request_headers" in k and "[redacted]" in k for k in kept)
    for f in os.listdir(tmp_path):
        with open(tmp_path / f, "rb") as fh:
            assert key.encode() not in fh.read(), f
    assert st["errors"] == []


def test_track_disable_sends_nothing_ever(tmp_path, env):
    db = new_db(tmp_path)
    with FakeOpik() as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        env["OPIK_TRACK_DISABLE"] = "true"
        out, _ = fill(db, env, "--traces", "2", "--spans", "3", "--twice", "--export")
        assert out["pending"] == 0
        p = lode(env, "export", "--db", str(db))
        assert p.returncode == 0 and "disabled" in p.stdout
        # records made while disabled stay local even once tracking is back on
        del env["OPIK_TRACK_DISABLE"]
        p = lode(env, "export", "--db", str(db))
        assert p.returncode == 0, p.stdout + p.stderr
        assert opik.state()["request_count"] == 0
    assert {r[2] for r in rows(db)} == {"disabled"}
    # still visible locally
    p = lode(env, "trace", "wf-1", "--db", str(db))
    assert p.returncode == 0 and "fill_workflow" in p.stdout


def test_no_opik_configured_keeps_records_local(tmp_path, env):
    db = new_db(tmp_path)
    fill(db, env, "--traces", "1", "--spans", "2", "--export")
    p = lode(env, "export", "--db", str(db))
    assert p.returncode == 1 and "OPIK_URL_OVERRIDE" in p.stderr
    assert {r[2] for r in rows(db)} == {"pending"}


def test_fake_rejects_invalid_bodies(tmp_path):
    """The validity assertions above can fail: the fake does reject."""
    with FakeOpik() as opik:
        bad = [
            {"spans": [{"id": "not-a-uuid", "start_time": "2026-01-01T00:00:00Z"}]},
            {"spans": [{"id": "01900000-0000-7000-8000-000000000001",
                        "trace_id": "01900000-0000-7000-8000-000000000002",
                        "start_time": "2026-01-01 00:00:00",  # no zone
                        "last_updated_at": "2026-01-01T00:00:00Z"}]},
            {"spans": [{"id": "01900000-0000-4000-8000-000000000001",  # UUIDv4
                        "trace_id": "01900000-0000-7000-8000-000000000002",
                        "start_time": "2026-01-01T00:00:00Z",
                        "last_updated_at": "2026-01-01T00:00:00Z"}]},
            {"spans": [{"start_time": "2026-01-01T00:00:00Z", "input": [1, 2]}]},
            {"spans": []},
        ]
        for body in bad:
            req = urllib.request.Request(opik.url + "/v1/private/spans/batch",
                                         data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=5)
            assert e.value.code == 422
        assert len(opik.state()["errors"]) >= len(bad)
        assert opik.state()["spans"] == {}


def test_fake_cli_mode(tmp_path):
    pf = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__),
                                                          "fake_opik.py"),
                             "--port-file", str(pf), "--fail-rate", "0.5", "--seed", "1"],
                            stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if pf.exists():
                break
            time.sleep(0.05)
        port = int(pf.read_text())
        with urllib.request.urlopen("http://127.0.0.1:%d/_test/state" % port, timeout=5) as r:
            st = json.load(r)
        assert st["request_count"] == 0 and st["errors"] == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_lode_trace_tree(tmp_path, env):
    db = new_db(tmp_path)
    fill(db, env, "--traces", "2", "--spans", "6", "--twice")
    (tid, sid), = query(db, "SELECT trace_id, span_id FROM workflows WHERE id='wf-0'")
    p = lode(env, "trace", "wf-0", "--db", str(db))
    assert p.returncode == 0, p.stderr
    # without the input/output previews each line carries (docs/tracing.md)
    lines = [re.sub(r"\(\d+\)( → \S+)?", "", l) for l in p.stdout.splitlines()]
    assert lines[0] == "trace %s  fill_workflow [execution:workflow] [phase:TEST]" % tid
    # the root's line previews its input and output (docs/tracing.md)
    assert lines[1].startswith("fill_workflow") and lines[1].endswith("  ok")
    assert lines[2].startswith(" ├── step_1  ")
    assert lines[3].startswith(" │    ├── step_3  [tool]  ")
    assert lines[5].startswith(" │    └── step_5  ")
    assert lines[6].startswith(" └── step_2  ") and lines[6].endswith("  error")
    assert lines[7].strip() == "error: RuntimeError: boom"
    assert len(lines) == 8
    j = json.loads(lode(env, "trace", "wf-0", "--json", "--db", str(db)).stdout)
    assert j["trace_id"] == tid and j["spans"][0]["id"] == sid
    assert [c["name"] for c in j["spans"][0]["children"]] == ["step_1", "step_2"]
    # a trace id directly
    p = lode(env, "trace", tid, "--db", str(db))
    assert p.returncode == 0 and p.stdout.splitlines()[0].startswith("trace " + tid)
    p = lode(env, "trace", "no-such-workflow", "--db", str(db))
    assert p.returncode == 1 and "no-such-workflow" in p.stderr
    p = lode(env, "trace", "--db", str(db))
    assert p.returncode == 2
    p = lode(env, "trace", "wf-0", "--db", str(tmp_path / "missing.db"))
    assert p.returncode == 1 and "no database" in p.stderr


STEPS10 = """local lode = require("lode")
local s = lode.step("s", function(i) return i * 2 end)
return lode.workflow("ten", function()
  local t = 0
  for i = 1, 10 do t = t + s(i) end
  return t
end)
"""


def test_opik_down_exit_waits_only_the_grace_then_export_delivers(tmp_path, env):
    """issue 14: with Opik configured but down, every run waited the whole
    flush timeout (10 s) at exit, and `lode export` said only "(Opik
    unreachable?)". Now a destination seen down gets a short grace
    (LODE_EXPORT_GRACE_MS, 1 s), the real cause is printed, and the records
    stay for a later `lode export`."""
    db = new_db(tmp_path)
    (tmp_path / "ten.lua").write_text(STEPS10)
    env["OPIK_URL_OVERRIDE"] = dead_url()
    env["OPIK_DEFAULT_FLUSH_TIMEOUT"] = "10"
    walls = []
    for _ in range(2):
        t0 = time.monotonic()
        p = subprocess.run([BIN, "run", "--db", str(db), "ten.lua"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
        walls.append(time.monotonic() - t0)
        assert p.returncode == 0, p.stderr
        assert "not delivered to Opik yet (network: " in p.stderr, p.stderr
        assert "Couldn't connect to server" in p.stderr or "Connection refused" in p.stderr
    # the grace (1 s) plus the run itself, far below the 10 s flush timeout
    assert max(walls) < 4, walls
    pending = [r for r in rows(db) if r[2] == "pending"]
    assert len(pending) >= 2 * 11
    # lode export names the cause while Opik is still down...
    p = lode(env, "export", "--db", str(db), "--timeout", "0")
    assert p.returncode == 1
    assert "still pending for Opik (network: " in p.stdout, p.stdout
    assert "unreachable?" not in p.stdout
    # ... and delivers everything once it is back
    with FakeOpik() as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        p = lode(env, "export", "--db", str(db))
        assert p.returncode == 0, p.stdout + p.stderr
        st = opik.state()
    assert st["errors"] == []
    assert {r[2] for r in rows(db)} == {"sent"}
    assert len(st["traces"]) == 2 and len(st["spans"]) == 2 * 11


def test_opik_answering_503_is_the_cause_printed(tmp_path, env):
    """An HTTP failure is named with its status and body, not guessed."""
    db = new_db(tmp_path)
    (tmp_path / "ten.lua").write_text(STEPS10)
    with FakeOpik(fail_first=10**6) as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        t0 = time.monotonic()
        p = subprocess.run([BIN, "run", "--db", str(db), "ten.lua"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
        assert time.monotonic() - t0 < 4
        assert "not delivered to Opik yet (HTTP 503: " in p.stderr, p.stderr
        p = lode(env, "export", "--db", str(db), "--timeout", "0")
        assert "still pending for Opik (HTTP 503: " in p.stdout, p.stdout


MANY = """local lode = require("lode")
local s = lode.step("s", function(i) return i end)
return lode.workflow("many", function(n)
  for i = 1, tonumber(n) do s(i) end
  return n
end)
"""


def test_turning_opik_on_says_so_and_export_since_sends_only_recent(tmp_path, env):
    """issue 14: records kept while Opik was off all went out, unannounced,
    the first time it was turned on (a 2039-record backlog). A run now says
    so; `lode export --since AGE` sends only the recent ones and keeps the
    older ones local for good."""
    db = new_db(tmp_path)
    (tmp_path / "many.lua").write_text(MANY)
    local = dict(env)
    local.pop("OPIK_URL_OVERRIDE", None)
    run = lambda e, *a: subprocess.run([BIN, "run", "--db", str(db), "many.lua", *a],
                                       cwd=tmp_path, env=e, capture_output=True, text=True,
                                       timeout=120)
    assert run(local, "600").returncode == 0      # 602 records, Opik off
    time.sleep(1.5)
    assert run(local, "3").returncode == 0        # 5 newer ones
    with FakeOpik() as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        p = lode(env, "export", "--db", str(db), "--since", "1")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "kept 602 records older than 1 local for good" in p.stdout, p.stdout
        st = opik.state()
        assert len(st["traces"]) == 1 and len(st["spans"]) == 4
        states = [r[2] for r in rows(db)]
        assert states.count("disabled") == 602 and states.count("sent") == 5
        # later exports never send them
        p = lode(env, "export", "--db", str(db))
        assert "delivered 0 records" in p.stdout
    # a run that finds a backlog waiting says so before sending it
    assert run(local, "600").returncode == 0
    with FakeOpik() as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        p = run(env, "1")
        assert p.returncode == 0
        assert "602 trace records kept before this run are waiting for Opik" in p.stderr, p.stderr
        assert "lode export --since" in p.stderr
    p = lode(env, "export", "--db", str(db), "--since", "soon")
    assert p.returncode == 2 and "--since takes an age" in p.stderr
