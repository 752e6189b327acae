"""Broken networks for the agent's failover tests (review of issue #27).

``MuteBroker`` accepts TCP and never answers (a hung cluster node: stopped, without quorum);
``FreezableProxy`` forwards to a broker until ``freeze()`` silently stops its current
connections (a node gone without a RST: a half-open link).
"""

from __future__ import annotations

import select
import socket
import threading

POLL_S = 0.2


class MuteBroker:
    """A TCP listener that accepts every connection and never sends a byte (no CONNACK)."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(POLL_S)
        self.port = int(self._server.getsockname()[1])
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="mute-broker", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            self._held.append(conn)
            self.accepted += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self._server.close()


class FreezableProxy:
    """A TCP proxy to a broker; ``freeze()`` stops forwarding on its current connections
    without closing them, new connections are forwarded."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(POLL_S)
        self.port = int(self._server.getsockname()[1])
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._frozen: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, name="proxy", daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            pair = (conn, socket.create_connection(("127.0.0.1", self._target)))
            with self._lock:
                self._pairs.append(pair)
            pump = threading.Thread(target=self._pump, args=(pair,), name="proxy", daemon=True)
            self._threads.append(pump)
            pump.start()

    def _pump(self, pair: tuple[socket.socket, socket.socket]) -> None:
        a, b = pair
        while not self._stop.is_set():
            ready, _, _ = select.select([a, b], [], [], POLL_S)
            with self._lock:
                if id(pair) in self._frozen:
                    return  # both ends stay open, nothing passes: a half-open link
            for end in ready:
                data = end.recv(65536)
                if not data:
                    return
                (b if end is a else a).sendall(data)

    def freeze(self) -> None:
        with self._lock:
            self._frozen.update(id(pair) for pair in self._pairs)

    def close(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join()
        for a, b in self._pairs:
            a.close()
            b.close()
        self._server.close()
