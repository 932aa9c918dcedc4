"""Posting webhook deliveries, in a sandbox's own event loop or in a sender process of its own (both sandboxes).

A platform's delivery service (TikTok's, Shopify's) is not slowed down by the platform's API traffic. A sandbox
serving fifty orders a second and the API calls they cause keeps its event loop busy, and a delivery sent from that
loop is sent and timed late: the receiver's answer waits in the socket until the loop gets round to it. The
standalone sandboxes (``python -m shopbridge.sandbox.cli tiktok|shopify``, which the demo and the benchmarks run)
therefore post from a process that does nothing else, so the time recorded for each attempt is the receiver's and
the network's. The outbox, retries and history stay in the sandbox; only the HTTP exchange moves.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import signal
import time
from contextlib import suppress
from multiprocessing.connection import Connection
from typing import Any

import httpx

Outcome = dict[str, Any]  # {"status_code": int} or {"error": exception name}, plus "response_ms"


async def post_once(client: httpx.AsyncClient, address: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """One attempt: the answer's status (or the transport error's name) and how long the receiver took."""
    outcome: Outcome = {}
    started = time.perf_counter()
    try:
        response = await client.post(address, content=body, headers=headers)
        outcome["status_code"] = response.status_code
    except httpx.HTTPError as exc:
        outcome["error"] = type(exc).__name__
    outcome["response_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return outcome


class SenderProcess:
    """A child process that posts what it is given and reports each outcome. ``post`` is awaited in the
    sandbox's event loop; the child's answers arrive through a pipe watched by that loop."""

    def __init__(self, *, timeout: float, name: str = "sandbox-webhook-sender") -> None:
        self.timeout = timeout
        self.name = name
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._waiting: dict[int, asyncio.Future[Outcome]] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs, self.timeout), daemon=True, name=self.name)
        self._process.start()
        theirs.close()
        self._conn = ours

    async def post(self, address: str, body: bytes, headers: dict[str, str]) -> Outcome:
        conn = self._conn
        if conn is None:
            raise RuntimeError("the webhook sender process is not running")
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            loop.add_reader(conn.fileno(), self._collect)
        request_id = next(self._ids)
        future: asyncio.Future[Outcome] = loop.create_future()
        self._waiting[request_id] = future
        conn.send((request_id, address, body, headers))
        return await future

    def _collect(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            while conn.poll():
                request_id, outcome = conn.recv()
                future = self._waiting.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result(outcome)
        except (EOFError, OSError):
            self._fail_waiting("the webhook sender process stopped")

    def _fail_waiting(self, reason: str) -> None:
        if self._loop is not None and self._conn is not None:
            with suppress(ValueError, OSError):
                self._loop.remove_reader(self._conn.fileno())
            self._loop = None
        for future in self._waiting.values():
            if not future.done():
                future.set_result({"error": "SenderStopped", "detail": reason, "response_ms": 0.0})
        self._waiting.clear()

    def stop(self) -> None:
        self._fail_waiting("the sandbox is stopping")
        if self._conn is not None:
            with suppress(OSError):
                self._conn.send(None)
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(5)
            if self._process.is_alive():
                self._process.terminate()
            self._process = None


def _serve(conn: Connection, timeout: float) -> None:
    """The child: post each delivery as it arrives (no limit here: the sandbox's gate bounds what is in flight).
    Ctrl-C reaches the whole process group; the sandbox stops this process itself (or its pipe closes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve_async(conn, timeout))


async def _serve_async(conn: Connection, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    posting: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(timeout=timeout) as client:

        async def post(request_id: int, address: str, body: bytes, headers: dict[str, str]) -> None:
            outcome = await post_once(client, address, body, headers)
            with suppress(OSError):
                conn.send((request_id, outcome))

        def readable() -> None:
            try:
                while conn.poll():
                    message = conn.recv()
                    if message is None:
                        stopped.set()
                        return
                    task = loop.create_task(post(*message))
                    posting.add(task)
                    task.add_done_callback(posting.discard)
            except (EOFError, OSError):
                stopped.set()

        loop.add_reader(conn.fileno(), readable)
        await stopped.wait()
        loop.remove_reader(conn.fileno())
        for task in list(posting):
            task.cancel()
