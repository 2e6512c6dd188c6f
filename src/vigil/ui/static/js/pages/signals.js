// A detector signal: what it measured, its window statistics against the baseline (a chart over
// the archived windows), and its evidence.

import { lineChart } from "../charts.js";
import { badge, h, table, time } from "../dom.js";

/** The baseline metric a signal kind is about. @param {string} kind */
function metricOf(kind) {
  if (kind === "error_rate_spike") return "error_rate";
  if (kind === "latency_regression" || kind === "slow_endpoint") return "p95_ms";
  if (kind === "slow_query") return "query_max_ms";
  if (kind === "high_frequency_query") return "query_max_count";
  if (kind === "n_plus_one") return "max_per_trace";
  return "count";
}

/** @param {any} signal @param {any[]} documents newest first */
export function signalView(signal, documents) {
  const windows = [...documents].reverse();
  const metric = metricOf(signal.kind);
  const labels = windows.map((d) => new Date(d.signal.window_start * 1000).toLocaleTimeString());
  const chart = windows.length
    ? lineChart({
        title: `${signal.kind}: the window's value against the threshold and the baseline`,
        labels,
        series: [
          { name: "window", values: windows.map((d) => d.signal.value) },
          { name: "threshold", values: windows.map((d) => d.signal.threshold), dashed: true, color: "#be123c" },
          { name: `baseline ${metric}`, values: windows.map((d) => d.evidence?.baseline?.metrics?.[metric]?.value ?? null), color: "#047857" },
        ],
      })
    : null;
  const evidence = signal.evidence || {};
  const stats = evidence.stats;
  return h(
    "article",
    { class: "signal", id: `signal-${signal.fingerprint}` },
    h("h3", {}, signal.title, " ", badge(signal.severity)),
    h("p", {}, `${signal.kind} in ${signal.service}${signal.endpoint ? ` ${signal.endpoint}` : ""}: value ${signal.value} against threshold ${signal.threshold}; window `, time(signal.window_start), "."),
    chart,
    stats
      ? table(
          ["Requests", "Errors", "p50 ms", "p95 ms", "p99 ms"],
          [[stats.count, stats.errors, stats.p50_ms ?? "—", stats.p95_ms ?? "—", stats.p99_ms ?? "—"]],
          "The window's statistics",
        )
      : null,
    evidence.samples?.length
      ? h(
          "details",
          {},
          h("summary", {}, `Sample requests (${evidence.samples.length})`),
          h("pre", { tabindex: "0" }, JSON.stringify(evidence.samples.slice(0, 20), null, 2)),
        )
      : null,
    evidence.records?.length
      ? h("details", {}, h("summary", {}, `Records (${evidence.records.length})`), h("pre", { tabindex: "0" }, JSON.stringify(evidence.records.slice(0, 20), null, 2)))
      : null,
    evidence.template ? h("p", {}, "Template: ", h("code", {}, evidence.template)) : null,
    evidence.trace_ids?.length ? h("p", {}, `Traces: ${evidence.trace_ids.slice(0, 10).join(", ")}`) : null,
  );
}
