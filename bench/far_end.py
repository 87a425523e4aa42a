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


class _Server(ThreadingHTTPServer):
    # The listen backlog: socketserver's default of 5 reset connections when dozens of
    # runs of one worker called at once ("Connection reset by peer").
    request_queue_size = 256
    daemon_threads = True


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

        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------- its own process


def serve(port: int, latency: float) -> None:
    """Answer every POST with ``{"ok": true}`` after ``latency`` seconds, forever: the far
    end of the ``step10`` benchmark, in a process of its own so that it takes no CPU time
    from the process that measures. Keep-alive (HTTP/1.1) and TCP_NODELAY, as a production
    server: without the latter, headers and body in two writes meet the client's delayed
    ACK and every call waits ~40 ms."""

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if latency:
                time.sleep(latency)
            data = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(("127.0.0.1", port), _Handler)
    print(f"far end listening on http://127.0.0.1:{server.server_address[1]} "
          f"latency={latency}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="a far end answering every POST")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering")
    args = parser.parse_args()
    serve(args.port, args.latency)
