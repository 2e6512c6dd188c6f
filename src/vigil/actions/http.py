"""`http.request`: one HTTP call to a URL the project allows, sent with an `Idempotency-Key` header.

Idempotency is the receiver's: the key is the step's idempotency key, the same on every attempt, so
a receiver that honours `Idempotency-Key` acts once. There is no current state to read and no inverse.
Header values never appear in descriptions or results (they often hold tokens), nor does the query.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

import orjson

from vigil.actions.base import ActionError, ActionName, ActionRefused, ActionResult, ActionStep, DryRun
from vigil.actions.context import ActionContext
from vigil.actions.params import HttpRequestParams
from vigil.actions.policy import shown_url
from vigil.errors import DeliveryError
from vigil.outbound import is_retryable_status

__all__ = ["HttpRequest", "check_outbound_url"]

LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
"""Link-local addresses: the clouds' metadata services (169.254.169.254) live there."""


def check_outbound_url(url: str) -> None:
    """Refuse a URL that is not http(s), or whose host is a link-local (metadata) address. A host
    name is checked where it is resolved, by the outbound client's connection (`vigil.outbound`):
    every address it resolves to, against the outbound policy (link-local and metadata addresses
    refused), with no second lookup here."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ActionRefused(f"URL {shown_url(url)} is refused: only http(s) URLs with a host")
    try:
        address = ipaddress.ip_address(parts.hostname.split("%")[0])
    except ValueError:
        return
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in LINK_LOCAL):
        raise ActionRefused(
            f"URL {shown_url(url)} is refused: {parts.hostname} resolves to the link-local address {address}"
        )


class HttpRequest:
    name: ActionName = "http.request"

    async def plan(self, step: ActionStep, ctx: ActionContext) -> DryRun:
        params = step.typed(HttpRequestParams)
        return DryRun(
            action=self.name,
            target=shown_url(params.url),
            description=_describe(params),
            refused=ctx.policy.http.url_refusal(params.url),
        )

    async def execute(self, step: ActionStep, ctx: ActionContext, idempotency_key: str) -> ActionResult:
        params = step.typed(HttpRequestParams)
        target = shown_url(params.url)
        ctx.policy.require(ctx.policy.http.url_refusal(params.url))
        if ctx.policy.dry_run("http"):
            return ActionResult.from_dry_run(await self.plan(step, ctx), idempotency_key)
        result = {"action": self.name, "target": target, "idempotency_key": idempotency_key}
        try:
            check_outbound_url(params.url)
            status, snippet = await _send(ctx, params, idempotency_key)
        except ActionError as exc:
            return ActionResult.from_error(step, target, idempotency_key, exc)
        details = {"status": status, "body": snippet}
        wanted = status in params.expect_status if params.expect_status else 200 <= status < 300
        if wanted:
            description = f"{params.method} {target}: HTTP {status}"
            return ActionResult(**result, status="done", description=description, details=details)
        expected = params.expect_status or "2xx"
        return ActionResult(
            **result,
            status="failed",
            description=f"{params.method} {target}: HTTP {status}, expected {expected}",
            details=details,
            retryable=is_retryable_status(status),
        )


async def _send(ctx: ActionContext, params: HttpRequestParams, key: str) -> tuple[int, str]:
    try:
        status, head = await ctx.http.request(
            params.method,
            params.url,
            headers={**params.headers, "Idempotency-Key": key},
            timeout_s=params.timeout_s,
            target=f"http: {params.method} {shown_url(params.url)}",
            json_body=params.json_body,
        )
    except DeliveryError as exc:
        raise ActionError(str(exc), retryable=exc.retryable) from None
    return status, head.decode("utf-8", "replace")


def _describe(params: HttpRequestParams) -> str:
    sent = f", headers {sorted(params.headers)}" if params.headers else ""
    body = (
        f", a JSON body of {len(orjson.dumps(params.json_body))} bytes"
        if params.json_body is not None
        else ""
    )
    return f"send {params.method} {shown_url(params.url)} with an Idempotency-Key{sent}{body}"
