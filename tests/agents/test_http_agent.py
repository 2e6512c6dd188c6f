"""An HTTP agent's requests carry the agent protocol's headers, batch after batch."""

from __future__ import annotations

import orjson

from tests.doubles.agent import AgentServer
from vigil import __version__
from vigil.agents.http import HttpAgent
from vigil.outbound import Outbound
from vigil.specs import AgentSpec

BATCH = orjson.dumps([{"body": "card declined"}])


async def test_each_batch_carries_its_own_ids_and_attempt_besides_the_configured_headers() -> None:
    client = Outbound()
    try:
        async with AgentServer() as agent:
            spec = AgentSpec(
                endpoint=agent.url,
                headers={
                    "Authorization": "Bearer s3cret",
                    "x-request-id": "configured",
                    "content-type": "text/plain",
                },
            )
            http_agent = HttpAgent(spec, client)
            await http_agent.send("p-1", "r-1", BATCH, 1)
            await http_agent.send("p-2", "r-2", BATCH, 2)
            first, second = agent.requests
    finally:
        await client.aclose()
    assert first.body == BATCH
    assert first.header("authorization") == "Bearer s3cret"
    # Vigil's own headers win over configured ones of the same name, and are sent once
    assert first.header("x-request-id") == "r-1" and first.header("content-type") == "application/json"
    assert first.header("x-project-id") == "p-1" and first.header("x-vigil-attempt") == "1"
    assert first.header("user-agent") == f"vigil/{__version__}"
    # what one batch set does not leak into the next
    assert second.header("x-request-id") == "r-2" and second.header("x-project-id") == "p-2"
    assert second.header("x-vigil-attempt") == "2" and second.header("authorization") == "Bearer s3cret"
