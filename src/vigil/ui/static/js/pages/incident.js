import { get, projectPath, stream } from "../api.js";
import { age, badge, h, replace, section, table, time } from "../dom.js";
import { heading, noProject } from "./common.js";
import { decisionForm, feedbackForm } from "./incident_forms.js";
import { signalView } from "./signals.js";

export const title = "Incident";

/** @param {any} step */
const stepItem = (step) =>
  h(
    "li",
    { class: `step ${step.status}` },
    h("strong", {}, step.step),
    " ",
    badge(step.status, "step"),
    " ",
    time(step.at || step.started_at),
    step.summary ? h("span", { class: "step-summary" }, ` ${typeof step.summary === "string" ? step.summary : JSON.stringify(step.summary)}`) : null,
  );

/** @param {any} analysis */
function analysisView(analysis) {
  if (!analysis) return h("p", {}, "No analysis yet.");
  return h(
    "div",
    {},
    h("p", {}, analysis.summary, ` (confidence ${Math.round((analysis.confidence || 0) * 100)} %, engine ${analysis.engine})`),
    analysis.citations?.length
      ? h(
          "p",
          {},
          "Citations: ",
          analysis.citations.map((/** @type {any} */ c, /** @type {number} */ n) => [
            n ? ", " : "",
            c.kind === "signal"
              ? h("a", { href: `#signal-${c.fingerprint || String(c.id).replace(/^signal:/, "")}` }, c.label || c.id)
              : h("span", { title: c.id }, c.label ? `${c.kind}: ${c.label}` : `${c.kind} ${c.id || c.fingerprint || ""}`),
          ]),
        )
      : null,
  );
}

/** The plan's actions, each as its description. @param {any} plan */
function planView(plan) {
  const actions = Array.isArray(plan) ? plan : Array.isArray(plan?.steps) ? plan.steps : null;
  if (!actions) return h("pre", { tabindex: "0" }, JSON.stringify(plan, null, 2));
  return h(
    "ol",
    {},
    actions.map((/** @type {any} */ a) =>
      h("li", {}, typeof a === "string" ? a : a.description || `${a.action} ${a.target || ""}`, a.refused ? ` (refused: ${a.refused})` : ""),
    ),
  );
}

/** @param {any} workflow @param {HTMLElement} steps */
function workflowView(workflow, steps) {
  const ticket = workflow.ticket;
  return section(
    `Workflow ${workflow.title || workflow.id}`,
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Status"),
      h("dd", { class: "workflow-status" }, badge(workflow.status, "step")),
      h("dt", {}, "Tier"),
      h("dd", {}, workflow.tier || "—"),
      h("dt", {}, "Runbook"),
      h("dd", {}, workflow.runbook_id ? h("a", { href: `#/runbooks/${encodeURIComponent(workflow.runbook_id)}` }, workflow.runbook_id) : "—"),
      h("dt", {}, "Ticket"),
      h("dd", {}, ticket?.url && /^https?:\/\//.test(ticket.url) ? h("a", { href: ticket.url, rel: "noopener noreferrer", target: "_blank" }, ticket.key || ticket.url) : ticket?.key || "none"),
      h("dt", {}, "Outcome"),
      h("dd", { class: "workflow-outcome" }, workflow.outcome || "—"),
    ),
    h("h3", {}, "Analysis"),
    analysisView(workflow.analysis),
    workflow.plan ? [h("h3", {}, "Plan"), planView(workflow.plan)] : null,
    h("h3", {}, "Steps"),
    steps,
  );
}

/** @type {import("../app.js").Page} */
export async function render(main, ctx) {
  if (!ctx.project) return noProject(main, title);
  const project = ctx.project;
  const id = ctx.params[0];
  const base = projectPath(project, `/incidents/${encodeURIComponent(id)}`);
  const [incident, workflows, approvals] = await Promise.all([
    get(`${base}?evidence_limit=20`),
    get(projectPath(project, `/workflows?incident_id=${encodeURIComponent(id)}`)),
    get(projectPath(project, "/approvals?status=pending")),
  ]);
  const details = await Promise.all(
    workflows.map((/** @type {any} */ w) => get(projectPath(project, `/workflows/${encodeURIComponent(w.id)}`))),
  );
  /** @type {Map<string, {steps: HTMLElement, view: HTMLElement}>} */
  const shown = new Map();
  const workflowsSlot = h("div", { class: "workflows" });
  /** @param {any} w the workflow in full; its steps come from the stream, which replays them all */
  const show = (w) => {
    const steps = h("ol", { class: "steps", "aria-label": "Steps, as they happen" });
    const view = workflowView(w, steps);
    shown.set(w.id, { steps, view });
    workflowsSlot.appendChild(view);
  };
  details.forEach(show);
  /** @param {string} workflowId */
  const refresh = async (workflowId) => {
    const w = await get(projectPath(project, `/workflows/${encodeURIComponent(workflowId)}`));
    const known = shown.get(workflowId);
    if (!known) return show(w);
    replace(/** @type {HTMLElement} */ (known.view.querySelector(".workflow-status")), badge(w.status, "step"));
    replace(/** @type {HTMLElement} */ (known.view.querySelector(".workflow-outcome")), w.outcome || "—");
  };
  const pending = approvals.filter((/** @type {any} */ a) => a.incident_id === id);
  /** @param {string} approvalId */
  const decided = (approvalId) => document.getElementById(`approval-${approvalId}`)?.remove();
  replace(
    main,
    heading(incident.title || id),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Status"),
      h("dd", {}, badge(incident.status)),
      h("dt", {}, "Severity"),
      h("dd", {}, badge(incident.severity)),
      h("dt", {}, "Services"),
      h("dd", {}, (incident.services || []).join(", ") || "—"),
      h("dt", {}, "Opened"),
      h("dd", {}, time(incident.opened_at), ` (${age(incident.opened_at)} ago)`),
      h("dt", {}, "Confirmed by replay"),
      h("dd", {}, incident.confirmation ? (incident.confirmation.confirmed ? "yes" : "no") : "not replayed"),
    ),
    pending.map((/** @type {any} */ a) => decisionForm(project, a, () => decided(a.id))),
    workflowsSlot,
    section(
      "Timeline",
      h(
        "ol",
        { class: "timeline" },
        (incident.timeline || []).map((/** @type {any} */ t) => h("li", {}, time(t.at), " ", h("strong", {}, t.event), t.detail ? ` ${t.detail}` : "")),
      ),
    ),
    section(
      "Signals",
      (incident.signals || []).length
        ? (incident.signals || []).map((/** @type {any} */ s) => signalView(s, incident.evidence?.[s.fingerprint] || []))
        : h("p", {}, "This incident came from an alert: it has no signals of the detector."),
    ),
    incident.alerts?.length ? section("Alerts", table(["Alert", "Status"], incident.alerts.map((/** @type {any} */ a) => [JSON.stringify(a.labels || a), a.status || ""]), "Alerts")) : null,
    feedbackForm(project, id),
  );
  const close = stream(`${base}/stream`, {
    step: async (event) => {
      const known = shown.get(event.workflow_id);
      if (!known) return refresh(event.workflow_id);
      known.steps.appendChild(stepItem(event));
      if (event.step === "approval" && event.status !== "pending") pending.filter((/** @type {any} */ a) => a.workflow_id === event.workflow_id).forEach((/** @type {any} */ a) => decided(a.id));
      await refresh(event.workflow_id);
    },
  });
  return close;
}
