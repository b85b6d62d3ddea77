"""A loopback HTTP server for download tests (127.0.0.1 only, started and stopped by the test).

It serves bytes from memory and can be told to ignore ``Range``, stall, answer with an error status, or cut
the connection part-way through a body; it records every request (path, ``Range`` / ``If-Range`` headers,
bytes sent). Given an absolute URI (``GET http://host/path``) it answers as a forward proxy would, so a test
can point ``http_proxy`` at it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["ModelServer", "Request"]


@dataclass
class Request:
    """One request the server received."""

    path: str
    range: str | None
    if_range: str | None
    proxied: bool
    status: int = 0
    sent: int = 0


@dataclass
class _Switches:
    range_support: bool = True
    status: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses to answer, in turn
    cut_after: int | None = None  # close the connection after this many body bytes...
    cuts: int = 0  # ...for this many more requests
    stall_after: int | None = None  # stop sending after this many bytes...
    stall_seconds: float = 0.0  # ...for this long


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        request = Request(parts.path, self.headers.get("Range"), self.headers.get("If-Range"), bool(parts.scheme))
        self.server.owner.requests.append(request)
        switches = self.server.owner.switches
        queued = switches.status.get(parts.path)
        if queued:
            request.status = queued.pop(0)
            self.send_error(request.status)
            return
        body = self.server.owner.files.get(parts.path)
        if body is None:
            request.status = 404
            self.send_error(404)
            return
        start = self._range_start(request, len(body))
        self._send_body(request, body, start, switches)

    def _range_start(self, request: Request, size: int) -> int:
        etag = self.server.owner.etag
        if not (self.server.owner.switches.range_support and request.range and request.range.startswith("bytes=")):
            return 0
        if request.if_range is not None and request.if_range != etag:
            return 0
        start = int(request.range.removeprefix("bytes=").split("-")[0])
        return start if start < size else 0

    def _send_body(self, request: Request, body: bytes, start: int, switches: _Switches) -> None:
        request.status = 206 if start else 200
        self.send_response(request.status)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", self.server.owner.etag)
        self.send_header("Accept-Ranges", "bytes" if switches.range_support else "none")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        limit = len(body)
        if switches.cuts > 0 and switches.cut_after is not None:
            switches.cuts -= 1
            limit = min(limit, start + switches.cut_after)
            self.close_connection = True
        position = start
        try:
            while position < limit:
                if switches.stall_after is not None and position - start >= switches.stall_after:
                    time.sleep(switches.stall_seconds)
                    switches.stall_after = None
                chunk = body[position : min(position + 16384, limit)]
                self.wfile.write(chunk)
                self.wfile.flush()
                position += len(chunk)
                request.sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ModelServer


class ModelServer:
    """``with ModelServer() as server: server.files["/m.zip"] = data; url = server.url("/m.zip")``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.switches = _Switches()
        self.etag = '"gasa-test-1"'
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
