"""An HTTP/1.1 server written by hand, for answers no framework would give: in pieces, malformed,
interim, ended by closing, or none at all."""

from __future__ import annotations

import asyncio
import ssl

from yarl import URL

Answer = bytes | list[bytes] | None


class ScriptedServer:
    """Reads each request whole (head and Content-Length body) and writes the next scripted
    answer (the last one again once the others are used): bytes at once, a list of pieces with a
    pause between them; after an HTTP/1.0 answer it closes the connection, and `None` closes it
    instead of answering. It counts connections and keeps requests."""

    def __init__(self, *answers: Answer, tls: ssl.SSLContext | None = None, pause_s: float = 0.05) -> None:
        self.answers = list(answers)
        self.tls = tls
        self.pause_s = pause_s
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.close()

    def url(self, path: str = "/process?x=1", *, host: str = "127.0.0.1") -> URL:
        return URL(f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
                if answer is None:
                    break
                pieces = [answer] if isinstance(answer, bytes) else answer
                for number, piece in enumerate(pieces):
                    if number:
                        await asyncio.sleep(self.pause_s)
                    writer.write(piece)
                    await writer.drain()
                if pieces[0].startswith(b"HTTP/1.0"):  # its body runs to the connection's end
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
