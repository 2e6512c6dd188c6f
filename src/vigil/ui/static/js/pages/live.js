import { get, projectPath, stream } from "../api.js";
import { h, replace, time } from "../dom.js";
import { heading, noProject } from "./common.js";

export const title = "Live";

const KINDS = /** @type {const} */ (["record", "batch", "output", "dead_letter"]);
const LABELS = { record: "Records", batch: "Batches", output: "Outputs", dead_letter: "Dead letters" };
const KEEP = 300;

/** @param {string} kind @param {any} data @returns {{kind: string, at: string, title: string, detail: any}} */
function entry(kind, data) {
  if (kind === "record")
    return { kind, at: data.at, title: `${data.resourceAttributes?.["service.name"] || data.resource?.["service.name"] || data.service || "record"}: ${data.body ?? ""}`, detail: data };
  if (kind === "batch")
    return {
      kind,
      at: data.updated_at,
      title: `batch ${data.request_id} to ${data.pipeline}: ${data.status} (${data.record_count} records${data.represented > data.record_count ? `, ${data.represented} received` : ""})`,
      detail: data,
    };
  if (kind === "output")
    return { kind, at: data.received_at, title: `output for ${data.request_id}: ${data.payload?.summary ?? JSON.stringify(data.payload).slice(0, 120)}`, detail: data.payload };
  return { kind, at: data.created_at, title: `dead letter (${data.kind} to ${data.target}): ${data.error}`, detail: data };
}

/** @type {import("../app.js").Page} */
export async function render(main, ctx) {
  if (!ctx.project) return noProject(main, title);
  const project = ctx.project;
  /** @type {ReturnType<typeof entry>[]} */
  const items = [];
  const shown = new Set(KINDS);
  const text = h("input", { type: "search", id: "live-filter", placeholder: "service, pipeline, text…" });
  const list = h("ol", { class: "feed", "aria-label": "Live events, newest first" });
  const status = h("p", { class: "hint", role: "status" }, "Connecting…");
  const draw = () => {
    const needle = /** @type {HTMLInputElement} */ (text).value.toLowerCase();
    replace(
      list,
      items
        .filter((i) => shown.has(/** @type {any} */ (i.kind)) && (!needle || i.title.toLowerCase().includes(needle)))
        .slice(0, 200)
        .map((i) =>
          h(
            "li",
            { class: `feed-item ${i.kind}`, "data-kind": i.kind },
            h("span", { class: `badge ${i.kind === "batch" && i.detail.status === "dead" ? "dead_letter" : i.kind}` }, LABELS[/** @type {keyof LABELS} */ (i.kind)]),
            " ",
            time(i.at),
            h("details", {}, h("summary", {}, i.title), h("pre", {}, JSON.stringify(i.detail, null, 2))),
          ),
        ),
    );
  };
  /** @param {string} kind @param {any} data */
  const add = (kind, data) => {
    items.unshift(entry(kind, data));
    if (items.length > KEEP) items.length = KEEP;
  };
  text.addEventListener("input", draw);
  const filters = h(
    "fieldset",
    { class: "filters" },
    h("legend", {}, "Show"),
    KINDS.map((kind) => {
      const box = h("input", { type: "checkbox", id: `show-${kind}`, checked: true });
      box.addEventListener("change", () => {
        if (/** @type {HTMLInputElement} */ (box).checked) shown.add(kind);
        else shown.delete(kind);
        draw();
      });
      return h("span", { class: "check" }, box, h("label", { for: `show-${kind}` }, LABELS[kind]));
    }),
    h("span", { class: "field" }, h("label", { for: "live-filter" }, "Filter"), text),
  );
  replace(main, heading(title, "Records, delivered batches, agent outputs and dead letters as they happen."), filters, status, list);
  const [batches, outputs, letters] = await Promise.all([
    get(projectPath(project, "/batches?limit=20&records=true")),
    get(projectPath(project, "/outputs?limit=20&batch=false")),
    get(projectPath(project, "/dead-letters?limit=20")),
  ]);
  for (const b of [...batches].reverse()) {
    for (const record of (b.records || []).slice(0, 20)) add("record", { ...record, at: b.created_at });
    add("batch", b);
  }
  for (const o of [...outputs].reverse()) add("output", o);
  for (const d of letters) add("dead_letter", d);
  items.sort((a, b) => String(b.at).localeCompare(String(a.at)));
  draw();
  // from the newest thing shown, by the server's clock (without one, the server's now)
  const newest = items.map((i) => String(i.at)).sort().at(-1);
  const close = stream(projectPath(project, `/live${newest ? `?since=${encodeURIComponent(newest)}` : ""}`), {
    batch: (data) => {
      if (data.status === "pending" || data.attempts <= 1) {
        for (const record of data.records || []) add("record", { ...record, at: data.created_at });
      }
      add("batch", data);
      draw();
    },
    output: (data) => {
      add("output", data);
      draw();
    },
    dead_letter: (data) => {
      add("dead_letter", data);
      draw();
    },
  });
  status.textContent = "Live: new events appear at the top.";
  return close;
}
