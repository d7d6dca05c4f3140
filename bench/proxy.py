"""A loopback TCP proxy for the bench and the sync test suite: counts every byte both ways, and can
cut every connection (a mobile link dropping) or refuse new ones (a link that is down)."""

from __future__ import annotations

import contextlib
import socket
import threading


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.bytes_up = 0  # client -> broker
        self.bytes_down = 0  # broker -> client
        self.connections = 0
        self.refusing = False
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="proxy", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def total(self) -> int:
        return self.bytes_up + self.bytes_down

    def start(self) -> Proxy:
        self._thread.start()
        return self

    def cut(self) -> int:
        """Drop every open connection at once; returns how many there were."""
        with self._lock:
            socks, self._open = self._open, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        return len(socks) // 2

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._thread.join(2)
        self.listener.close()

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for s in (client, upstream):  # forward each write as it comes, as a router would
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open += [client, upstream]
                self.connections += 1
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, up), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                with self._lock:
                    if up:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def main() -> None:
    """`python bench/proxy.py PORT`: a proxy in its own process (so that it takes no
    time from the measured one); prints its port, then "up down" byte counts for each line
    read on stdin, until stdin closes."""
    import sys

    with Proxy(int(sys.argv[1])) as proxy:
        print(proxy.port, flush=True)
        for _ in sys.stdin:
            print(proxy.bytes_up, proxy.bytes_down, flush=True)


if __name__ == "__main__":
    main()
