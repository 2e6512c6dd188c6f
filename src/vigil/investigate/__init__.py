"""Investigation: each project's recent records, the bounded tools an investigation uses, and the
citations that let Vigil show later what an answer was based on.

The entry point, for the analysis engines and the workflow's investigation step::

    from vigil.investigate.context import investigate_context
    from vigil.investigate.tools import ToolContext

    ctx = ToolContext.build(store, settings.investigate, recent=runtime.recent,
                            evidence=runtime.evidence, budget=token_budget)
    found: InvestigationContext = await investigate_context(ctx, project_id, incident_body)
    found.results       # ToolResult per call: counts first, bounded samples, a `query:` citation
    found.citations()   # every citation, each resolvable by GET .../citations/{id}
    found.summary()     # compact text (counts, samples, citation ids) for a prompt
    found.brief()       # counts and citation ids per call, small enough for a workflow's context
    await ctx.aclose()

`investigate_context(ctx, project_id, incident, *, incident_key=None, now=None)` runs, in a fixed
order: the error records of each of the incident's services around its time and the records of
its trace ids (`recent_records`), the templates those records and signals name (`templates`), the
incident's `signals`, then what is configured outside: PromQL ranges per service
(`prometheus_range`), the service's log stream (`loki_query`), and its pods, rollout history and the
namespace's events (`kubernetes`). A failing tool is noted in `errors`; a spent token budget stops
the run (`budget_exhausted`).

One tool at a time: `await run_tool(ctx, name, project_id, args, incident_key=...)` with a name of
`TOOLS` (recent_records, templates, signals, incidents, evidence, replays, prometheus_query,
prometheus_range, loki_query, elasticsearch_search, kubernetes). Every result is redacted, bounded
(`max_lines`, `max_bytes`, a `grep` on the redacted text, counts before samples), stored as a
citation, and counted against the incident's token budget.

Modules: `window` (the recent records: the router's tap, the bounded shelves, queries), `records`
(query and answer models), `citations` (the citation table and `resolve`), `tools/` (one module
per tool, `run_tool` in its package), `context` (`investigate_context`).
"""
