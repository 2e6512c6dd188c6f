import { get, projectPath } from "../api.js";
import { h, replace, table, time } from "../dom.js";
import { heading, noProject } from "./common.js";

export const title = "Audit log";
const PAGE = 100;

/** @type {import("../app.js").Page} */
export async function render(main, ctx) {
  if (!ctx.project) return noProject(main, title);
  const kind = ctx.query.get("kind") || "";
  const before = ctx.query.get("before_id") || "";
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (kind) params.set("kind", kind);
  if (before) params.set("before_id", before);
  /** @type {any[]} */
  const rows = await get(projectPath(ctx.project, `/audit?${params}`));
  const kindInput = h("input", { id: "audit-kind", name: "kind", value: kind, placeholder: "config., workflow., approval" });
  const next = new URLSearchParams(kind ? { kind } : {});
  if (rows.length) next.set("before_id", String(rows[rows.length - 1].id));
  replace(
    main,
    heading(title, "Every change made through the API, every approval and every workflow step, newest first."),
    h(
      "form",
      {
        class: "filters",
        on: {
          submit: (/** @type {Event} */ e) => {
            e.preventDefault();
            const value = /** @type {HTMLInputElement} */ (kindInput).value;
            location.hash = `#/audit${value ? `?kind=${encodeURIComponent(value)}` : ""}`;
          },
        },
      },
      h("label", { for: "audit-kind" }, "Kind or its prefix"),
      kindInput,
      h("button", { type: "submit" }, "Filter"),
    ),
    table(
      ["When", "Actor", "Kind", "Subject", "Detail"],
      rows.map((r) => [time(r.at), r.actor, r.kind, r.subject, h("code", {}, JSON.stringify(r.detail))]),
      "Audit log",
    ),
    h("nav", { class: "pager", "aria-label": "Pages" }, rows.length === PAGE ? h("a", { href: `#/audit?${next}` }, "Older") : null),
  );
}
