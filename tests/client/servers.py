"""A small real HTTP server for the client's tests: it serves a routing snapshot with ETags, stores
events idempotently as the server does, or forwards to the real Django live server, and injects
faults (an error status, a dropped connection, a held request) where a test asks for them."""
from __future__ import annotations

import hashlib
import http.client
import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ROUTING = "/api/v1/routing"
EVENTS = "/api/v1/events"
ESCALATIONS = "/api/v1/escalations"


@dataclass
class Fault:
    """What to do with the next request to a path instead of (or after) answering it normally.

    status: answer this status (with `headers`, `body`). drop: close the connection without an
    answer. hold: wait for this event first, then go on. after: handle the request normally first
    (forward it, store the events), then apply the fault — the answer is lost, the work is done."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"detail": "injected fault"}'
    drop: bool = False
    hold: threading.Event | None = None
    after: bool = False


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None = None  # the status sent (None: dropped)

    def json(self):
        return json.loads(self.body)


class FakeRolloutops:
    """Start with `with FakeRolloutops() as server:`; `server.url` is its base URL.

    routing: the snapshot body served at /api/v1/routing (None: forward upstream, or 404).
    upstream: the real server's base URL; everything not answered here is forwarded to it.
    token: when set and there is no upstream, other bearer tokens get 401 (and `forbidden_tokens` 403).
    """

    def __init__(self, *, routing: dict | None = None, upstream: str | None = None, token: str | None = None):
        self.routing = routing
        self.upstream = upstream
        self.token = token
        self.forbidden_tokens: set[str] = set()
        self.down = False  # every request is dropped: the server is unreachable
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.seen: list[Seen] = []
        self.stored: dict[tuple, dict] = {}  # the stub's events by (agent, version, request_key, kind)
        self.per_event_errors: dict[str, str] = {}  # request_key → detail reported for it by index
        self.max_batch_events: int | None = None  # larger batches get 413
        self._lock = threading.Lock()
        self._holds: list[threading.Event] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeRolloutops:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for hold in self._holds:
            hold.set()
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, path: str, *faults: Fault) -> None:
        with self._lock:
            self.faults[path].extend(faults)
            self._holds.extend(f.hold for f in faults if f.hold is not None)

    def requests_to(self, path: str, method: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.split("?")[0] == path and (method is None or s.method == method)]

    def etag(self) -> str:
        return '"' + hashlib.sha256(json.dumps(self.routing, sort_keys=True).encode()).hexdigest()[:16] + '"'

    # --- answering ---------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = handler.path.split("?")[0]
        seen = Seen(method, handler.path, dict(handler.headers.items()), body)
        with self._lock:
            self.seen.append(seen)
            fault = self.faults[path].pop(0) if self.faults[path] else None
        if self.down:
            handler.close_connection = True
            return
        if fault is not None and fault.hold is not None:
            fault.hold.wait(30)
        if fault is not None and not fault.after and (fault.drop or fault.status):
            self._fault(handler, seen, fault)
            return
        status, headers, out = self._answer(method, handler.path, seen)
        if fault is not None and fault.after:
            self._fault(handler, seen, fault)
            return
        seen.answered = status
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(out)))
        handler.end_headers()
        handler.wfile.write(out)

    def _fault(self, handler, seen: Seen, fault: Fault) -> None:
        if fault.drop:
            handler.close_connection = True
            return
        seen.answered = fault.status
        handler.send_response(fault.status)
        for name, value in {"Content-Type": "application/json", **fault.headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(fault.body)))
        handler.end_headers()
        handler.wfile.write(fault.body)

    def _answer(self, method: str, full_path: str, seen: Seen) -> tuple[int, dict, bytes]:
        path = full_path.split("?")[0]
        if path == ROUTING and self.routing is not None:
            return self._routing(seen)
        if self.upstream is not None:
            return self._forward(method, full_path, seen)
        refused = self._auth(seen)
        if refused:
            return refused
        if path == EVENTS and method == "POST":
            return self._events(seen)
        return 404, {"Content-Type": "application/json"}, b'{"detail": "Not Found"}'

    def _auth(self, seen: Seen):
        if self.token is None:
            return None
        given = seen.headers.get("Authorization", "").removeprefix("Bearer ")
        if given in self.forbidden_tokens:
            return 403, {"Content-Type": "application/json"}, b'{"detail": "this token lacks the scope for this call"}'
        if given != self.token:
            return 401, {"Content-Type": "application/json"}, b'{"detail": "authentication required"}'
        return None

    def _routing(self, seen: Seen):
        refused = self._auth(seen)
        if refused:
            return refused
        etag = self.etag()
        if seen.headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag, "Cache-Control": "no-cache"}, b""
        body = json.dumps(self.routing).encode()
        return 200, {"Content-Type": "application/json", "ETag": etag, "Cache-Control": "no-cache"}, body

    def _events(self, seen: Seen):
        events = json.loads(seen.body)["events"]
        if self.max_batch_events is not None and len(events) > self.max_batch_events:
            return 413, {"Content-Type": "application/json"}, b'{"detail": "request body too large"}'
        accepted = duplicates = 0
        errors = []
        with self._lock:
            for index, event in enumerate(events):
                detail = self.per_event_errors.get(event["request_key"])
                if detail:
                    errors.append({"index": index, "detail": detail})
                    continue
                identity = (event["agent"], event.get("version"), event["request_key"], event["kind"])
                if identity in self.stored:
                    duplicates += 1
                else:
                    self.stored[identity] = event
                    accepted += 1
        body = json.dumps({"accepted": accepted, "duplicates": duplicates, "errors": errors}).encode()
        return 200, {"Content-Type": "application/json"}, body

    def _forward(self, method: str, full_path: str, seen: Seen):
        target = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        headers = {k: v for k, v in seen.headers.items() if k.lower() in ("authorization", "content-type",
                                                                          "if-none-match", "accept")}
        conn.request(method, full_path, body=seen.body or None, headers=headers)
        response = conn.getresponse()
        out = response.read()
        keep = {k: v for k, v in response.getheaders() if k.lower() in ("content-type", "etag", "retry-after",
                                                                         "cache-control")}
        conn.close()
        return response.status, keep, out

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server._handle(self, "GET")

            def do_POST(self):
                server._handle(self, "POST")

            def log_message(self, *args):
                pass

        return Handler
