#!/usr/bin/env python3
"""A fake Opik server for lode's tests (stdlib + PyYAML + jsonschema).

It serves Opik's write endpoints under ``<url>/v1/private/...`` where
``url = http://127.0.0.1:PORT/api`` (Opik's URL override includes ``/api``):

* ``POST /api/v1/private/traces/batch``   body ``TraceBatch_Write``
* ``POST /api/v1/private/spans/batch``    body ``SpanBatch_Write``
* ``PUT  /api/v1/private/traces/feedback-scores``  body ``FeedbackScoreBatch``

Every body is validated against tests/fixtures/opik/openapi.yaml (trimmed from
Opik's own specification); ids must be UUIDv7 and times ISO-8601 with a zone.
An invalid body is answered 422 and recorded in ``errors``. Valid records are
upserted by ``last_updated_at`` as Opik does: the newest version per id wins.

Failure injection (constructor keywords / CLI options):

* ``fail_rate`` + ``seed``: that fraction of requests get 500 or 429 at random.
* ``retry_after``: seconds sent as Retry-After on injected 429s.
* ``fail_first``: the first N requests get 503.
* ``fail_422_batch``: the N-th batch request (1-based) gets 422, and its ids are
  remembered as bad: any later request containing one gets 422 too (a real
  Opik rejects the same content the same way).
* ``reject_names``: records with one of these names are rejected with 422.
* ``echo_headers``: error bodies include the request's headers, as some
  proxies do (a client must not store or log them).
* ``auth_status``: every write request gets this status (401 or 403), as
  Opik answers a wrong API key or workspace.
* outage: simply do not start it (or ``stop()``); nothing listens.

Use as a context manager::

    with FakeOpik(fail_rate=0.3, seed=7) as opik:
        env["OPIK_URL_OVERRIDE"] = opik.url
        ...
        state = opik.state()

or as a process: ``fake_opik.py --port-file F [--fail-rate 0.3 ...]`` writes
its port to F and serves until SIGTERM/SIGINT; ``GET /_test/state`` returns
the state as JSON (traces, spans, feedback, errors, requests, headers).
"""
import argparse
import datetime
import json
import os
import random
import re
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml
from jsonschema import Draft202012Validator, RefResolver

HERE = os.path.dirname(os.path.abspath(__file__))
OPENAPI = os.path.join(HERE, "..", "fixtures", "opik", "openapi.yaml")

ENDPOINTS = {
    ("POST", "/api/v1/private/traces/batch"): ("TraceBatch_Write", "traces", "trace"),
    ("POST", "/api/v1/private/spans/batch"): ("SpanBatch_Write", "spans", "span"),
    ("PUT", "/api/v1/private/traces/feedback-scores"): ("FeedbackScoreBatch", "scores", "feedback"),
}

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def _load_validators():
    with open(OPENAPI) as f:
        doc = yaml.safe_load(f)
    resolver = RefResolver.from_schema(doc)
    out = {}
    for schema_name, _, _ in ENDPOINTS.values():
        out[schema_name] = Draft202012Validator(
            doc["components"]["schemas"][schema_name], resolver=resolver)
    return out


def parse_time(s):
    """ISO-8601 with an explicit zone, else ValueError."""
    if not isinstance(s, str) or not _ISO.match(s):
        raise ValueError("not an ISO-8601 time with a zone: %r" % (s,))
    t = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError("time without a zone: %r" % (s,))
    return t


def check_uuid7(v, what):
    try:
        u = uuid.UUID(v)
    except (ValueError, TypeError, AttributeError):
        return ["%s is not a UUID: %r" % (what, v)]
    if u.version != 7 or str(u) != v.lower():
        return ["%s is not a UUIDv7: %r" % (what, v)]
    return []


def semantic_errors(kind, items, require_stamp=True):
    errs = []
    for i, it in enumerate(items):
        where = "%s[%d]" % (kind, i)
        if kind in ("trace", "span"):
            if "id" not in it:
                errs.append(where + ": id missing (lode always chooses ids)")
            else:
                errs += check_uuid7(it["id"], where + ".id")
            if kind == "span":
                if "trace_id" not in it:
                    errs.append(where + ": trace_id missing")
                else:
                    errs += check_uuid7(it["trace_id"], where + ".trace_id")
                if "parent_span_id" in it:
                    errs += check_uuid7(it["parent_span_id"], where + ".parent_span_id")
            if require_stamp and "last_updated_at" not in it:
                errs.append(where + ": last_updated_at missing")
            for k in ("start_time", "end_time", "last_updated_at"):
                if k in it:
                    try:
                        parse_time(it[k])
                    except ValueError as e:
                        errs.append("%s.%s: %s" % (where, k, e))
        else:
            errs += check_uuid7(it.get("id"), where + ".id")
    return errs


class FakeOpik:
    def __init__(self, fail_rate=0.0, seed=0, retry_after=None, fail_first=0,
                 fail_422_batch=None, reject_names=(), port=0, echo_headers=False,
                 auth_status=None, require_stamp=True):
        self.auth_status = auth_status
        # lode always stamps last_updated_at; another client (Opik's own
        # SDK, test_opik_sdk_caller.py) need not
        self.require_stamp = require_stamp
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)
        self.retry_after = retry_after
        self.fail_first = fail_first
        self.fail_422_batch = fail_422_batch
        self.reject_names = set(reject_names)
        self.port = port
        self.echo_headers = echo_headers
        self.validators = _load_validators()
        self.lock = threading.Lock()
        self.traces, self.spans, self.feedback = {}, {}, {}
        self.versions = {}       # id -> number of accepted writes
        self.errors = []         # validation errors (the tests expect none)
        self.rejected = []       # injected 422s
        self.requests = []       # (method, path, status, items)
        self.headers = []        # headers of every request
        self.bad_ids = set()
        self.batches = 0
        self.server = None
        self.thread = None

    # ---- lifecycle --------------------------------------------------------
    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # quiet
                pass

            def do_GET(self):
                if self.path == "/_test/state":
                    self._send(200, json.dumps(fake.state()).encode(), "application/json")
                else:
                    self._send(404, b'{"errors":["not found"]}')

            def do_POST(self):
                fake._handle(self, "POST")

            def do_PUT(self):
                fake._handle(self, "PUT")

            def do_PATCH(self):
                fake._handle(self, "PATCH")

            def _send(self, status, body=b"", ctype="application/json", extra=()):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                if body:
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return "http://127.0.0.1:%d/api" % self.port

    # ---- request handling ------------------------------------------------------
    def _handle(self, h, method):
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        key = (method, h.path)
        with self.lock:
            self.headers.append({k: v for k, v in h.headers.items()})
            status, body, extra, items = self._decide(key, raw, h.headers)
            if self.echo_headers and status >= 400:
                body = json.dumps({"errors": [body.decode(errors="replace")],
                                   "request_headers": dict(h.headers.items())}).encode()
            self.requests.append({"method": method, "path": h.path, "status": status,
                                  "items": items, "bytes": len(raw)})
        h._send(status, body, extra=extra)

    def _decide(self, key, raw, headers):
        if self.auth_status and key in ENDPOINTS:
            return self.auth_status, b'{"errors":["API key is invalid"]}', (), 0
        if key not in ENDPOINTS:
            self.errors.append("unexpected request %s %s" % key)
            return 404, b'{"errors":["not found"]}', (), 0
        schema, field, kind = ENDPOINTS[key]
        try:
            doc = json.loads(raw)
        except ValueError as e:
            self.errors.append("%s: body is not JSON: %s" % (key[1], e))
            return 400, b'{"errors":["invalid JSON"]}', (), 0
        if "application/json" not in (headers.get("Content-Type") or ""):
            self.errors.append("%s: Content-Type is %r" % (key[1], headers.get("Content-Type")))
        errs = ["%s: %s" % ("/".join(str(p) for p in e.absolute_path), e.message)
                for e in self.validators[schema].iter_errors(doc)]
        items = doc.get(field) if isinstance(doc, dict) else None
        if not errs and isinstance(items, list):
            errs = semantic_errors(kind, items, self.require_stamp)
        if errs:
            self.errors.extend(errs)
            return 422, json.dumps({"errors": errs[:20]}).encode(), (), 0
        self.batches += 1
        # injected failures, in a fixed order so seeds reproduce
        if len(self.requests) < self.fail_first:
            return 503, b'{"errors":["starting up"]}', (), len(items)
        if self.fail_rate and self.rng.random() < self.fail_rate:
            if self.rng.random() < 0.5:
                return 500, b'{"errors":["injected failure"]}', (), len(items)
            extra = (("Retry-After", str(self.retry_after)),) if self.retry_after is not None else ()
            return 429, b'{"errors":["slow down"]}', extra, len(items)
        ids = [it.get("id") for it in items]
        if self.fail_422_batch is not None and self.batches == self.fail_422_batch:
            self.bad_ids.update(ids)
        bad = [i for i, it in enumerate(items)
               if it.get("id") in self.bad_ids or it.get("name") in self.reject_names]
        if bad:
            msg = {"errors": ["%s[%d]: rejected by the fake (injected 422)" % (field, i)
                              for i in bad]}
            self.rejected.append({"path": key[1], "ids": [ids[i] for i in bad]})
            return 422, json.dumps(msg).encode(), (), len(items)
        for it in items:
            self._upsert(kind, it)
        return 204, b"", (), len(items)

    def _upsert(self, kind, it):
        if kind == "feedback":
            self.feedback[(it["id"], it["name"])] = it
            return
        store = self.traces if kind == "trace" else self.spans
        old = store.get(it["id"])
        self.versions[it["id"]] = self.versions.get(it["id"], 0) + 1
        if old is None or "last_updated_at" not in it or "last_updated_at" not in old or \
                parse_time(it["last_updated_at"]) >= parse_time(old["last_updated_at"]):
            store[it["id"]] = it

    def state(self):
        with self.lock:
            return {
                "url": self.url,
                "traces": dict(self.traces),
                "spans": dict(self.spans),
                "feedback": [dict(v) for v in self.feedback.values()],
                "versions": dict(self.versions),
                "errors": list(self.errors),
                "rejected": list(self.rejected),
                "requests": list(self.requests),
                "request_count": len(self.requests),
                "headers": list(self.headers),
            }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--fail-rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--retry-after", type=float)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-422-batch", type=int)
    ap.add_argument("--reject-name", action="append", default=[])
    ap.add_argument("--echo-headers", action="store_true")
    a = ap.parse_args()
    fake = FakeOpik(a.fail_rate, a.seed, a.retry_after, a.fail_first, a.fail_422_batch,
                    a.reject_name, a.port, a.echo_headers).start()
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % fake.port)
        os.rename(tmp, a.port_file)
    print(fake.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
