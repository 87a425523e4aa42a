"""A TCP proxy on a loopback port that a test can stop and start: a broker "going away".

Stopping closes the listener and every proxied connection, as a broker restart does to its
clients; starting listens on the same port again. The shared broker behind it never notices.
Going silent keeps every connection open and drops what either side sends from then on: a
hung server, or a network that black-holes packets.
"""

from __future__ import annotations

import socket
import threading


class Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.silent = threading.Event()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Close the listener first, then every connection: a client reconnecting at once
        must not slip in between (``_accept`` drops what a stopped listener handed it)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
            listener, self._listener = self._listener, None
        for sock in [*([listener] if listener else []), *sockets]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                return
            with self._lock:
                stopped = self._listener is not listener
                if not stopped:
                    self._sockets += [client, upstream]
            if stopped:  # accepted as stop() ran: the broker has gone away for it too
                for sock in (client, upstream):
                    sock.close()
                return
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b, self.silent), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket, silent: threading.Event) -> None:
    try:
        while data := source.recv(65536):
            if not silent.is_set():
                sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
