"""An HTTP server on 127.0.0.1 that keeps every POST it gets (webhook tests): ``stop()`` and
``start()`` again on the same port to be down for a while."""

from __future__ import annotations

import socket
from typing import Any

from aiohttp import web


class Receiver:
    def __init__(self, *, status: int = 204) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.status = status  # what every request is answered
        self.seen: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            self.seen.append({"headers": dict(request.headers), "body": await request.read()})
            return web.Response(status=self.status)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()
