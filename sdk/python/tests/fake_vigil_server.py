"""A real HTTP server on 127.0.0.1 standing in for Vigil's /internal/agent-output."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class FakeVigil:
    """Answers each POST with the next scripted reply; once the script runs out, accepts."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                with fake._lock:
                    fake.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    reply = fake.script.pop(0) if fake.script else None
                    count = len(fake.received)
                if reply is None:
                    accepted = {
                        "id": f"out-{count}",
                        "request_id": body.get("request_id"),
                        "status": "accepted",
                    }
                    reply = Reply(200, accepted)
                raw = isinstance(reply.body, bytes)
                data = reply.body if raw else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/plain" if raw else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def then(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> FakeVigil:
        """Script the reply to the next request not yet scripted."""
        self.script.append(Reply(status, body, headers or {}))
        return self

    def __enter__(self) -> FakeVigil:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
