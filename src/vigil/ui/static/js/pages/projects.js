import { ApiError, clearErrors, del, get, patch, post, projectPath, showErrors } from "../api.js";
import { age, field, h, replace, section, table, time, toast } from "../dom.js";
import { button, formError, heading } from "./common.js";

export const title = "Projects and API keys";

/** @type {import("../app.js").Page} */
export async function render(main, ctx) {
  const nameInput = h("input", { name: "name", required: true, maxlength: 200, autocomplete: "off" });
  const createError = formError();
  const create = /** @type {HTMLFormElement} */ (
    h(
      "form",
      {
        class: "inline-form",
        on: {
          submit: async (/** @type {Event} */ event) => {
            event.preventDefault();
            clearErrors(create);
            try {
              const made = await post("/api/v1/projects", { name: /** @type {HTMLInputElement} */ (nameInput).value });
              ctx.project = made.id;
              localStorage.setItem("vigil.project", made.id);
              await ctx.refreshProjects();
              toast(`Project ${made.name} created.`);
              await render(main, ctx);
            } catch (error) {
              showErrors(create, error, { name: "new-project" });
            }
          },
        },
      },
      field("new-project", "New project's name", nameInput),
      createError,
      h("button", { type: "submit" }, "Create project"),
    )
  );
  const rows = ctx.projects.map((p) => [
    p.id === ctx.project ? h("strong", {}, p.name, " (selected)") : p.name,
    h("code", {}, p.id),
    h("span", { class: "actions" }, [
      p.id === ctx.project
        ? null
        : button(`Select ${p.name}`, async () => {
            ctx.project = p.id;
            localStorage.setItem("vigil.project", p.id);
            await ctx.refreshProjects();
            await render(main, ctx);
          }),
      button(`Rename ${p.name}`, () => renameForm(main, ctx, p)),
      button(
        `Delete ${p.name}`,
        async () => {
          if (!confirm(`Delete project ${p.name} with its keys, pipelines and sinks?`)) return;
          await del(projectPath(p.id));
          await ctx.refreshProjects();
          toast(`Project ${p.name} deleted.`);
          await render(main, ctx);
        },
        "danger",
      ),
    ]),
  ]);
  replace(
    main,
    heading(title, "A project holds its API keys, pipelines, sinks, incidents and runbooks."),
    section("Projects", table(["Name", "Id", "Actions"], rows, "Projects"), create),
    h("div", { id: "rename-slot" }),
    ctx.project ? await keysSection(main, ctx, ctx.project) : null,
  );
}

/** @param {HTMLElement} main @param {import("../app.js").Context} ctx @param {{id: string, name: string}} project */
function renameForm(main, ctx, project) {
  const input = h("input", { name: "name", required: true, value: project.name, maxlength: 200 });
  const form = /** @type {HTMLFormElement} */ (
    h(
      "form",
      {
        class: "card inline-form",
        "aria-label": `Rename ${project.name}`,
        on: {
          submit: async (/** @type {Event} */ event) => {
            event.preventDefault();
            try {
              await patch(projectPath(project.id), { name: /** @type {HTMLInputElement} */ (input).value });
              await ctx.refreshProjects();
              toast("Project renamed.");
              await render(main, ctx);
            } catch (error) {
              showErrors(form, error, { name: "rename" });
            }
          },
        },
      },
      field("rename", `New name for ${project.name}`, input),
      formError(),
      h("button", { type: "submit" }, "Rename"),
    )
  );
  replace(/** @type {HTMLElement} */ (document.getElementById("rename-slot")), form);
  input.focus();
}

/** @param {HTMLElement} main @param {import("../app.js").Context} ctx @param {string} projectId */
async function keysSection(main, ctx, projectId) {
  /** @type {any[]} */
  const keys = await get(projectPath(projectId, "/api-keys"));
  const shown = h("div", { class: "secret-slot", "aria-live": "polite" });
  const input = h("input", { name: "name", value: "default", maxlength: 63 });
  const form = /** @type {HTMLFormElement} */ (
    h(
      "form",
      {
        class: "inline-form",
        on: {
          submit: async (/** @type {Event} */ event) => {
            event.preventDefault();
            clearErrors(form);
            try {
              const made = await post(projectPath(projectId, "/api-keys"), {
                name: /** @type {HTMLInputElement} */ (input).value,
              });
              await render(main, ctx);
              showSecret(made.key, made.name);
            } catch (error) {
              showErrors(form, error, { name: "key-name" });
            }
          },
        },
      },
      field("key-name", "New key's name", input, "Lowercase letters, digits, - and _."),
      formError(),
      h("button", { type: "submit" }, "Create key"),
    )
  );
  const rows = keys.map((k) => [
    k.name,
    h("code", {}, `${k.prefix}…`),
    time(k.created_at),
    k.revoked ? `revoked ${age(k.revoked_at)} ago` : "active",
    k.revoked
      ? ""
      : button(
          `Revoke ${k.name}`,
          async () => {
            if (!confirm(`Revoke key ${k.name}? Senders using it are refused from now on.`)) return;
            try {
              await del(projectPath(projectId, `/api-keys/${k.id}`));
              toast(`Key ${k.name} revoked.`);
              await render(main, ctx);
            } catch (error) {
              toast(error instanceof ApiError ? error.message : String(error), true);
            }
          },
          "danger",
        ),
  ]);
  return section("API keys", table(["Name", "Prefix", "Created", "State", "Actions"], rows, "API keys"), form, shown);
}

/** @param {string} key @param {string} name */
function showSecret(key, name) {
  const slot = document.querySelector(".secret-slot");
  if (!slot) return;
  const value = h("input", { readonly: true, value: key, class: "secret", "aria-label": `Key ${name}` });
  const copy = button("Copy key", async () => {
    try {
      await navigator.clipboard.writeText(key);
      toast("Key copied.");
    } catch {
      /** @type {HTMLInputElement} */ (value).select();
      toast("Select the key and copy it (the browser did not allow copying).", true);
    }
  });
  replace(
    /** @type {HTMLElement} */ (slot),
    h(
      "div",
      { class: "card notice", role: "region", "aria-label": "The new key" },
      h("p", {}, h("strong", {}, `Key ${name} created.`), " It is shown this once: only its hash is kept."),
      value,
      copy,
    ),
  );
  copy.focus();
}
