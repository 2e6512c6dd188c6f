"""The HTTP server component: serves, dates its answers, and stops when asked."""

from __future__ import annotations

import asyncio
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


async def test_an_idle_keep_alive_connection_outlives_the_clients_idle_expiry() -> None:
    """Clients keep idle connections 5 s (httpx) to 90 s (Go): the server must not close first."""
    app = Starlette(routes=[Route("/", lambda _: PlainTextResponse("ok"))])
    server = HttpServer(app, host="127.0.0.1", port=0, name="test")
    await server.start()
    request = b"GET / HTTP/1.1\r\nHost: vigil\r\n\r\n"
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for attempt in range(2):
            if attempt:
                await asyncio.sleep(6)  # past uvicorn's own default of 5 s
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            assert await reader.readexactly(2) == b"ok"
        writer.close()
    finally:
        await server.shutdown()
