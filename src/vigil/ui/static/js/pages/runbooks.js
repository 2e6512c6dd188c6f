import { call, clearErrors, del, get, projectPath, showErrors } from "../api.js";
import { field, h, replace, section, table, time, toast } from "../dom.js";
import { button, formError, heading, noProject } from "./common.js";

export const title = "Runbooks";

const EXAMPLE = {
  title: "Restart checkout",
  match: { alert_labels: { alertname: "CheckoutErrors" } },
  tier: "supervised",
  steps: [{ action: "kubernetes.rollout_restart", params: { namespace: "shop", deployment: "checkout" } }],
  verify: { after_s: 60, timeout_s: 600 },
};

/** @type {import("../app.js").Page} */
export async function render(main, ctx) {
  if (!ctx.project) return noProject(main, title);
  const project = ctx.project;
  /** @type {any[]} */
  const runbooks = await get(projectPath(project, "/runbooks"));
  const chosen = ctx.params[0] ? runbooks.find((r) => r.id === ctx.params[0]) : undefined;
  replace(
    main,
    heading(title, "What a workflow may do for an incident a runbook matches, and how it checks it worked."),
    table(
      ["Runbook", "Origin", "Updated", "Actions"],
      runbooks.map((r) => [
        h("a", { href: `#/runbooks/${encodeURIComponent(r.id)}` }, r.id),
        r.origin,
        time(r.updated_at),
        button(`Delete ${r.id}`, async () => {
          if (!confirm(`Delete runbook ${r.id}?`)) return;
          await del(projectPath(project, `/runbooks/${encodeURIComponent(r.id)}`));
          location.hash = "#/runbooks";
        }, "danger"),
      ]),
      "Runbooks",
    ),
    editor(project, chosen, () => render(main, ctx)),
  );
}

/** @param {string} project @param {any} existing @param {() => void} done */
function editor(project, existing, done) {
  const id = h("input", { name: "id", required: true, value: existing?.id || "", autocomplete: "off" });
  if (existing) id.setAttribute("readonly", "");
  const text = h("textarea", { name: "spec", rows: 18, spellcheck: false, class: "code" });
  /** @type {HTMLTextAreaElement} */ (text).value = JSON.stringify(existing?.spec || EXAMPLE, null, 2);
  const form = /** @type {HTMLFormElement} */ (
    h(
      "form",
      {
        class: "card",
        "aria-label": existing ? `Edit runbook ${existing.id}` : "New runbook",
        on: {
          submit: async (/** @type {Event} */ event) => {
            event.preventDefault();
            clearErrors(form);
            const name = /** @type {HTMLInputElement} */ (id).value;
            const body = /** @type {HTMLTextAreaElement} */ (text).value;
            const yaml = !body.trim().startsWith("{");
            try {
              await call("PUT", projectPath(project, `/runbooks/${encodeURIComponent(name)}`), body, yaml ? "application/yaml" : "application/json");
              toast(`Runbook ${name} saved.`);
              location.hash = `#/runbooks/${encodeURIComponent(name)}`;
              done();
            } catch (error) {
              showErrors(form, error, { "path.runbook_id": "runbook-id", "": "runbook-spec" });
              const slot = form.querySelector("#runbook-spec-error");
              if (slot instanceof HTMLElement && error instanceof Error) {
                slot.textContent = error.message;
                slot.hidden = false;
              }
            }
          },
        },
      },
      h("h2", {}, existing ? `Runbook ${existing.id}` : "New runbook"),
      field("runbook-id", "Id", id, "Lowercase letters, digits, ., - and _."),
      field("runbook-spec", "Runbook (JSON or YAML)", text, "match, tier, steps and verify; checked when saved."),
      formError(),
      h("button", { type: "submit" }, "Save runbook"),
    )
  );
  return section(existing ? "View and edit" : "Write a runbook", form);
}
