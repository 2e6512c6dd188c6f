// The incident page's forms: answering an approval, and feedback on the analysis.

import { ApiError, clearErrors, post, projectPath, showErrors } from "../api.js";
import { field, h, replace, toast } from "../dom.js";
import { formError } from "./common.js";

/** @param {string} project @param {any} approval @param {() => void} done */
export function decisionForm(project, approval, done) {
  const by = h("input", { name: "by", required: true, autocomplete: "name", value: localStorage.getItem("vigil.by") || "" });
  const reason = h("textarea", { name: "reason", rows: 2, maxlength: 4000 });
  const base = projectPath(project, `/approvals/${encodeURIComponent(approval.id)}`);
  const slug = String(approval.id).replace(/[^a-zA-Z0-9_-]/g, "_");
  /** @param {"approve" | "reject"} decision */
  const decide = async (decision) => {
    clearErrors(form);
    if (!form.reportValidity()) return;
    const name = /** @type {HTMLInputElement} */ (by).value;
    localStorage.setItem("vigil.by", name);
    try {
      await post(`${base}/${decision}`, { by: name, reason: /** @type {HTMLTextAreaElement} */ (reason).value || null });
      toast(decision === "approve" ? "Approved: the workflow acts now." : "Rejected: the workflow escalates.");
      done();
    } catch (error) {
      showErrors(form, error, { by: `decision-by-${slug}`, reason: `decision-reason-${slug}` });
    }
  };
  const form = /** @type {HTMLFormElement} */ (
    h(
      "form",
      { class: "card approval", id: `approval-${approval.id}`, "aria-label": "Approval", on: { submit: (/** @type {Event} */ e) => e.preventDefault() } },
      h("h2", {}, "Waiting for approval"),
      h("p", {}, `Runbook ${approval.runbook_id || "—"}; expires `, h("time", { datetime: approval.expires_at }, new Date(approval.expires_at).toLocaleString()), "."),
      approval.plan?.steps ? h("ol", {}, approval.plan.steps.map((/** @type {any} */ s) => h("li", {}, String(s)))) : null,
      field(`decision-by-${slug}`, "Your name or email", by),
      field(`decision-reason-${slug}`, "Reason", reason),
      formError(),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", on: { click: () => decide("approve") } }, "Approve"),
        h("button", { type: "button", class: "danger", on: { click: () => decide("reject") } }, "Reject"),
      ),
    )
  );
  return form;
}

/** Feedback on what Vigil made of the incident: `POST /projects/{id}/feedback`.
 * @param {string} project @param {string} targetId */
export function feedbackForm(project, targetId) {
  const rating = h(
    "fieldset",
    { class: "rating" },
    h("legend", {}, "Rating"),
    [1, 2, 3, 4, 5].map((n) => [
      h("input", { type: "radio", name: "rating", id: `rating-${n}`, value: String(n), required: true, checked: n === 4 }),
      h("label", { for: `rating-${n}` }, String(n)),
    ]),
  );
  const helpful = h("input", { type: "checkbox", name: "helpful", checked: true });
  helpful.id = "feedback-helpful";
  const comment = h("textarea", { name: "comment", rows: 3, maxlength: 4000 });
  const result = h("p", { role: "status" });
  const form = /** @type {HTMLFormElement} */ (
    h(
      "form",
      {
        class: "card",
        "aria-label": "Feedback",
        on: {
          submit: async (/** @type {Event} */ event) => {
            event.preventDefault();
            clearErrors(form);
            const chosen = /** @type {HTMLInputElement | null} */ (form.querySelector("input[name=rating]:checked"));
            try {
              await post(projectPath(project, "/feedback"), {
                target_id: targetId,
                rating: Number(chosen?.value || 0),
                helpful: /** @type {HTMLInputElement} */ (helpful).checked,
                comment: /** @type {HTMLTextAreaElement} */ (comment).value,
              });
              replace(result, "Thank you: your feedback is recorded.");
              toast("Feedback sent.");
            } catch (error) {
              showErrors(form, error, { rating: "feedback-rating", helpful: "feedback-helpful", comment: "feedback-comment" });
              if (error instanceof ApiError && error.status === 404) replace(result, "");
            }
          },
        },
      },
      h("h2", {}, "Feedback"),
      h("p", {}, "Was Vigil's analysis of this incident right and useful?"),
      rating,
      h("p", { class: "field-error", id: "feedback-rating-error", hidden: true }),
      h("div", { class: "field check" }, helpful, h("label", { for: "feedback-helpful" }, "Helpful")),
      field("feedback-comment", "Comment", comment),
      formError(),
      h("button", { type: "submit" }, "Send feedback"),
      result,
    )
  );
  return form;
}
