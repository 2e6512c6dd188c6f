"""`signals`: the detector's signals held by the project's incidents (or one incident's)."""

from __future__ import annotations

from pydantic import Field

from vigil.investigate.citations import Citation
from vigil.investigate.tools.base import Found, Sample, Tool, ToolArgs, ToolContext


class SignalsArgs(ToolArgs):
    incident_id: str | None = Field(default=None, max_length=64)
    service: str | None = Field(default=None, max_length=256)
    kind: str | None = Field(default=None, max_length=64)


class SignalsTool(Tool):
    name = "signals"
    description = "Signals the detector raised (error spikes, latency, slow queries, new error templates)."
    args = SignalsArgs

    async def gather(self, ctx: ToolContext, project_id: str, args: SignalsArgs) -> Found:
        if args.incident_id is not None:
            incidents = [await ctx.store.get_incident(project_id, args.incident_id)]
        else:
            incidents = list(await ctx.store.list_incidents(project_id, status=None, limit=200))
        seen: set[str] = set()
        found = Found()
        by_kind: dict[str, int] = {}
        for incident in incidents:
            for signal in incident.body.get("signals") or []:
                fingerprint = signal.get("fingerprint")
                if not fingerprint or fingerprint in seen:
                    continue
                if (args.service and signal.get("service") != args.service) or (
                    args.kind and signal.get("kind") != args.kind
                ):
                    continue
                seen.add(fingerprint)
                by_kind[signal.get("kind", "")] = by_kind.get(signal.get("kind", ""), 0) + 1
                title = signal.get("title") or signal.get("kind", "")
                found.samples.append(
                    Sample(
                        text=f"{signal.get('severity', '')} {signal.get('service', '')}: {title} "
                        f"(value {signal.get('value')}, threshold {signal.get('threshold')})",
                        citation=Citation.of("signal", project_id, fingerprint, title),
                        fields={"incident_id": incident.id, "kind": signal.get("kind")},
                    )
                )
        found.counts = {"signals": len(found.samples), "by_kind": by_kind, "incidents": len(incidents)}
        return found
