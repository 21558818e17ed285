"""A real HTTP server that receives notifications and remembers them."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SinkServer(ThreadingHTTPServer):
    """``http.server``'s threading server with a listen backlog that takes a burst.

    socketserver listens with a backlog of 5, and a worker posts up to 16 events at once:
    the connections beyond the backlog waited for a SYN retransmit (1 s) or were reset, so
    an event missed the retry it was due and came a whole backoff interval late."""

    request_queue_size = 128
    daemon_threads = True
    allow_reuse_address = True


class Sink:
    """Records every POST; ``answer`` sets the status it replies with (204 by default),
    ``delay`` how long each answer takes; ``most_in_flight`` is the most POSTs it held at once,
    ``arrived`` how many came (``received`` has each one once answered)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[dict[str, Any]] = []
        self.answer = 204
        self.delay = delay
        self.most_in_flight = 0
        self.arrived = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                with sink._lock:
                    sink.arrived += 1
                    sink._in_flight += 1
                    sink.most_in_flight = max(sink.most_in_flight, sink._in_flight)
                time.sleep(sink.delay)
                with sink._lock:
                    sink._in_flight -= 1
                    sink.received.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": json.loads(raw or b"null")}
                    )
                    status = sink.answer
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = SinkServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Sink:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def events_for(self, session_id: str, *, distinct: bool = False) -> list[dict[str, Any]]:
        """The POSTs about the session, in the order they came. ``distinct``: each event once,
        as a consumer deduplicates them by their CloudEvent ``id``. Delivery is at least once:
        a worker killed after the sink took an event and before it recorded that delivers
        it again, with the same id."""
        with self._lock:
            events = [r for r in self.received if (r["body"] or {}).get("data", {}).get("sessionId") == session_id]
        if not distinct:
            return events
        unique: dict[str, dict[str, Any]] = {}
        for event in events:
            unique.setdefault(event["body"]["id"], event)  # the first delivery of each
        return list(unique.values())

    def wait_for(self, session_id: str, count: int, timeout: float = 15.0, *, distinct: bool = False) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events_for(session_id, distinct=distinct)
            if len(events) >= count:
                return events
            time.sleep(0.05)
        got = len(self.events_for(session_id, distinct=distinct))
        raise AssertionError(f"sink got {got} {'distinct ' if distinct else ''}events for {session_id}, expected {count}")
