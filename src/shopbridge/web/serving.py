"""How `shopbridge serve` listens: the hub's app on the public listener (webhooks must reach it), and with
``ops_port`` a second listener in the same process for the metrics, the API docs, health and readiness."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Iterator
from types import FrameType

import uvicorn

from shopbridge.bootstrap import Hub
from shopbridge.web.app import create_app, create_ops_app


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to ``serve_together``, which stops every listener at once (each server
    would otherwise install its own handlers over the other's)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve(hub: Hub, *, host: str, port: int, workers: int, ops_host: str, ops_port: int | None) -> None:
    if ops_port is None:
        uvicorn.run(create_app(hub, workers=workers), host=host, port=port, log_level="warning", access_log=False)
        return
    web = create_app(hub, workers=workers, separate_ops=True)
    public = _Listener(uvicorn.Config(web, host=host, port=port, log_level="warning", access_log=False))
    ops = _Listener(uvicorn.Config(create_ops_app(web), host=ops_host, port=ops_port, log_level="warning",
                                   access_log=False, lifespan="off"))  # fmt: skip
    sockets = [public.config.bind_socket(), ops.config.bind_socket()]  # both ports taken before anything starts
    with asyncio.Runner(loop_factory=public.config.get_loop_factory()) as runner:
        runner.run(serve_together([public, ops], sockets))


async def serve_together(servers: list[uvicorn.Server], sockets: list[socket.socket]) -> None:
    """Run the servers until a signal (SIGINT, SIGTERM) or one of them stops; then stop them all, gracefully (a
    second Ctrl-C forces them). The public app's lifespan (workers) ends as with a single server."""

    def stop(signum: int, _: FrameType | None) -> None:
        for server in servers:
            server.force_exit = server.should_exit and signum == signal.SIGINT
            server.should_exit = True

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        pairs = zip(servers, sockets, strict=True)
        tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in pairs]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
