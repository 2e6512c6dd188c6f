import { get, projectPath } from "../api.js";
import { lineChart, short } from "../charts.js";
import { h, replace, section, table } from "../dom.js";
import { heading, noProject } from "./common.js";

export const title = "Overview";

/** @param {string} iso */
const hour = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/** @type {import("../app.js").Page} */
export async function render(main, ctx) {
  if (!ctx.project) return noProject(main, title);
  const project = ctx.project;
  const [series, usage, perProject] = await Promise.all([
    get(projectPath(project, "/timeseries?hours=24&buckets=24")),
    get(projectPath(project, "/llm-usage")),
    Promise.all(
      ctx.projects.map(async (p) => {
        const stats = await get(projectPath(p.id, "/stats"));
        return { project: p, stats, open: stats.open_incidents ?? 0 };
      }),
    ),
  ]);
  /** @type {any[]} */
  const rows = series.buckets;
  const labels = rows.map((r) => hour(r.at));
  const total = (/** @type {string} */ key) => rows.reduce((sum, r) => sum + (r[key] || 0), 0);
  const name = ctx.projects.find((p) => p.id === project)?.name || project;
  const tiles = [
    ["Records (24 h)", short(total("records"))],
    ["Batches delivered", short(total("delivered"))],
    ["Saved by deduplication", short(total("deduplicated"))],
    ["Outputs", short(total("outputs"))],
    ["Open incidents", String(rows.at(-1)?.open_incidents ?? 0)],
    usage.configured ? ["Tokens today", short(usage.tokens_today)] : ["Tokens today (no LLM configured)", "—"],
  ];
  replace(
    main,
    heading(title, `The last 24 hours of ${name}, by hour.`),
    h(
      "ul",
      { class: "tiles", "aria-label": "Totals" },
      tiles.map(([label, value]) => h("li", {}, h("span", { class: "tile-value" }, value), h("span", {}, label))),
    ),
    h(
      "div",
      { class: "charts" },
      lineChart({
        title: "Throughput (records and delivered batches per hour)",
        labels,
        series: [
          { name: "records", values: rows.map((r) => r.records) },
          { name: "batches delivered", values: rows.map((r) => r.delivered) },
        ],
      }),
      lineChart({
        title: "Delivery latency (ms)",
        labels,
        unit: " ms",
        series: [
          { name: "p50", values: rows.map((r) => r.latency_ms_p50) },
          { name: "p95", values: rows.map((r) => r.latency_ms_p95), dashed: true },
        ],
      }),
      lineChart({
        title: "Deduplication savings (records folded)",
        labels,
        series: [{ name: "records saved", values: rows.map((r) => r.deduplicated) }],
      }),
      lineChart({
        title: "Open incidents",
        labels,
        series: [{ name: "open", values: rows.map((r) => r.open_incidents), color: "#be123c" }],
      }),
      lineChart({
        title: "Token spend per day (LLM engine)",
        labels: series.tokens_by_day.map((/** @type {any} */ d) => d.day.slice(5)),
        series: [{ name: "tokens", values: series.tokens_by_day.map((/** @type {any} */ d) => d.tokens), color: "#7c3aed" }],
      }),
      lineChart({
        title: "Agent outputs and dead letters",
        labels,
        series: [
          { name: "outputs", values: rows.map((r) => r.outputs) },
          { name: "dead letters", values: rows.map((r) => r.dead_letters), color: "#be123c", dashed: true },
        ],
      }),
    ),
    usage.configured
      ? section(
          "Token spend",
          h(
            "p",
            {},
            `${short(usage.tokens_today)} tokens today`,
            usage.tokens_per_day ? ` of ${short(usage.tokens_per_day)} (${short(usage.remaining_today)} left)` : "",
            `; the budget resets at ${new Date(usage.resets_at).toLocaleString()}.`,
          ),
          table(
            ["Incident", "Today", "Total"],
            Object.entries(usage.incidents || {}).map(([id, u]) => [
              h("a", { href: `#/incident/${encodeURIComponent(id)}` }, id),
              short(/** @type {any} */ (u).tokens_today),
              short(/** @type {any} */ (u).tokens_total),
            ]),
            "Tokens by incident",
          ),
        )
      : null,
    section(
      "Per project",
      table(
        ["Project", "Delivered batches", "Outputs", "Dead letters", "Open incidents"],
        perProject.map(({ project: p, stats, open }) => [
          p.name,
          short(stats.batches.delivered?.batches || 0),
          short(stats.outputs),
          short(stats.dead_letters),
          String(open),
        ]),
        "Totals per project",
      ),
    ),
  );
}
