"""A local OTLP/HTTP receiver for the tests: POST /v1/traces with
application/x-protobuf, decoded with the official protocol definitions
(third_party/otel-proto, compiled with Debian's protoc into a temporary
folder at first use). It keeps every span it received, and every problem
it saw in `errors` (the tests expect none)."""
import importlib
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("LODE_SOURCE_DIR") or os.path.join(HERE, "..", "..")
PROTO_DIR = os.path.join(SOURCE, "third_party", "otel-proto")
_pb = None


def pb():
    """The generated module of trace_service.proto (compiled once per process)."""
    global _pb
    if _pb is None:
        out = tempfile.mkdtemp(prefix="otlp-pb-")
        files = ["opentelemetry/proto/common/v1/common.proto",
                 "opentelemetry/proto/resource/v1/resource.proto",
                 "opentelemetry/proto/trace/v1/trace.proto",
                 "opentelemetry/proto/collector/trace/v1/trace_service.proto"]
        subprocess.run(["protoc", "-I", PROTO_DIR, "--python_out", out, *files], check=True)
        sys.path.insert(0, out)
        _pb = importlib.import_module("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    return _pb


def any_value(v):
    k = v.WhichOneof("value")
    if k == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if k == "kvlist_value":
        return {x.key: any_value(x.value) for x in v.kvlist_value.values}
    return getattr(v, k) if k else None


class FakeOtlp:
    def __init__(self, status=200, port=0):
        self.status = status
        self.port = port
        self.lock = threading.Lock()
        self.spans = {}       # span id hex -> decoded span dict
        self.received = []    # every span, in arrival order (duplicates show here)
        self.resources = []
        self.errors = []
        self.requests = 0
        self.headers = []
        pb()

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                status = fake._handle(self.path, dict(self.headers.items()), raw)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                body = b""
                if status == 200:
                    body = pb().ExportTraceServiceResponse().SerializeToString()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self):
        """For OTEL_EXPORTER_OTLP_ENDPOINT (lode appends /v1/traces)."""
        return "http://127.0.0.1:%d" % self.port

    def _handle(self, path, headers, raw):
        with self.lock:
            self.requests += 1
            self.headers.append(headers)
            if path != "/v1/traces":
                self.errors.append("unexpected path %s" % path)
                return 404
            if headers.get("Content-Type") != "application/x-protobuf":
                self.errors.append("Content-Type %r" % headers.get("Content-Type"))
            if self.status != 200:
                return self.status
            req = pb().ExportTraceServiceRequest()
            try:
                req.ParseFromString(raw)
            except Exception as e:  # noqa: BLE001 - any decoding failure is the test's failure
                self.errors.append("undecodable request: %s" % e)
                return 400
            for rs in req.resource_spans:
                res = {a.key: any_value(a.value) for a in rs.resource.attributes}
                self.resources.append(res)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        d = {
                            "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex() or None,
                            "name": s.name, "kind": s.kind,
                            "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                            "attributes": {a.key: any_value(a.value) for a in s.attributes},
                            "status": {"code": s.status.code, "message": s.status.message},
                            "events": [{"name": e.name, "attributes": {
                                a.key: any_value(a.value) for a in e.attributes}}
                                for e in s.events],
                            "links": [{"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex()}
                                      for l in s.links],
                            "scope": ss.scope.name, "resource": res,
                        }
                        if len(s.trace_id) != 16 or len(s.span_id) != 8:
                            self.errors.append("bad id lengths in %s" % s.name)
                        self.received.append(d)
                        self.spans[d["span_id"]] = d
            return 200

    def state(self):
        with self.lock:
            return {"spans": dict(self.spans), "received": list(self.received),
                    "errors": list(self.errors), "requests": self.requests,
                    "headers": list(self.headers), "resources": list(self.resources)}
