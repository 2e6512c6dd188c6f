"""The HTTP action against a real local server, and the outbound URL check."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest

from tests.actions.conftest import MakeContext, policy_for
from tests.doubles._server import LocalServer, Reply
from vigil.actions import ActionRefused, ActionStep, check_outbound_url, execute, inverse, plan


class OpsEndpoint(LocalServer):
    """An ops team's endpoint: answers 202 with a small JSON body."""

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        return (202, b'{"queued": true}', {"content-type": "application/json"}), None


@pytest.fixture
async def ops() -> AsyncIterator[OpsEndpoint]:
    async with OpsEndpoint() as server:
        yield server


def call(url: str, **params: object) -> ActionStep:
    return ActionStep(action="http.request", params={"url": url, **params})


def live(*prefixes: str, **extra: object) -> dict[str, object]:
    return {"enabled": True, "dry_run": False, "url_prefixes": list(prefixes)} | extra


async def test_the_call_carries_the_idempotency_key_and_its_body(
    ops: OpsEndpoint, make_context: MakeContext
) -> None:
    step = call(
        f"{ops.base_url}/hooks/flush-cache?token=s3cret",
        json_body={"service": "checkout"},
        headers={"Authorization": "Bearer hook-secret"},
    )
    async with make_context(policy_for(http=live(f"{ops.base_url}/hooks/"))) as ctx:
        dry = await plan(step, ctx)
        assert ops.requests == []
        done = await execute(step, ctx, "incident-9/step-3")
        await execute(step, ctx, "incident-9/step-3")
    [first, second] = ops.requests
    assert first.header("idempotency-key") == second.header("idempotency-key") == "incident-9/step-3"
    assert first.header("authorization") == "Bearer hook-secret"
    assert first.json() == {"service": "checkout"}
    assert (first.method, first.path, first.query) == ("POST", "/hooks/flush-cache", "token=s3cret")
    assert dry.description == (
        f"send POST {ops.base_url}/hooks/flush-cache with an Idempotency-Key, headers ['Authorization'], "
        "a JSON body of 22 bytes"
    )
    assert (done.status, done.details) == ("done", {"status": 202, "body": '{"queued": true}'})
    assert done.description == f"POST {ops.base_url}/hooks/flush-cache: HTTP 202"
    for text in (dry.model_dump_json(), done.model_dump_json()):
        assert "s3cret" not in text
        assert "hook-secret" not in text
    assert inverse(step, done) is None


async def test_failures_are_classified_by_status(ops: OpsEndpoint, make_context: MakeContext) -> None:
    async with make_context(policy_for(http=live(ops.base_url))) as ctx:
        ops.fail_next(1, 503)
        unavailable = await execute(call(f"{ops.base_url}/x"), ctx, "k1")
        ops.fail_next(1, 404)
        missing = await execute(call(f"{ops.base_url}/x"), ctx, "k2")
        unexpected = await execute(call(f"{ops.base_url}/x", expect_status=[200]), ctx, "k3")
        ops.delay_next(1, seconds=1.0)
        slow = await execute(call(f"{ops.base_url}/x", timeout_s=0.2), ctx, "k4")
    assert (unavailable.status, unavailable.retryable) == ("failed", True)
    assert (missing.status, missing.retryable) == ("failed", False)
    assert unexpected.description == f"POST {ops.base_url}/x: HTTP 202, expected [200]"
    assert (slow.status, slow.retryable, slow.description) == (
        "failed",
        True,
        f"http: POST {ops.base_url}/x: no answer within 0.2s",
    )


async def test_urls_outside_the_prefixes_and_dry_runs_send_nothing(
    ops: OpsEndpoint, make_context: MakeContext
) -> None:
    async with make_context(policy_for(http=live(f"{ops.base_url}/hooks/"))) as ctx:
        with pytest.raises(ActionRefused) as refused:
            await execute(call(f"{ops.base_url}/admin"), ctx, "k1")
    async with make_context(policy_for(http=live(ops.base_url, dry_run=True))) as ctx:
        dry = await execute(call(f"{ops.base_url}/hooks/x"), ctx, "k2")
    assert refused.value.message.startswith(f"URL {ops.base_url}/admin is not allowed")
    assert dry.status == "dry_run"
    assert ops.requests == []


async def test_the_metadata_address_is_refused_even_when_allowed(make_context: MakeContext) -> None:
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    async with make_context(policy_for(http=live("http://169.254.169.254/"))) as ctx:
        with pytest.raises(ActionRefused) as refused:
            await execute(call(metadata, method="GET"), ctx, "k1")
    assert refused.value.message == (
        "URL http://169.254.169.254/latest/meta-data/iam/security-credentials/ is refused: "
        "169.254.169.254 resolves to the link-local address 169.254.169.254"
    )


def test_check_outbound_url() -> None:
    check_outbound_url("http://127.0.0.1:9/x")
    check_outbound_url("http://no-such-host.invalid/")  # names are checked where they are resolved
    for refused in (
        "ftp://example.com/x",
        "http://[fe80::1]/",
        "http://169.254.1.1/",
        "http://[::ffff:169.254.169.254]/",
        "file:///etc/passwd",
    ):
        with pytest.raises(ActionRefused):
            check_outbound_url(refused)


async def test_a_name_that_does_not_resolve_fails_the_call_and_may_be_retried(make_context: MakeContext) -> None:
    url = "http://no-such-host.invalid/hook"
    async with make_context(policy_for(http=live("http://no-such-host.invalid/"))) as ctx:
        result = await execute(call(url), ctx, "k-unresolved")
    assert (result.status, result.retryable) == ("failed", True)
    assert "no-such-host.invalid" in result.description
