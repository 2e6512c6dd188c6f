import { ApiError, clearErrors, del, get, post, projectPath, put, showErrors } from "../api.js";
import { field, h, replace, section, table, toast } from "../dom.js";
import { button, formError, heading, noProject } from "./common.js";

export const title = "Pipelines and sinks";

const PIPELINE_FIELDS = {
  "path.name": "pl-name",
  "agent.endpoint": "pl-endpoint",
  "agent.engine": "pl-engine",
  "filter.kinds": "pl-kinds",
  "filter.min_severity": "pl-severity",
  "filter.services": "pl-services",
  "batch.max_records": "pl-records",
  "batch.max_wait_ms": "pl-wait",
  dedupe: "pl-dedupe",
};
const SINK_FIELDS = {
  "webhook.url": "sink-url",
  "slack.webhook_url": "sink-url",
  url: "sink-url",
  webhook_url: "sink-url",
  "webhook.name": "sink-name",
  "slack.name": "sink-name",
  "webhook.secret": "sink-secret",
  type: "sink-type",
};

/** @param {string} label @param {string} text */
const input = (label, text = "") => h("input", { name: label, value: text, autocomplete: "off" });

/** A result of "send a test batch", shown where the button is. @param {HTMLElement} slot @param {any} answer */
function showAnswer(slot, answer) {
  replace(
    slot,
    h(
      "div",
      { class: `card answer ${answer.ok ? "ok" : "bad"}` },
      h("p", {}, h("strong", {}, answer.ok ? "Answered: " : "Failed: "), answer.message),
      answer.elapsed_ms !== undefined ? h("p", {}, `in ${answer.elapsed_ms} ms`) : null,
      answer.body ? h("pre", { tabindex: "0", "aria-label": "The answer's body" }, answer.body) : null,
    ),
  );
}

/** @param {HTMLElement} slot @param {string} path */
async function sendTest(slot, path) {
  replace(slot, h("p", {}, "Sending a test batch…"));
  try {
    showAnswer(slot, await post(path));
  } catch (error) {
    showAnswer(slot, { ok: false, message: error instanceof ApiError ? error.message : String(error) });
  }
}

/** @type {import("../app.js").Page} */
export async function render(main, ctx) {
  if (!ctx.project) return noProject(main, title);
  const project = ctx.project;
  const [pipelines, sinks] = await Promise.all([
    get(projectPath(project, "/pipelines")),
    get(projectPath(project, "/sinks")),
  ]);
  const answer = h("div", { class: "answer-slot", "aria-live": "polite" });
  const again = () => render(main, ctx);
  const pipelineRows = pipelines.map((/** @type {any} */ p) => [
    p.name,
    h("code", {}, p.spec.agent.endpoint),
    p.spec.enabled ? "enabled" : "disabled",
    p.problem ? h("span", { class: "form-error" }, p.problem) : "valid",
    h("span", { class: "actions" }, [
      button(`Send a test batch to ${p.name}`, () => sendTest(answer, projectPath(project, `/pipelines/${p.name}/test`))),
      button(`Edit ${p.name}`, () => {
        replace(/** @type {HTMLElement} */ (document.getElementById("pipeline-form")), pipelineForm(project, again, p));
        document.getElementById("pl-endpoint")?.focus();
      }),
      button(`Delete ${p.name}`, async () => {
        if (!confirm(`Delete pipeline ${p.name}?`)) return;
        await del(projectPath(project, `/pipelines/${p.name}`));
        toast(`Pipeline ${p.name} deleted.`);
        await again();
      }, "danger"),
    ]),
  ]);
  const sinkRows = sinks.map((/** @type {any} */ s) => [
    s.name || h("em", {}, "unnamed"),
    s.type,
    h("code", {}, s.spec.url || "Slack webhook (hidden)"),
    h("span", { class: "actions" }, [
      button(`Send a test output to sink ${s.name || s.id}`, () => sendTest(answer, projectPath(project, `/sinks/${s.id}/test`))),
      button(`Delete sink ${s.name || s.id}`, async () => {
        if (!confirm("Delete this sink?")) return;
        await del(projectPath(project, `/sinks/${s.id}`));
        await again();
      }, "danger"),
    ]),
  ]);
  replace(
    main,
    heading(title, "A pipeline takes a project's telemetry to an agent; sinks take the agents' outputs on."),
    section("Pipelines", table(["Name", "Agent", "State", "Spec", "Actions"], pipelineRows, "Pipelines"), answer),
    h("div", { id: "pipeline-form" }, pipelineForm(project, again)),
    section("Sinks", table(["Name", "Type", "Destination", "Actions"], sinkRows, "Sinks")),
    sinkForm(project, again),
  );
}

/** @param {string} project @param {() => Promise<void>} done @param {any} [existing] */
function pipelineForm(project, done, existing) {
  const spec = existing?.spec || {};
  const name = input("name", existing?.name || "errors");
  if (existing) name.setAttribute("readonly", "");
  const endpoint = input("endpoint", spec.agent?.endpoint || "");
  endpoint.setAttribute("placeholder", "https://agent.example.com/process or builtin:error-summary");
  const engine = h(
    "select",
    { name: "engine" },
    ["rules", "llm"].map((e) => h("option", { value: e, selected: spec.agent?.engine === e }, e)),
  );
  const kinds = input("kinds", (spec.filter?.kinds || ["log"]).join(", "));
  const severity = input("severity", spec.filter?.min_severity ?? "");
  const services = input("services", (spec.filter?.services || []).join(", "));
  const records = h("input", { name: "records", type: "number", value: spec.batch?.max_records ?? 10 });
  const wait = h("input", { name: "wait", type: "number", value: spec.batch?.max_wait_ms ?? 500 });
  const dedupe = h("input", { name: "dedupe", type: "number", value: spec.dedupe?.window_s ?? "", min: 0 });
  const enabled = h("input", { type: "checkbox", name: "enabled", checked: spec.enabled ?? true });
  const list = (/** @type {HTMLInputElement} */ el) =>
    el.value.split(",").map((x) => x.trim()).filter(Boolean);
  const value = (/** @type {HTMLElement} */ el) => /** @type {HTMLInputElement} */ (el).value;
  const form = /** @type {HTMLFormElement} */ (
    h(
      "form",
      {
        class: "card",
        "aria-label": existing ? `Edit pipeline ${existing.name}` : "Set a pipeline",
        on: {
          submit: async (/** @type {Event} */ event) => {
            event.preventDefault();
            clearErrors(form);
            const body = {
              ...spec,
              agent: { ...(spec.agent || {}), endpoint: value(endpoint), engine: value(engine) },
              filter: {
                ...(spec.filter || {}),
                kinds: list(/** @type {HTMLInputElement} */ (kinds)),
                min_severity: value(severity) === "" ? null : /^\d+$/.test(value(severity)) ? Number(value(severity)) : value(severity),
                services: list(/** @type {HTMLInputElement} */ (services)).length ? list(/** @type {HTMLInputElement} */ (services)) : null,
              },
              batch: { ...(spec.batch || {}), max_records: Number(value(records)), max_wait_ms: Number(value(wait)) },
              dedupe: value(dedupe) === "" ? null : { ...(spec.dedupe || {}), window_s: Number(value(dedupe)) },
              enabled: /** @type {HTMLInputElement} */ (enabled).checked,
            };
            try {
              await put(projectPath(project, `/pipelines/${encodeURIComponent(value(name))}`), body);
              toast(`Pipeline ${value(name)} saved.`);
              await done();
            } catch (error) {
              showErrors(form, error, PIPELINE_FIELDS);
            }
          },
        },
      },
      h("h2", {}, existing ? `Edit pipeline ${existing.name}` : "Set a pipeline"),
      h(
        "div",
        { class: "grid" },
        field("pl-name", "Name", name, "Lowercase letters, digits, - and _."),
        field("pl-endpoint", "Agent endpoint", endpoint, "An http(s) URL the batches are posted to, or builtin:<name>."),
        field("pl-engine", "Engine (built-in agents)", engine),
        field("pl-kinds", "Kinds", kinds, "log, incident or both, comma-separated."),
        field("pl-severity", "Least severity", severity, "A name (ERROR) or a number (1-24); empty takes all."),
        field("pl-services", "Services", services, "Comma-separated service.name values; empty takes all."),
        field("pl-records", "Records per batch", records, "1 to 1000."),
        field("pl-wait", "Longest wait for a batch (ms)", wait),
        field("pl-dedupe", "Deduplication window (s)", dedupe, "Empty: off, agents see every record."),
        h("div", { class: "field check" }, enabled, h("label", { for: "pl-enabled" }, "Enabled")),
      ),
      formError(),
      h("button", { type: "submit" }, "Save pipeline"),
    )
  );
  enabled.id = "pl-enabled";
  return form;
}

/** @param {string} project @param {() => Promise<void>} done */
function sinkForm(project, done) {
  const type = h("select", { name: "type" }, h("option", { value: "webhook" }, "webhook"), h("option", { value: "slack" }, "slack"));
  const name = input("name");
  const url = input("url");
  const secret = h("input", { name: "secret", type: "password", autocomplete: "new-password" });
  const value = (/** @type {HTMLElement} */ el) => /** @type {HTMLInputElement} */ (el).value;
  const form = /** @type {HTMLFormElement} */ (
    h(
      "form",
      {
        class: "card",
        "aria-label": "Add a sink",
        on: {
          submit: async (/** @type {Event} */ event) => {
            event.preventDefault();
            clearErrors(form);
            const kind = value(type);
            /** @type {Record<string, any>} */
            const body = { type: kind, name: value(name) || null };
            if (kind === "webhook") {
              body.url = value(url);
              if (value(secret)) body.secret = value(secret);
            } else body.webhook_url = value(url);
            try {
              await post(projectPath(project, "/sinks"), body);
              toast("Sink added.");
              await done();
            } catch (error) {
              showErrors(form, error, SINK_FIELDS);
            }
          },
        },
      },
      h("h2", {}, "Add a sink"),
      h(
        "div",
        { class: "grid" },
        field("sink-type", "Type", type),
        field("sink-name", "Name", name, "Optional."),
        field("sink-url", "URL", url, "The webhook's URL, or the Slack incoming-webhook URL."),
        field("sink-secret", "Signing secret (webhook)", secret, "Optional: signs each delivery."),
      ),
      formError(),
      h("button", { type: "submit" }, "Add sink"),
    )
  );
  return form;
}
