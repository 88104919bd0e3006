"""lode.http (issue 13, docs/lua-api.md "lode.http"): against local servers
(plain HTTP, and HTTPS with a self-signed certificate made with openssl at
test time): the context headers each request carries, a span per request,
TLS verification that only a given CA relaxes, timeouts and size limits
with errors naming the URL, and retries from the step's options."""
import json
import os
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lodeutil import Lode


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    flaky = {}
    seen = []

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        Handler.seen.append((self.path, dict(self.headers.items())))
        if self.path.startswith("/echo"):
            self.reply(200, json.dumps({"headers": dict(self.headers.items())}).encode())
        elif self.path == "/slow":
            time.sleep(3)
            self.reply(200, b"{}")
        elif self.path == "/big":
            self.reply(200, b"x" * 200000, "text/plain")
        elif self.path == "/redirect":
            self.reply(302, b"", extra=(("Location", "/echo?from=redirect"),))
        elif self.path.startswith("/flaky"):
            n = Handler.flaky.get(self.path, 0) + 1
            Handler.flaky[self.path] = n
            if n < 3:
                self.reply(503, b'{"error":"try again"}')
            else:
                self.reply(200, json.dumps({"attempt": n}).encode())
        else:
            self.reply(404, b"{}")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        self.reply(200, json.dumps({"got": json.loads(body or b"null"),
                                    "ctype": self.headers.get("Content-Type")}).encode())


def serve(tls_cert=None):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls_cert)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def server():
    srv = serve()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, cert = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True)
    srv = serve((cert, key))
    yield "https://127.0.0.1:%d" % srv.server_address[1], cert
    srv.shutdown()


@pytest.fixture
def lode(tmp_path):
    return Lode(tmp_path)


def run(lode, body, *args):
    """Runs a one-step workflow whose step body is `body` (Lua); its result."""
    lode.write("p.lua", '''
local lode = require("lode")
local args = {...}
local s = lode.step("call_step", function(...)
%s
end, { retries = { max_attempts = 3, interval = 0.01 } })
return lode.workflow("http_workflow", function(...) return s(...) end)
''' % body)
    p = lode.run("run", "--json", "p.lua", *args, env={"OPIK_CONFIG_PATH": "/nonexistent"})
    return p, json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else None


def spans(lode):
    out = []
    for name, typ, body in lode.sql("SELECT name, type, body FROM trace_records WHERE kind='span'"):
        out.append(dict(json.loads(body), name=name, type=typ))
    return out


def last8(uuid):
    return uuid.replace("-", "")[16:]


def test_context_headers_and_a_span_per_request(lode, server):
    p, out = run(lode, '''
  local a = lode.http.request{ url = "%s/echo?token=secret", headers = { ["X-Mine"] = "1",
                               Authorization = "Bearer hush" } }
  local b = lode.http.get_json("%s/echo")
  return { a = a.json.headers, b = b.headers, status = a.status, h = lode.trace.headers() }
''' % (server, server))
    assert p.returncode == 0, p.stderr
    r = out["result"]
    assert r["status"] == 200
    sp = spans(lode)
    http = [s for s in sp if s["name"].startswith("HTTP GET")]
    assert len(http) == 2 and all(s["type"] == "tool" for s in http)
    step = next(s for s in sp if s["name"] == "call_step")
    for got, span in zip([r["a"], r["b"]], sorted(http, key=lambda s: s["start_time"])):
        trace = span["trace_id"]
        assert span["parent_span_id"] == step["id"]
        assert got["traceparent"] == "00-%s-%s-01" % (trace.replace("-", ""), last8(span["id"]))
        assert got["opik_trace_id"] == trace
        assert got["opik_parent_span_id"] == span["id"]
        assert got["baggage"] == "opik_trace_id=%s,opik_parent_span_id=%s" % (trace, span["id"])
    assert r["a"]["X-Mine"] == "1"
    # the step's own context, for other clients
    assert r["h"]["opik_parent_span_id"] == step["id"]
    assert r["h"]["traceparent"].endswith(last8(step["id"]) + "-01")
    # the query and secrets stay out of the span's name and input (the echo
    # server's response, its output, is the server's business)
    first = next(s for s in http if "?..." in s["name"])
    assert "secret" not in first["name"] + json.dumps(first["input"])
    assert "hush" not in json.dumps(first["input"])
    assert first["input"]["headers"]["Authorization"] == "[hidden]"
    assert first["metadata"]["http.response.status_code"] == 200


def test_headers_outside_any_span_are_empty(lode):
    lode.write("p.lua", '''
local lode = require("lode")
local h = lode.trace.headers()
return lode.workflow("w", function() return { n = next(h) == nil } end)
''')
    p = lode.run("run", "--json", "p.lua", env={"OPIK_CONFIG_PATH": "/nonexistent"})
    assert json.loads(p.stdout)["result"]["n"] is True


def test_self_signed_certificate_is_refused_unless_its_ca_is_given(lode, tls):
    url, cert = tls
    p, out = run(lode, 'return lode.http.get("%s/echo").status' % url)
    assert p.returncode != 0
    assert "%s/echo" % url in p.stderr and "ca_file" in p.stderr, p.stderr
    p, out = run(lode, 'return lode.http.get("%s/echo", { ca_file = "%s" }).status' % (url, cert))
    assert p.returncode == 0, p.stderr
    assert out["result"] == 200


def test_timeouts_and_size_limits_give_clear_errors(lode, server):
    t0 = time.time()
    p, _ = run(lode, 'return lode.http.get("%s/slow", { timeout = 0.3 }).status' % server)
    assert p.returncode != 0
    assert "timed out after 0.3 s" in p.stderr and "%s/slow" % server in p.stderr, p.stderr
    assert time.time() - t0 < 8  # three attempts of 0.3 s, not of 3 s
    p, _ = run(lode, 'return #lode.http.get("%s/big", { max_bytes = 1000 }).body' % server)
    assert p.returncode != 0
    assert "larger than 1000 bytes" in p.stderr and "%s/big" % server in p.stderr, p.stderr
    p, out = run(lode, 'return #lode.http.get("%s/big").body' % server)
    assert out["result"] == 200000


def test_redirects_and_json_helpers(lode, server):
    p, out = run(lode, '''
  local r = lode.http.get("%s/redirect")
  local n = lode.http.get("%s/redirect", { redirects = 0 })
  local j = lode.http.post_json("%s/post", { a = { 1, 2 }, b = "x" })
  return { followed = r.json.headers.Host ~= nil, status0 = n.status, posted = j }
''' % (server, server, server))
    assert p.returncode == 0, p.stderr
    r = out["result"]
    assert r["followed"] is True and r["status0"] == 302
    assert r["posted"]["got"] == {"a": [1, 2], "b": "x"}
    assert r["posted"]["ctype"] == "application/json"


def test_a_failing_request_retried_by_the_step_shows_each_attempt(lode, server):
    p, out = run(lode, 'return lode.http.get_json("%s/flaky-1").attempt' % server)
    assert p.returncode == 0, p.stderr
    assert out["result"] == 3
    http = sorted([s for s in spans(lode) if s["name"].startswith("HTTP GET")],
                  key=lambda s: s["start_time"])
    assert len(http) == 3
    assert "HTTP 503" in http[0]["error_info"]["message"]
    assert "HTTP 503" in http[1]["error_info"]["message"]
    assert "error_info" not in http[2]
    step = next(s for s in spans(lode) if s["name"] == "call_step")
    assert step["metadata"]["attempts"] == 3
