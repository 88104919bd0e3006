"""The code examples of docs/lua-api.md ("HTTP") and docs/tracing.md
("Headers: the context going out") run as written: each Lua block of those
sections is extracted from the page and run as a pipeline."""
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lodeutil import SOURCE, Lode


def lua_blocks(page, heading):
    """The ```lua blocks of the section `heading` (## level) of docs/page."""
    with open(os.path.join(SOURCE, "docs", page)) as f:
        text = f.read()
    start = text.index("\n## " + heading + "\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else len(text)]
    blocks = re.findall(r"```lua\n(.*?)```", section, re.S)
    assert blocks, "no lua example in %s, %s" % (page, heading)
    return blocks


class Items(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    calls = {}

    def log_message(self, *a):
        pass

    def do_GET(self):
        n = Items.calls.get(self.path, 0) + 1
        Items.calls[self.path] = n
        if self.path == "/items/2" and n == 1:  # fails once: the step retries
            status, body = 503, b"{}"
        elif self.path.startswith("/items/"):
            status = 200
            body = json.dumps({"title": "item " + self.path.rsplit("/", 1)[1],
                               "traceparent": self.headers.get("traceparent")}).encode()
        else:
            status, body = 404, b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_lua_api_http_example(tmp_path):
    [code] = lua_blocks("lua-api.md", "HTTP")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Items)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        lode = Lode(tmp_path)
        lode.write("example.lua", code)
        p = lode.run("run", "--json", "example.lua", "1", "2",
                     env={"ITEMS_URL": "http://127.0.0.1:%d" % srv.server_address[1],
                          "OPIK_CONFIG_PATH": "/nonexistent"}, check=0)
    finally:
        srv.shutdown()
    assert json.loads(p.stdout)["result"] == [{"id": "1", "title": "item 1"},
                                              {"id": "2", "title": "item 2"}]
    assert Items.calls["/items/2"] == 2
    spans = lode.sql("SELECT name FROM trace_records WHERE kind='span' AND type='tool'")
    assert len(spans) == 3


def test_tracing_headers_example(tmp_path):
    [code] = lua_blocks("tracing.md", "Headers: the context going out")
    lode = Lode(tmp_path)
    lode.write("example.lua", code)
    p = lode.run("run", "--json", "example.lua", "hello",
                 env={"OPIK_CONFIG_PATH": "/nonexistent"}, check=0)
    out = json.loads(p.stdout)["result"]
    step_span, trace = lode.sql("SELECT span_id, (SELECT trace_id FROM workflows) FROM steps")[0]
    assert out == "00-%s-%s-01 hello\n" % (trace.replace("-", ""),
                                          step_span.replace("-", "")[16:])
