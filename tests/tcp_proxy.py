"""TcpProxy: a threaded TCP relay that can stop forwarding, to play a network partition.

``freeze()`` stops moving bytes in both directions but keeps every socket open, which is what
a lost host or a middlebox that swallows traffic looks like from both ends: writes succeed
(the proxy's kernel still acknowledges them), reads wait forever, and neither TCP keepalives
nor ``tcp_user_timeout`` notice anything. Only application-level deadlines (the lease check)
and server-side idleness (``idle_session_timeout``) can. ``thaw()`` heals the partition;
``close()`` tears every connection down.

Used by the fault tests (tests/faults/test_lost_host.py) and the fault benchmark
(bench/fault_storm.py), so both play exactly the same partition.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

_CHUNK = 65536
_POLL = 0.1  # how often a waiting thread looks whether the proxy was closed


class TcpProxy:
    """Listens on 127.0.0.1:<free port> and relays each connection to ``target``."""

    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.connections = 0  # accepted so far, for tests that want to see traffic
        self._acceptor = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._acceptor.start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def frozen(self) -> bool:
        return not self._flowing.is_set()

    def url_for(self, database_url: str) -> str:
        """``database_url`` with its host and port replaced by this proxy's."""
        head, _, tail = database_url.rpartition("@")
        _, _, path = tail.partition("/")
        return f"{head}@127.0.0.1:{self.port}/{path}"

    def freeze(self) -> None:
        """Stop forwarding in both directions; sockets stay open and nobody reads them."""
        self._flowing.clear()

    def thaw(self) -> None:
        """Forward again: bytes held back during the freeze flow on, as after a partition."""
        self._flowing.set()

    def close(self) -> None:
        """Stop listening and end every relayed connection (both ends see a reset or EOF)."""
        self._closed.set()
        self._flowing.set()  # wake the waiting threads, which then see _closed
        with self._lock:
            sockets = [self._listener, *self._sockets]
            self._sockets.clear()
        for sock in sockets:
            # shutdown wakes a thread blocked in recv on it; close alone might not
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self._acceptor.join(5)

    # -- relaying ----------------------------------------------------------------------------

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._closed.is_set():
                return False
            self._sockets.add(sock)
            return True

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._track(client):
                client.close()
                return
            self.connections += 1
            threading.Thread(
                target=self._open, args=(client,), name="tcp-proxy-conn", daemon=True
            ).start()

    def _wait_flowing(self) -> bool:
        """Block while frozen; False once the proxy is closed."""
        while not self._flowing.wait(_POLL):
            if self._closed.is_set():
                return False
        return not self._closed.is_set()

    def _open(self, client: socket.socket) -> None:
        # a connection accepted during a freeze reaches the server only after the thaw
        if not self._wait_flowing():
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            with contextlib.suppress(OSError):
                client.close()
            return
        upstream.settimeout(None)
        if not self._track(upstream):
            upstream.close()
            return
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(
                target=self._pump, args=(source, sink), name="tcp-proxy-pump", daemon=True
            ).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                if not self._wait_flowing():
                    return
                data = source.recv(_CHUNK)
                if not data:
                    break
                # a chunk read just before a freeze is held here, not delivered
                if not self._wait_flowing():
                    return
                sink.sendall(data)
        except OSError:
            pass
        # one side finished: pass the end on, so the other side sees it too; the other
        # pump then ends on its own and closes its source in turn
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self._sockets.discard(source)
        with contextlib.suppress(OSError):
            source.close()
