"""The HTTP server component: serves, dates its answers, and stops when asked."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from vigil.http_server import HttpServer


async def test_answers_carry_a_date_and_the_server_stops_when_asked() -> None:
    app = Starlette(routes=[Route("/", lambda _: PlainTextResponse("ok"))])
    server = HttpServer(app, host="127.0.0.1", port=0, name="test")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            answer = await client.get("/")
        assert answer.text == "ok"
        assert parsedate_to_datetime(answer.headers["date"]).year >= 2024
    finally:
        await server.shutdown()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        try:
            await client.get("/")
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("the server still answers after its shutdown")
