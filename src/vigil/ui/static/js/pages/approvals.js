import { get } from "../api.js";
import { age, h, replace, table } from "../dom.js";
import { heading } from "./common.js";

export const title = "Approvals";

/** @param {string} iso */
function expiry(iso) {
  const left = (new Date(iso).getTime() - Date.now()) / 1000;
  if (left <= 0) return "expired";
  return left < 120 ? `in ${Math.round(left)} s` : `in ${Math.round(left / 60)} min`;
}

/** @type {import("../app.js").Page} */
export async function render(main, ctx) {
  const names = new Map(ctx.projects.map((p) => [p.id, p.name]));
  /** @type {any[]} */
  const waiting = await get("/api/v1/approvals?status=pending");
  const open = (/** @type {any} */ a) => {
    ctx.project = a.project_id;
    localStorage.setItem("vigil.project", a.project_id);
  };
  replace(
    main,
    heading(title, "Actions waiting for a person's answer, across projects, with when each expires."),
    table(
      ["Incident", "Project", "Runbook", "Plan", "Requested", "Expires"],
      waiting.map((a) => [
        h("a", { href: `#/incident/${encodeURIComponent(a.incident_id)}`, on: { click: () => open(a) } }, a.incident_id),
        names.get(a.project_id) || a.project_id,
        a.runbook_id || "—",
        (a.plan?.steps || []).join("; "),
        `${age(a.requested_at)} ago`,
        h("time", { datetime: a.expires_at }, expiry(a.expires_at)),
      ]),
      "Approvals waiting",
    ),
  );
  const timer = setInterval(() => {
    main.querySelectorAll("td time").forEach((el) => {
      el.textContent = expiry(el.getAttribute("datetime") || "");
    });
  }, 5000);
  return () => clearInterval(timer);
}
