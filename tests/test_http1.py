"""Deliveries' POSTs on kept-alive connections, against real local servers (plain and TLS) that
answer as scripted: interim answers, answers ended by the connection's end, malformed or long
answers, servers that close idle connections, a pool at its limit, and requests that would be
split by a header."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from tests.doubles.raw_http import ScriptedServer
from vigil.http1 import Answer, AnswerError, Http1Pool
from vigil.outbound_policy import OutboundPolicy, OutboundRefused

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
BODY = b'[{"body":"card declined"}]'


def pool(policy: OutboundPolicy | None = None, **kwargs: float) -> Http1Pool:
    return Http1Pool(policy or OutboundPolicy(), max_connections=int(kwargs.pop("most", 8)), **kwargs)


async def post(
    client: Http1Pool, url: URL, headers: dict[str, str] | None = None, timeout_s: float = 5
) -> Answer:
    return await client.post(
        url, BODY, headers or {"X-Request-ID": "r-1"}, timeout_s=timeout_s, limit=16, drain=1024
    )


async def test_the_request_is_framed_once_and_a_connection_is_kept_for_the_next() -> None:
    client = pool()
    try:
        async with ScriptedServer(OK) as server:
            for _ in range(3):
                answer = await post(client, server.url())
                assert (answer.status, answer.head) == (200, b"ok")
    finally:
        client.close()
    assert server.connections == 1 and len(server.requests) == 3
    head, body = server.requests[0].split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /process?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}".encode() in lines
    assert f"Content-Length: {len(BODY)}".encode() in lines and b"X-Request-ID: r-1" in lines
    assert body == BODY


async def test_an_interim_answer_is_passed_over_and_the_final_one_read() -> None:
    client = pool()
    try:
        async with ScriptedServer(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + OK) as server:
            answer = await post(client, server.url())
    finally:
        client.close()
    assert (answer.status, answer.head) == (200, b"ok")


async def test_an_answer_ended_by_closing_counts_and_its_connection_goes() -> None:
    client = pool()
    try:
        closing = b"HTTP/1.0 503 Service Unavailable\r\n\r\nbusy, come back later"
        async with ScriptedServer(closing) as server:
            first = await post(client, server.url())
            second = await post(client, server.url())
    finally:
        client.close()
    # the body runs to the connection's end; the first 16 bytes are kept
    assert (first.status, first.head) == (503, b"busy, come back ")
    assert second.status == 503 and server.connections == 2


async def test_a_malformed_answer_or_none_fails_retryably_and_is_not_reused() -> None:
    client = pool()
    try:
        async with ScriptedServer(b"HTTP/1.1 abc nonsense\r\n\r\n", OK) as server:
            with pytest.raises(AnswerError, match="malformed"):
                await post(client, server.url())
            assert (await post(client, server.url())).status == 200
        async with ScriptedServer(None) as server:
            with pytest.raises(AnswerError, match="closed before an answer"):
                await post(client, server.url())
    finally:
        client.close()


async def test_a_long_answer_is_not_read_to_its_end_and_its_connection_goes() -> None:
    client = pool()
    long = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000
    try:
        async with ScriptedServer(long, OK) as server:
            answer = await post(client, server.url())
            again = await post(client, server.url())
    finally:
        client.close()
    assert answer.status == 200 and answer.head == b"x" * 16
    assert again.head == b"ok" and server.connections == 2


async def test_no_answer_by_the_deadline_is_a_timeout_and_the_connection_goes() -> None:
    client = pool()
    try:
        async with ScriptedServer(b"") as server:  # reads the request, never answers
            with pytest.raises(TimeoutError):
                await post(client, server.url(), timeout_s=0.2)
            server.answers = [OK]
            assert (await post(client, server.url())).status == 200
    finally:
        client.close()
    assert server.connections == 2


async def test_idle_connections_are_closed_after_the_idle_time() -> None:
    client = pool(idle_s=0.2)
    try:
        async with ScriptedServer(OK) as server:
            await post(client, server.url())
            await asyncio.sleep(0.5)
            await post(client, server.url())
    finally:
        client.close()
    assert server.connections == 2


async def test_an_answer_with_connection_close_ends_its_connection() -> None:
    client = pool()
    try:
        async with ScriptedServer(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        ) as server:
            await post(client, server.url())
            await post(client, server.url())
    finally:
        client.close()
    assert server.connections == 2


async def test_a_request_on_a_kept_connection_closed_unanswered_goes_once_more_on_a_new_one() -> None:
    client = pool()
    try:
        async with ScriptedServer(OK, None, OK) as server:
            await post(client, server.url())
            answer = await post(client, server.url())  # its first connection closes unanswered
            assert answer.status == 200 and server.connections == 2 and len(server.requests) == 3
            server.answers = [None]
            fresh = pool()
            with pytest.raises(AnswerError, match="closed before an answer"):
                await post(fresh, server.url())  # a new connection closed unanswered: no repeat
            fresh.close()
    finally:
        client.close()
    assert server.connections == 3 and len(server.requests) == 4


async def test_at_most_the_pools_limit_of_exchanges_at_once() -> None:
    client = pool(most=1)
    try:
        async with ScriptedServer(OK) as server:
            answers = await asyncio.gather(*(post(client, server.url()) for _ in range(4)))
    finally:
        client.close()
    assert [a.status for a in answers] == [200] * 4 and server.connections == 1


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"X-Note": "a\r\nX-Injected: 1"}, "line break"),
        ({"X-Note": "a\nb"}, "line break"),
        ({"Bad Name": "x"}, "not a token"),
        ({"content-length": "1"}, "client's own"),
        ({"Host": "elsewhere"}, "client's own"),
    ],
)
async def test_a_header_that_would_reframe_the_request_is_refused(
    headers: dict[str, str], error: str
) -> None:
    client = pool()
    try:
        async with ScriptedServer(OK) as server:
            with pytest.raises(ValueError, match=error):
                await post(client, server.url(), headers)
    finally:
        client.close()
    assert server.requests == []


async def test_a_url_of_another_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="scheme"):
        await post(pool(), URL("ftp://127.0.0.1/x"))


async def test_credentials_in_the_url_are_sent_as_basic_authorization_not_in_the_request_line() -> None:
    client = pool()
    try:
        async with ScriptedServer(OK) as server:
            url = URL(f"http://agent:p%40ss@127.0.0.1:{server.port}/process")
            await post(client, url)
            with pytest.raises(ValueError, match="Authorization header and credentials"):
                await post(client, url, {"Authorization": "Bearer x"})
    finally:
        client.close()
    [request] = server.requests
    lines = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert lines[0] == b"POST /process HTTP/1.1" and f"Host: 127.0.0.1:{server.port}".encode() in lines
    assert b"Authorization: Basic " + base64.b64encode(b"agent:p@ss") in lines


async def test_a_name_is_checked_on_every_address_and_again_under_a_new_policy() -> None:
    policy = OutboundPolicy()
    client = pool(policy)
    try:
        async with ScriptedServer(OK) as server:
            await post(client, server.url(host="localhost"))
            policy.add_own_ports([server.port])
            with pytest.raises(OutboundRefused):
                await post(client, server.url(host="localhost"))
    finally:
        client.close()
    assert len(server.requests) == 1


def _certificates(directory: Path) -> tuple[Path, Callable[[], ssl.SSLContext]]:
    """A CA and a certificate it signed for 127.0.0.1 and localhost."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name | None,
        ca_key: ec.EllipticCurvePrivateKey,
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
        )
        if issuer is None:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("Vigil test CA", ca_key, None, ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = certificate("localhost", server_key, ca.subject, ca_key)
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    def server_context() -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        return context

    return ca_file, server_context


async def test_tls_is_verified_against_the_trust_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file, server_context = _certificates(tmp_path)
    untrusting = pool()
    try:
        async with ScriptedServer(OK, tls=server_context()) as server:
            with pytest.raises(ssl.SSLCertVerificationError):
                await post(untrusting, server.url(host="localhost"))
            monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # read when a pool makes its context
            trusting = pool()
            try:
                for host in ("localhost", "127.0.0.1"):
                    answer = await post(trusting, server.url(host=host))
                    assert (answer.status, answer.head) == (200, b"ok")
            finally:
                trusting.close()
    finally:
        untrusting.close()
    assert len(server.requests) == 2
