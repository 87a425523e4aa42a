"""A scriptable HTTP server on loopback, the far end of the ``http`` instructions that
end-to-end tests and the fault campaign (``bench/faults``) drive."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[[int, dict], tuple[int, object, float]]


class FarEnd:
    """A scriptable HTTP server: ``route(path, handler)`` where the handler gets the call
    number (1-based) and the request (method, headers, body) and returns (status, json, delay).
    """

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.calls: Counter[str] = Counter()
        self.requests: dict[str, list[dict]] = defaultdict(list)
        self.lock = threading.Lock()
        far = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                path = self.path.split("?")[0]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                with far.lock:
                    far.calls[path] += 1
                    number = far.calls[path]
                    request = {"method": self.command, "headers": dict(self.headers),
                               "body": body}
                    far.requests[path].append(request)
                handler = far.routes.get(path, lambda n, r: (404, {"error": "no route"}, 0))
                status, payload, delay = handler(number, request)
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller is gone (a killed worker): nothing to answer

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
