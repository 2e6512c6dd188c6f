"""Batch deliveries' HTTP client against a real local agent: answers and failures are classified
as with `post`, redirects are not followed, the outbound policy is applied when connecting."""

from __future__ import annotations

import orjson
import pytest

from tests.doubles.agent import AgentServer
from tests.doubles.raw_http import ScriptedServer
from tests.process import free_port
from vigil.errors import DeliveryError
from vigil.outbound import ERROR_BODY_BYTES, Outbound
from vigil.outbound_policy import OutboundPolicy

BATCH = orjson.dumps([{"body": "card declined"}])
HEADERS = {"Content-Type": "application/json", "X-Request-ID": "r-1"}


async def test_a_2xx_delivers_with_the_headers_and_body_given() -> None:
    client = Outbound()
    try:
        async with AgentServer() as agent:
            await client.post(agent.url, content=BATCH, headers=HEADERS, timeout_s=5, target="agent")
            await client.post(agent.url, content=BATCH, headers=HEADERS, timeout_s=5, target="agent")
            [first, second] = agent.requests
    finally:
        await client.aclose()
    assert first.body == BATCH and first.header("x-request-id") == "r-1"
    assert first.header("content-type") == "application/json"
    assert second.body == BATCH


@pytest.mark.parametrize(
    ("status", "retryable"), [(503, True), (429, True), (408, True), (422, False), (302, False)]
)
async def test_failed_answers_are_classified(status: int, retryable: bool) -> None:
    client = Outbound()
    try:
        async with AgentServer() as agent:
            agent.fail_next(1, status=status, body="no thanks", headers={"location": "http://127.0.0.1:9/"})
            with pytest.raises(DeliveryError) as caught:
                await client.post(agent.url, content=BATCH, headers=HEADERS, timeout_s=5, target="agent x")
            assert len(agent.requests) == 1  # a redirect is not followed
    finally:
        await client.aclose()
    error = caught.value
    assert error.retryable is retryable and error.status == status
    assert str(error) == f"agent x: HTTP {status}: no thanks"


async def test_no_answer_in_time_and_no_listener_are_retryable() -> None:
    client = Outbound()
    try:
        async with AgentServer() as agent:
            agent.delay_next(1, seconds=2.0)
            with pytest.raises(DeliveryError) as slow:
                await client.post(agent.url, content=BATCH, headers=HEADERS, timeout_s=0.3, target="agent")
        with pytest.raises(DeliveryError) as refused:
            url = f"http://127.0.0.1:{free_port()}/process"
            await client.post(url, content=BATCH, headers=HEADERS, timeout_s=5, target="agent")
        with pytest.raises(DeliveryError) as scheme:
            await client.post(
                "ftp://127.0.0.1/x", content=BATCH, headers=HEADERS, timeout_s=5, target="agent"
            )
    finally:
        await client.aclose()
    assert slow.value.retryable and "no answer within 0.3s" in str(slow.value)
    assert refused.value.retryable
    assert not scheme.value.retryable


async def test_the_outbound_policy_is_checked_at_connect_time() -> None:
    async with AgentServer() as agent:
        client = Outbound(OutboundPolicy(own_ports={agent.port}))
        try:
            for url in (f"http://localhost:{agent.port}/process", f"http://127.0.0.1:{agent.port}/process"):
                with pytest.raises(DeliveryError) as refused:
                    await client.post(url, content=BATCH, headers=HEADERS, timeout_s=5, target="agent")
                assert not refused.value.retryable
                assert "refused by the outbound policy" in str(refused.value)
            with pytest.raises(DeliveryError) as metadata:
                url = "http://169.254.169.254/latest/meta-data/"
                await client.post(url, content=BATCH, headers=HEADERS, timeout_s=5, target="agent")
            assert "metadata" in str(metadata.value) and not metadata.value.retryable
        finally:
            await client.aclose()
        assert agent.requests == []  # nothing reached the refused destination


async def test_an_address_allowed_once_is_checked_again_when_the_policy_changes() -> None:
    async with AgentServer() as agent:
        policy = OutboundPolicy()
        client = Outbound(policy)
        url = f"http://127.0.0.1:{agent.port}/process"
        try:
            await client.post(url, content=BATCH, headers=HEADERS, timeout_s=5, target="agent")
            # the port becomes one of Vigil's own (a server of its bound it): refused from now on
            policy.add_own_ports([agent.port])
            with pytest.raises(DeliveryError) as refused:
                await client.post(url, content=BATCH, headers=HEADERS, timeout_s=5, target="agent")
        finally:
            await client.aclose()
        assert "refused by the outbound policy" in str(refused.value)
        assert len(agent.requests) == 1


def _chunked(status: str, *pieces: bytes) -> list[bytes]:
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces]
    return [f"HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n".encode(), *chunks, b"0\r\n\r\n"]


async def test_an_answer_that_arrives_in_pieces_is_read_to_its_end_or_the_cap() -> None:
    client = Outbound()
    try:
        async with ScriptedServer(
            _chunked("503 Service Unavailable", b"busy, ", b"come back later")
        ) as server:
            with pytest.raises(DeliveryError) as pieces:
                await client.post(
                    str(server.url()), content=BATCH, headers=HEADERS, timeout_s=5, target="agent"
                )
        long_body = _chunked("500 Internal Server Error", b"a" * 200, b"b" * 200, b"c" * 200)
        async with ScriptedServer(long_body) as server:
            with pytest.raises(DeliveryError) as capped:
                await client.post(
                    str(server.url()), content=BATCH, headers=HEADERS, timeout_s=5, target="agent"
                )
    finally:
        await client.aclose()
    assert str(pieces.value) == "agent: HTTP 503: busy, come back later" and pieces.value.retryable
    assert str(capped.value) == f"agent: HTTP 500: {'a' * 200}{'b' * (ERROR_BODY_BYTES - 200)}"


async def test_a_connection_is_reused_after_answers_read_whole_or_in_pieces() -> None:
    client = Outbound()
    server = ScriptedServer(_chunked("200 OK", b'{"status":', b'"ok"}'))
    try:
        async with server:
            url = str(server.url())
            for _ in range(3):
                await client.post(url, content=BATCH, headers=HEADERS, timeout_s=5, target="agent")
            server.answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
            for _ in range(3):
                await client.post(url, content=BATCH, headers=HEADERS, timeout_s=5, target="agent")
    finally:
        await client.aclose()
    assert len(server.requests) == 6 and server.connections == 1
