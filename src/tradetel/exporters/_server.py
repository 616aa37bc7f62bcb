"""The built-in ``/metrics`` server: a fixed budget of threads, connections and time.

One event-loop thread accepts connections, shakes hands (TLS), reads request heads and writes answers;
a small pool of worker threads collects and renders. A client therefore holds, at most, one connection
slot, and only for a bounded time:

- at most ``max_connections`` connections are open; when one more arrives, the oldest connection still
  sending its request is closed to make room (if every slot is answering a request, the newcomer is);
- the TLS handshake, the request line and the headers must arrive within ``head_timeout`` seconds,
  together, and fit in ``max_head_bytes``;
- writing the answer must finish within ``write_timeout`` seconds;
- ``workers`` threads render; requests beyond them wait for a free one, never a new thread.

When the process runs out of file descriptors, asyncio pauses accepting for a second instead of
spinning on ``EMFILE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ._http import Response, plain

__all__ = ["BoundedServer"]

_logger = logging.getLogger("tradetel")
Handler = Callable[[str, str, str, dict[str, str]], Response]


class _Connection:
    __slots__ = ("reading", "since", "task", "writer")

    def __init__(self, writer: asyncio.StreamWriter, task: asyncio.Task[Any] | None) -> None:
        self.writer = writer
        self.task = task
        self.reading = True
        self.since = time.monotonic()

    def abort(self) -> None:
        self.writer.transport.abort()
        if self.task is not None:
            self.task.cancel()


class BoundedServer:
    """Serves ``handler`` on an already listening socket from one event-loop thread and ``workers`` threads."""

    def __init__(
        self,
        sock: socket.socket,
        handler: Handler,
        *,
        tls: ssl.SSLContext | None,
        max_connections: int,
        workers: int,
        head_timeout: float,
        write_timeout: float,
        max_head_bytes: int = 16384,
    ) -> None:
        self._sock = sock
        self._handler = handler
        self._tls = tls
        self._max_connections = max_connections
        self._head_timeout = head_timeout
        self._write_timeout = write_timeout
        self._max_head_bytes = max_head_bytes
        self._connections: dict[_Connection, None] = {}  # insertion order = age
        self._loop = asyncio.new_event_loop()
        self._workers = _Workers(workers)
        self._loop.set_exception_handler(_quiet)
        self._server: asyncio.Server | None = None
        self._closing = False
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tradetel-prometheus", daemon=True)
        self._failure: BaseException | None = None
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            self._workers.close()
            self._loop.close()
            raise self._failure

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._accepted, sock=self._sock, limit=self._max_head_bytes, backlog=128)
            )
        except BaseException as exc:
            self._failure = exc
            return
        finally:
            self._started.set()
        self._loop.run_forever()

    async def _stop(self) -> None:
        self._closing = True
        # Stop accepting first and close the server only once accepts in flight are done: closed
        # earlier, asyncio (3.11) would fail to attach those connections and leak their sockets.
        self._loop.remove_reader(self._sock.fileno())
        this = asyncio.current_task()
        for _ in range(20):  # an accept in flight may still hand over a connection: repeat until none is left
            for connection in list(self._connections):
                connection.abort()
            tasks = [task for task in asyncio.all_tasks() if task is not this]
            if not tasks:
                break
            await asyncio.wait(tasks, timeout=0.1)
        if self._server is not None:
            self._server.close()
        for _ in range(3):  # aborted transports close their sockets in callbacks of the next iterations
            await asyncio.sleep(0)
        self._loop.stop()

    def close(self) -> None:
        """Stop accepting, drop open connections, and wait for the threads to end."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop)
            self._thread.join(timeout=5)
        self._workers.close()
        if not self._thread.is_alive():
            self._loop.close()
        self._sock.close()

    def close_in_child(self) -> None:
        """After ``os.fork``, in the child: close this process's copies of the listening and open sockets."""
        for connection in list(self._connections):
            raw = connection.writer.get_extra_info("socket")
            with contextlib.suppress(OSError, AttributeError):
                socket.socket(fileno=raw.fileno()).close()
        self._connections.clear()
        self._sock.close()

    def _admit(self, connection: _Connection) -> bool:
        if len(self._connections) >= self._max_connections:
            oldest = next((c for c in self._connections if c.reading), None)
            if oldest is None:
                return False
            del self._connections[oldest]
            oldest.abort()
        self._connections[connection] = None
        return True

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Called synchronously as the connection is made, before the transport reads: a TLS
        # ClientHello must not land in the plain stream's buffer before the handshake starts.
        _transport(writer).pause_reading()
        connection = _Connection(writer, None)
        if not self._admit(connection):
            writer.transport.abort()
            return
        connection.task = self._loop.create_task(self._serve(reader, writer, connection))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection) -> None:
        try:
            response = await self._read_and_answer(reader, writer, connection)
            if response is not None:
                writer.transport.set_write_buffer_limits(0)  # drain() then returns only once all is sent
                writer.write(_serialize(response))
                async with asyncio.timeout(self._write_timeout):
                    await writer.drain()
                writer.close()
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ssl.SSLError):
            _logger.debug("tradetel: a /metrics connection failed", exc_info=True)
        except asyncio.CancelledError:
            pass
        except Exception:
            _logger.exception("tradetel: answering a /metrics request failed")
        finally:
            writer.transport.abort()  # a no-op after a clean close; frees the slot of a stalled client at once
            self._connections.pop(connection, None)

    async def _read_and_answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection
    ) -> Response | None:
        try:
            async with asyncio.timeout(self._head_timeout):
                if self._tls is not None:
                    await writer.start_tls(self._tls)
                else:
                    _transport(writer).resume_reading()
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            connection.reading = False
            return plain(431, "request head too large\n")
        connection.reading = False
        request = _parse(head)
        if request is None:
            return plain(400, "malformed request\n")
        method, target, headers = request
        parts = urlsplit(target)
        return await self._workers.run(self._loop, self._handler, method, parts.path, parts.query, headers)


class _Workers:
    """A fixed set of daemon threads running calls for the event loop.

    Not a ``ThreadPoolExecutor``: its module-wide lock is taken around every ``os.fork``, and a
    fork while a render is queued must not wait on it.
    """

    def __init__(self, count: int) -> None:
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"tradetel-prometheus-render-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def run(
        self, loop: asyncio.AbstractEventLoop, call: Callable[..., Response], *args: Any
    ) -> asyncio.Future[Response]:
        future = loop.create_future()
        self._queue.put((loop, future, call, args))
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            loop, future, call, args = item
            try:
                outcome: tuple[Response | None, BaseException | None] = (call(*args), None)
            except BaseException as exc:
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_deliver, future, outcome)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)


def _deliver(future: asyncio.Future[Response], outcome: tuple[Response | None, BaseException | None]) -> None:
    result, exc = outcome
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)


def _transport(writer: asyncio.StreamWriter) -> asyncio.Transport:
    transport = writer.transport
    assert isinstance(transport, asyncio.Transport)  # a stream socket's transport reads and writes
    return transport


def _parse(head: bytes) -> tuple[str, str, dict[str, str]] | None:
    """Method, target and lower-cased headers of a request head, or ``None`` if it is not HTTP/1.x."""
    lines = head.decode("latin-1").split("\r\n")
    request_line = lines[0].split()
    if len(request_line) != 3 or not request_line[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            return None
        key = name.lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return request_line[0], request_line[1], headers


def _serialize(response: Response) -> bytes:
    lines = [f"HTTP/1.1 {response.status_line}", "Server: tradetel", f"Date: {email.utils.formatdate(usegmt=True)}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Accept failures (EMFILE: asyncio retries a second later) and client errors are the client's or
    # the machine's problem, not a traceback on the bot's stderr.
    _logger.debug("tradetel: /metrics server: %s", context.get("message"), exc_info=context.get("exception"))
