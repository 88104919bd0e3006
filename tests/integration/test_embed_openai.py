"""The openai embedder against a fake /v1/embeddings server on 127.0.0.1.

Each test starts a ThreadingHTTPServer on an ephemeral port, writes a busted
spec that drives lode.embed against it, runs `lode test` on it (bounded by a
timeout) and then checks what the server saw: request count and sizes,
retries, the Authorization header.
"""
import json
import os
import random
import subprocess
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

LODE = os.environ.get("LODE_BIN", "build/lode")
KEY = "sk-test-SECRET-KEY-1234567890"


def vec(text):
    """The fake model: text 'tN' -> [N+1, 1, 0.5] (before normalisation)."""
    if text.startswith("t") and text[1:].isdigit():
        return [int(text[1:]) + 1.0, 1.0, 0.5]
    return [float(len(text)), 2.0, 3.0]


class Fake:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (batch size, auth header, body)
        self.fail_first = 0  # the first N requests fail with fail_status
        self.fail_status = 503
        self.retry_after = None
        self.shuffle = False
        self.reject = None  # (status, message) for every request
        self.malformed = None  # "drop" an item, or "garbage" instead of JSON
        self.failed = 0
        self.times = []
        self.delay = 0.0  # seconds each successful answer takes
        self.inflight = 0
        self.max_inflight = 0


def make_server(fake):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(n))
            with fake.lock:
                fake.times.append(time.monotonic())
                fake.requests.append(
                    (len(body["input"]), self.headers.get("Authorization"), body)
                )
                fail = fake.failed < fake.fail_first
                if fail:
                    fake.failed += 1
            if self.path != "/v1/embeddings":
                return self.reply(404, {"error": {"message": "no route " + self.path}})
            if fake.reject:
                status, msg = fake.reject
                return self.reply(status, {"error": {"message": msg, "type": "invalid_request_error"}})
            if fail:
                headers = {}
                if fake.retry_after is not None:
                    headers["Retry-After"] = str(fake.retry_after)
                return self.reply(fake.fail_status, {"error": {"message": "try later"}}, headers)
            with fake.lock:
                fake.inflight += 1
                fake.max_inflight = max(fake.max_inflight, fake.inflight)
            time.sleep(fake.delay)
            with fake.lock:
                fake.inflight -= 1
            data = [
                {"object": "embedding", "index": i, "embedding": vec(t)}
                for i, t in enumerate(body["input"])
            ]
            if fake.shuffle:
                random.shuffle(data)
            if fake.malformed == "drop":
                data = data[1:]
            elif fake.malformed == "garbage":
                raw = b"<html>not json</html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                return
            toks = sum(len(t.split()) for t in body["input"])
            self.reply(200, {
                "object": "list", "data": data, "model": "fake-embed-001",
                "usage": {"prompt_tokens": toks, "total_tokens": toks},
            })

        def reply(self, status, obj, headers=None):
            raw = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


@pytest.fixture
def fake():
    f = Fake()
    srv = make_server(f)
    f.url = "http://127.0.0.1:%d/v1" % srv.server_address[1]
    yield f
    srv.shutdown()
    srv.server_close()


def run_spec(tmp_path, fake, body, extra_env=None):
    spec = tmp_path / "openai_spec.lua"
    spec.write_text(textwrap.dedent("""\
        local lode = require("lode")
        local URL = os.getenv("FAKE_URL")
        local function near(a, b) return math.abs(a - b) < 1e-5 end
        describe("openai embedder", function()
          it("works", function()
        %s
          end)
        end)
        """) % textwrap.indent(textwrap.dedent(body), "    "))
    env = dict(os.environ, FAKE_URL=fake.url)
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    env.update(extra_env or {})
    p = subprocess.run([LODE, "test", str(spec)], capture_output=True, text=True,
                       timeout=60, env=env, cwd=str(tmp_path))
    return p, p.stdout + p.stderr


ORDER_CHECK = """
for i = 1, N do
  local r = m:row(i)
  local x, y, z = i, 1, 0.5          -- 't'..(i-1) -> [i, 1, 0.5]
  local n = math.sqrt(x * x + y * y + z * z)
  assert(near(r[1], x / n) and near(r[2], y / n) and near(r[3], z / n),
         "row " .. i .. " is out of place: " .. table.concat(r, ","))
end
"""


def texts_lua(n):
    return "local N = %d\nlocal texts = {}\nfor i = 1, N do texts[i] = 't' .. (i - 1) end\n" % n


def test_batches_order_usage(tmp_path, fake):
    fake.shuffle = True
    p, out = run_spec(tmp_path, fake, texts_lua(1000) + """
-- the usage lands on the current span through lode.trace.update (stubbed)
lode.trace = lode.trace or {}
local real_update, recorded = lode.trace.update, nil
lode.trace.update = function(t) recorded = t end
local e = lode.embed.new{ provider = "openai", base_url = URL, api_key = "%s",
                          model = "fake-embed", batch_size = 300, concurrency = 3 }
local m = e:embed(texts)
assert(#m == N and m:dims() == 3 and e:dims() == 3)
""" % KEY + ORDER_CHECK + """
local u = e:usage()
assert(u.prompt_tokens == N and u.total_tokens == N, "usage " .. u.prompt_tokens)
assert(u.model == "fake-embed-001", u.model)
local info = e:info()
assert(info.provider == "openai" and info.model == "fake-embed" and info.dims == 3)
lode.trace.update = real_update
assert(recorded and recorded.provider == "openai" and recorded.model == "fake-embed-001")
assert(recorded.usage.prompt_tokens == N and recorded.usage.total_tokens == N)
""")
    assert p.returncode == 0, out
    sizes = sorted(r[0] for r in fake.requests)
    assert sizes == [100, 300, 300, 300], sizes
    assert all(r[1] == "Bearer " + KEY for r in fake.requests)
    assert all(r[2]["model"] == "fake-embed" for r in fake.requests)
    got = sorted(t for r in fake.requests for t in r[2]["input"])
    assert got == sorted("t%d" % i for i in range(1000))


def test_retries_then_success(tmp_path, fake):
    fake.fail_first = 3
    fake.fail_status = 503
    p, out = run_spec(tmp_path, fake, texts_lua(10) + """
local e = lode.embed.new{ provider = "openai", base_url = URL, batch_size = 10,
                          max_retries = 4, retry_base = 0.01 }
local m = e:embed(texts)
""" + ORDER_CHECK)
    assert p.returncode == 0, out
    assert len(fake.requests) == 4  # 3 failures, then the success
    assert all(r[1] is None for r in fake.requests)  # no key configured: no header


def test_429_retry_after_honoured(tmp_path, fake):
    fake.fail_first = 1
    fake.fail_status = 429
    fake.retry_after = 1
    p, out = run_spec(tmp_path, fake, texts_lua(4) + """
local e = lode.embed.new{ provider = "openai", base_url = URL, retry_base = 0.001 }
local m = e:embed(texts)
""" + ORDER_CHECK)
    assert p.returncode == 0, out
    assert len(fake.requests) == 2
    gap = fake.times[1] - fake.times[0]
    assert gap >= 0.9, "Retry-After: 1 not honoured (retried after %.3fs)" % gap


def test_retries_exhausted(tmp_path, fake):
    fake.fail_first = 100
    fake.fail_status = 500
    p, out = run_spec(tmp_path, fake, texts_lua(3) + """
local e = lode.embed.new{ provider = "openai", base_url = URL, api_key = "%s",
                          max_retries = 2, retry_base = 0.01 }
local ok, err = pcall(e.embed, e, texts)
assert(not ok)
assert(tostring(err):find("after 3 attempts", 1, true), err)
assert(tostring(err):find("HTTP 500", 1, true), err)
""" % KEY)
    assert p.returncode == 0, out
    assert len(fake.requests) == 3


def test_400_is_a_clear_error_without_the_key(tmp_path, fake):
    fake.reject = (400, "'input' is too long; key was " + KEY)
    p, out = run_spec(tmp_path, fake, texts_lua(3) + """
local e = lode.embed.new{ provider = "openai", base_url = URL, api_key = "%s" }
local ok, err = pcall(e.embed, e, texts)
assert(not ok)
err = tostring(err)
assert(err:find("HTTP 400", 1, true), err)
assert(err:find("'input' is too long", 1, true), err)
assert(not err:find("SECRET", 1, true), "the key leaked: " .. err)
""" % KEY)
    assert p.returncode == 0, out
    assert len(fake.requests) == 1  # a 400 is never retried
    assert KEY not in out


def test_env_configuration(tmp_path, fake):
    p, out = run_spec(tmp_path, fake, texts_lua(2) + """
local e = lode.embed.new{ provider = "openai", dimensions = 3 }
local m = e:embed(texts)
""" + ORDER_CHECK, {"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": KEY})
    assert p.returncode == 0, out
    assert fake.requests[0][1] == "Bearer " + KEY
    assert fake.requests[0][2]["dimensions"] == 3


def test_network_error_retried_then_reported(tmp_path, fake):
    # a port nobody listens on: connection refused, retried, then reported
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p, out = run_spec(tmp_path, fake, texts_lua(1) + """
local e = lode.embed.new{ provider = "openai", base_url = "http://127.0.0.1:%d/v1",
                          max_retries = 2, retry_base = 0.01 }
local ok, err = pcall(e.embed, e, texts)
assert(not ok and tostring(err):find("after 3 attempts", 1, true), err)
""" % port)
    assert p.returncode == 0, out


@pytest.mark.parametrize("kind,needle", [("drop", "lacks index"), ("garbage", "no \\\"data\\\" array")])
def test_malformed_response_is_a_clear_error(tmp_path, fake, kind, needle):
    fake.malformed = kind
    p, out = run_spec(tmp_path, fake, texts_lua(5) + """
local e = lode.embed.new{ provider = "openai", base_url = URL }
local ok, err = pcall(e.embed, e, texts)
assert(not ok)
assert(tostring(err):find("%s", 1, true), err)
""" % needle)
    assert p.returncode == 0, out


def test_requests_run_concurrently(tmp_path, fake):
    fake.delay = 0.5
    p, out = run_spec(tmp_path, fake, texts_lua(80) + """
local e = lode.embed.new{ provider = "openai", base_url = URL, batch_size = 10, concurrency = 4 }
local m = e:embed(texts)
""" + ORDER_CHECK)
    assert p.returncode == 0, out
    assert len(fake.requests) == 8
    assert fake.max_inflight == 4, fake.max_inflight  # never more than asked, and not serial
