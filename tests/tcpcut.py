"""A TCP relay a test can cut: every connection dropped and new ones refused, as a
restarting database server does, then started again on the same address."""

from __future__ import annotations

import socket
import threading

from sqlalchemy.engine import make_url


class Cut:
    """A TCP relay to ``target`` that can drop every connection and refuse new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        assert listener is not None
        listener.shutdown(socket.SHUT_RDWR)  # (close alone does not wake a thread in accept)
        listener.close()
        for sock in self._open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            server = socket.create_connection(self.target)
            self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (a, b):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def relayed(url: str) -> tuple[str, Cut]:
    """A database URL that reaches ``url``'s server through a new, started :class:`Cut`."""
    parsed = make_url(url)
    relay = Cut((parsed.host or "127.0.0.1", parsed.port or 5432))
    relay.start()
    return parsed.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False), relay


class Balancer:
    """A TCP balancer in front of ``backends``, as a Kubernetes Service is: each new
    connection goes to the next backend that accepts it; a backend that refuses (its
    process died) is skipped.  Open connections stay with their backend."""

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.port = 0
        #: how many connections each backend was given, by port
        self.given: dict[int, int] = {}
        self._next = 0

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        self.port = listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            client, _ = listener.accept()
            server = self._connect()
            if server is None:
                client.close()
                continue
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def _connect(self) -> socket.socket | None:
        for _ in range(len(self.backends)):
            target = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                server = socket.create_connection(target, timeout=2)
            except OSError:
                continue
            server.settimeout(None)
            self.given[target[1]] = self.given.get(target[1], 0) + 1
            return server
        return None
