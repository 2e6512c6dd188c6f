import { get, projectPath } from "../api.js";
import { age, badge, h, replace, table } from "../dom.js";
import { heading, noProject } from "./common.js";

export const title = "Incidents";
const PAGE = 50;

/** @type {import("../app.js").Page} */
export async function render(main, ctx) {
  if (!ctx.project) return noProject(main, title);
  const project = ctx.project;
  const status = ctx.query.get("status") || "";
  const before = ctx.query.get("before") || "";
  const beforeId = ctx.query.get("before_id") || "";
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (status) params.set("status", status);
  if (before) params.set("before", before);
  if (before && beforeId) params.set("before_id", beforeId);
  /** @type {any[]} */
  const rows = await get(projectPath(project, `/incidents?${params}`));
  const choose = h(
    "select",
    {
      id: "status-filter",
      on: {
        change: (/** @type {Event} */ e) => {
          const value = /** @type {HTMLSelectElement} */ (e.target).value;
          location.hash = `#/incidents${value ? `?status=${value}` : ""}`;
        },
      },
    },
    [["", "all"], ["open", "open"], ["resolved", "resolved"]].map(([v, label]) => h("option", { value: v, selected: v === status }, label)),
  );
  const next = new URLSearchParams();
  if (status) next.set("status", status);
  if (rows.length) {
    next.set("before", rows[rows.length - 1].page.before);
    next.set("before_id", rows[rows.length - 1].page.before_id);
  }
  replace(
    main,
    heading(title, "Most recently updated first."),
    h("div", { class: "filters" }, h("label", { for: "status-filter" }, "Status"), choose),
    table(
      ["Incident", "Status", "Severity", "Services", "Age", "Updated"],
      rows.map((i) => [
        h("a", { href: `#/incident/${encodeURIComponent(i.id)}` }, i.title || i.id),
        badge(i.status),
        badge(i.severity),
        (i.services || []).join(", "),
        age(i.opened_at),
        `${age(i.updated_at)} ago`,
      ]),
      "Incidents",
    ),
    h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      before ? h("a", { href: `#/incidents${status ? `?status=${status}` : ""}` }, "Newest") : null,
      rows.length === PAGE ? h("a", { href: `#/incidents?${next}` }, "Older") : null,
    ),
  );
}
