"""The DogStatsD exporter's own socket: one connected socket per exporter, and an honest answer per datagram.

A send either delivers a datagram to the consumer's socket or raises :class:`SendError` with the
reason it did not, so that the exporter can keep the delta baseline of what was lost. The ``datadog``
client cannot give that answer: its ``flush()`` returns ``None`` and logs a failed send.

Transports, chosen by the URL (as ``DD_DOGSTATSD_URL`` spells them):

- ``udp://host:port``: a connected UDP socket. After each datagram the socket's pending error
  (``SO_ERROR``) is read and cleared: a datagram to a closed port draws an ICMP "port unreachable",
  which Linux reports there as ``ECONNREFUSED`` by the time ``send`` returns on the same host.
- ``unixgram:///path``: a Unix datagram socket. While the consumer's receive queue is full a send
  waits for room until the export's deadline, then fails (``EAGAIN``).
- ``unixstream:///path``: a Unix stream socket; each datagram travels as a 4-byte little-endian
  length followed by the payload, the framing the DataDog Agent and the ``datadog`` client use.
- ``unix:///path``: datagram, or stream if the socket at that path is a stream socket.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from typing import Any
from urllib.parse import urlsplit

__all__ = ["DogStatsdSocket", "SendError"]

_MIN_SEND_BUFFER = 32 * 1024
"""Send buffers are raised to this size, as the ``datadog`` client does (macOS defaults to 4 KiB)."""

_FULL = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS})
_GONE = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ENOENT})


SEND_REASONS = ("unreachable", "refused", "buffer_full", "disconnected", "too_large", "send_failed")
"""Every reason a :class:`SendError` can give."""


class SendError(Exception):
    """A datagram was not delivered; ``reason`` names why, for ``tradetel.export.failures``.

    Reasons: ``unreachable`` (no socket could be opened), ``refused`` (nothing listens: a closed UDP
    port, a Unix socket whose receiver is gone), ``buffer_full`` (the consumer's queue stayed full
    until the deadline), ``disconnected`` (a stream connection broke), ``too_large`` (``EMSGSIZE``:
    larger than the socket accepts) and ``send_failed`` (any other error).
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError) or exc.errno in _FULL:
        return "buffer_full"
    if exc.errno == errno.ECONNREFUSED:
        return "refused"
    if exc.errno == errno.EMSGSIZE:
        return "too_large"
    if exc.errno in _GONE:
        return "disconnected"
    return "send_failed"


class DogStatsdSocket:
    """A connected socket to one DogStatsD consumer, opened on first use and reopened after a failure.

    Example::

        sock = DogStatsdSocket("udp://127.0.0.1:8125")
        sock.send(b"trading.orders.filled:1|c\\n", deadline=time.monotonic() + 1)
        sock.close()
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme
        self._host = parts.hostname or "localhost"
        self._port = parts.port or 8125
        self._path = parts.path
        self._sock: socket.socket | None = None
        self.stream = False

    @property
    def udp(self) -> bool:
        return self.scheme == "udp"

    def open(self) -> socket.socket:
        """The connected socket, connecting now if needed; raises :class:`SendError` (``unreachable``) if it cannot."""
        sock = self._sock
        if sock is not None:
            return sock
        try:
            sock = self._sock = self._connect()
        except OSError as exc:
            raise SendError("unreachable", f"DogStatsD at {self.url}: {exc}") from None
        return sock

    def _connect(self) -> socket.socket:
        if self.udp:
            infos = socket.getaddrinfo(self._host, self._port, 0, socket.SOCK_DGRAM)
            infos.sort(key=lambda info: info[0] != socket.AF_INET)  # IPv4 first, like the datadog client
            error: OSError = OSError(errno.EADDRNOTAVAIL, "no address")
            for family, kind, proto, _, address in infos:
                try:
                    return self._ready(socket.socket(family, kind, proto), address)
                except OSError as exc:
                    error = exc
            raise error
        kinds = {"unixgram": [socket.SOCK_DGRAM], "unixstream": [socket.SOCK_STREAM]}
        for kind in kinds.get(self.scheme, [socket.SOCK_DGRAM, socket.SOCK_STREAM]):
            try:
                sock = self._ready(socket.socket(socket.AF_UNIX, kind), self._path)
            except OSError as exc:
                if exc.errno == errno.EPROTOTYPE and kind == socket.SOCK_DGRAM and self.scheme == "unix":
                    continue  # a stream socket at that path
                raise
            self.stream = kind == socket.SOCK_STREAM
            return sock
        raise OSError(errno.EPROTOTYPE, "no usable socket kind")

    @staticmethod
    def _ready(sock: socket.socket, address: str | tuple[Any, ...]) -> socket.socket:
        try:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < _MIN_SEND_BUFFER:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _MIN_SEND_BUFFER)
            sock.settimeout(0.0)  # a Unix socket whose receiver's queue is full must not block connect
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        return sock

    def send(self, payload: bytes, deadline: float) -> None:
        """Deliver one datagram, waiting for room until ``deadline`` (``time.monotonic()``), or raise.

        Raises :class:`SendError` when the datagram was not delivered. After an error that leaves the
        connection unusable (the receiver is gone, a stream broke mid-frame) the socket is closed, and
        the next send connects again.
        """
        sock = self.open()
        try:
            # A timeout of 0 makes the socket non-blocking: a full queue fails at once with EAGAIN.
            sock.settimeout(max(deadline - time.monotonic(), 0.0))
            if self.stream:
                sock.sendall(struct.pack("<I", len(payload)) + payload)
            else:
                sock.send(payload)
            if self.udp:
                pending = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if pending:
                    raise OSError(pending, os.strerror(pending) + " (reported right after the send)")
        except OSError as exc:
            reason = _reason(exc)
            if self.stream or (reason in ("refused", "disconnected") and not self.udp):
                self.close()  # a half-sent frame, or a receiver that is gone: connect afresh next time
            raise SendError(reason, f"DogStatsD send to {self.url} failed: {exc}") from None

    def close(self) -> None:
        """Close the socket; the next send connects again."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
