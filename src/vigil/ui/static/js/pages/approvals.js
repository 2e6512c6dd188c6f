import { get } from "../api.js";
import { age, h, replace, table } from "../dom.js";
import { button, heading } from "./common.js";
import { decisionForm } from "./incident_forms.js";

export const title = "Approvals";

/** @param {string} iso */
function expiry(iso) {
  const left = (new Date(iso).getTime() - Date.now()) / 1000;
  if (left <= 0) return "expired";
  return left < 120 ? `in ${Math.round(left)} s` : `in ${Math.round(left / 60)} min`;
}

/** @type {ReturnType<typeof setInterval> | undefined} */
let timer;

/** @type {import("../app.js").Page} */
export async function render(main, ctx) {
  clearInterval(timer);
  const names = new Map(ctx.projects.map((p) => [p.id, p.name]));
  /** @type {any[]} */
  const waiting = await get("/api/v1/approvals?status=pending");
  const open = (/** @type {any} */ a) => {
    ctx.project = a.project_id;
    localStorage.setItem("vigil.project", a.project_id);
  };
  const answer = h("div", { class: "answer-slot" });
  /** @param {any} a */
  const answerForm = (a) => {
    replace(answer, decisionForm(a.project_id, a, () => render(main, ctx)));
    answer.querySelector("input")?.focus();
  };
  replace(
    main,
    heading(title, "Actions waiting for a person's answer, across projects, with when each expires."),
    table(
      ["Incident", "Project", "Runbook", "Plan", "Requested", "Expires", "Answer"],
      waiting.map((a) => [
        h("a", { href: `#/incident/${encodeURIComponent(a.incident_id)}`, on: { click: () => open(a) } }, a.incident_id),
        names.get(a.project_id) || a.project_id,
        a.runbook_id || "—",
        (a.plan?.steps || []).join("; "),
        `${age(a.requested_at)} ago`,
        h("time", { datetime: a.expires_at }, expiry(a.expires_at)),
        button(`Answer for ${a.incident_id}`, () => answerForm(a)),
      ]),
      "Approvals waiting",
    ),
    answer,
  );
  timer = setInterval(() => {
    main.querySelectorAll("td time").forEach((el) => {
      el.textContent = expiry(el.getAttribute("datetime") || "");
    });
  }, 5000);
  return () => clearInterval(timer);
}
