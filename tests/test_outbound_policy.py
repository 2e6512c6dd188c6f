"""The outbound policy: refused at configuration time from the URL's text, and at connect time
from the addresses the host name resolves to."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from pydantic import ValidationError

from tests.doubles.agent import AgentServer
from vigil.errors import DeliveryError
from vigil.outbound import post
from vigil.outbound_policy import OutboundPolicy, OutboundRefused, outbound_client
from vigil.settings import OutboundSettings

LIMITS = httpx.Limits(max_connections=4)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local or cloud metadata address"),
        ("http://169.254.170.2/v2/credentials", "link-local or cloud metadata address"),
        ("http://[fd00:ec2::254]/latest", "link-local or cloud metadata address"),
        ("http://[fe80::1]/", "link-local or cloud metadata address"),
        ("http://[::ffff:169.254.169.254]/", "link-local or cloud metadata address"),
        ("http://100.100.100.200/latest/meta-data", "link-local or cloud metadata address"),
        ("http://2852039166/", "link-local or cloud metadata address"),  # 169.254.169.254 as a number
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("http://METADATA.google.internal./", "cloud metadata service"),
        ("http://127.0.0.1:8080/api/v1/projects", "Vigil's own listening ports"),
        ("http://localhost:4318/v1/logs", "Vigil's own listening ports"),
        ("http://127.1:8080/", "Vigil's own listening ports"),
        ("http://0.0.0.0:8080/", "Vigil's own listening ports"),
        ("http://[::1]:4318/", "Vigil's own listening ports"),
    ],
)
def test_refused_at_configuration_time(url: str, reason: str) -> None:
    policy = OutboundPolicy(own_ports={8080, 4318})
    with pytest.raises(OutboundRefused, match=reason):
        policy.check_url(url)


@pytest.mark.parametrize(
    "url",
    ["https://agent.example.com/process", "http://127.0.0.1:9000/process", "http://10.1.2.3:8080/x"],
)
def test_ordinary_destinations_pass(url: str) -> None:
    OutboundPolicy(own_ports={8080, 4318}).check_url(url)


def test_allow_and_deny_lists() -> None:
    settings = OutboundSettings(
        allow=["169.254.10.0/24", "metadata-proxy.internal"],
        deny=["*.evil.example", "10.0.0.0/8", "fd00::/8"],
    )
    policy = OutboundPolicy(settings)
    policy.check_url("http://169.254.10.7/")  # allowed link-local subnet
    policy.check_url("http://metadata-proxy.internal/")
    for url in ("http://x.evil.example/", "http://10.9.9.9/", "http://[fd00::5]/"):
        with pytest.raises(OutboundRefused, match="deny list"):
            policy.check_url(url)
    with pytest.raises(OutboundRefused, match="metadata"):
        policy.check_url("http://169.254.169.254/")


def test_only_allowed() -> None:
    by_name = OutboundPolicy(OutboundSettings(only_allowed=True, allow=["*.corp.example"]))
    by_name.check_url("https://agent.corp.example/")
    with pytest.raises(OutboundRefused, match="not on the outbound allow list"):
        by_name.check_url("https://agent.example.com/")
    by_network = OutboundPolicy(OutboundSettings(only_allowed=True, allow=["192.0.2.0/24"]))
    by_network.check_url("https://agent.example.com/")  # its addresses are checked at delivery
    with pytest.raises(OutboundRefused, match="not on the outbound allow list"):
        by_network.check_url("http://198.51.100.1/")


@pytest.mark.parametrize("entry", ["", "bad/pattern", "host:80", "a b", "*"])
def test_bad_patterns_are_refused_in_settings(entry: str) -> None:
    with pytest.raises(ValidationError):
        OutboundSettings(deny=[entry])


async def test_connections_are_checked_after_resolution() -> None:
    async with AgentServer() as agent:
        permitted = outbound_client(OutboundPolicy(), LIMITS)
        # `localhost` and `127.1` are only names here: the resolver turns them into 127.0.0.1
        own_port = outbound_client(OutboundPolicy(own_ports={agent.port}), LIMITS)
        denied = outbound_client(OutboundPolicy(OutboundSettings(deny=["127.0.0.0/8"])), LIMITS)
        try:
            assert (
                await permitted.post(f"http://localhost:{agent.port}/process", json=[])
            ).status_code == 200
            for name in ("localhost", "127.1"):
                with pytest.raises(OutboundRefused, match=r"resolved to 127\.0\.0\.1.*Vigil's own"):
                    await own_port.post(f"http://{name}:{agent.port}/process", json=[])
            with pytest.raises(OutboundRefused, match="deny list"):
                await denied.post(f"{agent.base_url}/process", json=[])
            assert len(agent.requests) == 1
        finally:
            for client in (permitted, own_port, denied):
                await client.aclose()


async def test_a_refused_delivery_is_final_and_names_the_rule() -> None:
    async with AgentServer() as agent:
        client = outbound_client(OutboundPolicy(own_ports={agent.port}), LIMITS)
        try:
            with pytest.raises(DeliveryError) as info:
                await post(
                    client,
                    f"http://user:pw@localhost:{agent.port}/process?token=t0ken",
                    content=b"[]",
                    headers={},
                    timeout_s=5,
                    target="agent test",
                )
        finally:
            await client.aclose()
        assert not info.value.retryable
        assert "refused by the outbound policy" in str(info.value)
        assert "Vigil's own listening ports" in str(info.value)
        assert agent.requests == []


def test_an_allowed_network_must_hold_every_address_a_name_resolves_to() -> None:
    policy = OutboundPolicy(OutboundSettings(allow=["169.254.10.0/24"]))
    inside, metadata = ipaddress.ip_address("169.254.10.7"), ipaddress.ip_address("169.254.169.254")
    policy.check("agent.internal", 80, [inside])
    with pytest.raises(OutboundRefused, match="metadata"):
        policy.check("agent.internal", 80, [inside, metadata])
