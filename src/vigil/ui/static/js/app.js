// The shell: sign-in, the project picker, the menu and the pages by the address's #fragment.

import { get, resume, signIn, signOut, ApiError } from "./api.js";
import { h, replace, toast } from "./dom.js";

/** @typedef {{project: string | null, projects: {id: string, name: string}[], params: string[], query: URLSearchParams, refreshProjects: () => Promise<void>}} Context */
/** @typedef {(main: HTMLElement, ctx: Context) => Promise<(() => void) | void>} Page */

/** @type {Record<string, () => Promise<{render: Page, title: string}>>} */
const PAGES = {
  overview: () => import("./pages/overview.js"),
  projects: () => import("./pages/projects.js"),
  pipelines: () => import("./pages/pipelines.js"),
  live: () => import("./pages/live.js"),
  incidents: () => import("./pages/incidents.js"),
  incident: () => import("./pages/incident.js"),
  approvals: () => import("./pages/approvals.js"),
  runbooks: () => import("./pages/runbooks.js"),
  audit: () => import("./pages/audit.js"),
  "dead-letters": () => import("./pages/dead_letters.js"),
};

const main = /** @type {HTMLElement} */ (document.getElementById("main"));
const header = /** @type {HTMLElement} */ (document.querySelector("header.top"));
const picker = /** @type {HTMLSelectElement} */ (document.getElementById("project"));
const menu = /** @type {HTMLButtonElement} */ (document.querySelector("button.menu"));

/** @type {Context} */
const ctx = {
  project: localStorage.getItem("vigil.project"),
  projects: [],
  params: [],
  query: new URLSearchParams(),
  refreshProjects,
};
/** @type {(() => void) | void} */
let cleanup;
let navigation = 0;

async function refreshProjects() {
  ctx.projects = await get("/api/v1/projects");
  if (!ctx.projects.some((p) => p.id === ctx.project)) ctx.project = ctx.projects[0]?.id || null;
  replace(
    picker,
    ctx.projects.length ? null : h("option", { value: "" }, "No project yet"),
    ctx.projects.map((p) => h("option", { value: p.id, selected: p.id === ctx.project }, p.name)),
  );
  if (ctx.project) localStorage.setItem("vigil.project", ctx.project);
}

async function route() {
  if (typeof cleanup === "function") cleanup();
  cleanup = undefined;
  const [path, search] = (location.hash.replace(/^#\/?/, "") || "overview").split("?");
  const [name, ...params] = path.split("/").map(decodeURIComponent);
  ctx.params = params;
  ctx.query = new URLSearchParams(search || "");
  const load = PAGES[name] || PAGES.overview;
  for (const link of document.querySelectorAll("#nav a")) {
    const target = link.getAttribute("href")?.slice(2);
    if (target === name || (name === "incident" && target === "incidents")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  header.classList.remove("open");
  menu.setAttribute("aria-expanded", "false");
  const current = ++navigation;
  // each page draws into its own view, shown only while it is still the one asked for
  const view = h("div", { class: "view" });
  try {
    const page = await load();
    const ended = await page.render(view, ctx);
    if (current !== navigation) {
      if (typeof ended === "function") ended();
      return;
    }
    document.title = `${page.title} · Vigil`;
    cleanup = ended;
    replace(main, view);
  } catch (error) {
    if (current !== navigation || (error instanceof ApiError && error.status === 401)) return;
    replace(main, h("h1", {}, "Something went wrong"), h("p", { class: "form-error" }, String(error)));
  }
}

function showSignIn(message = "") {
  header.hidden = true;
  document.title = "Sign in · Vigil";
  const input = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true });
  input.id = "token";
  const error = h("p", { class: "form-error", role: "alert", tabindex: "-1", hidden: !message }, message);
  const form = h(
    "form",
    {
      class: "card sign-in",
      on: {
        submit: async (/** @type {Event} */ event) => {
          event.preventDefault();
          try {
            await signIn(/** @type {HTMLInputElement} */ (input).value);
            await start();
          } catch (err) {
            error.textContent = err instanceof ApiError && err.status === 401 ? "That token is not the admin token." : String(err);
            error.hidden = false;
            error.focus();
          }
        },
      },
    },
    h("h1", {}, "Sign in to Vigil"),
    h(
      "p",
      {},
      "Paste the admin token: VIGIL_ADMIN_TOKEN, or the one Vigil printed when it first started (kept in its data directory as admin-token).",
    ),
    h("div", { class: "field" }, h("label", { for: "token" }, "Admin token"), input),
    error,
    h("button", { type: "submit" }, "Sign in"),
  );
  replace(main, form);
  input.focus();
}

async function start() {
  header.hidden = false;
  await refreshProjects();
  await route();
  main.focus();
}

picker.addEventListener("change", () => {
  ctx.project = picker.value;
  localStorage.setItem("vigil.project", picker.value);
  route();
});
menu.addEventListener("click", () => {
  const open = !header.classList.contains("open");
  header.classList.toggle("open", open);
  menu.setAttribute("aria-expanded", String(open));
});
document.getElementById("sign-out")?.addEventListener("click", async () => {
  await signOut().catch(() => undefined);
  showSignIn();
  toast("Signed out.");
});
window.addEventListener("hashchange", async () => {
  await route();
  main.focus();
});
window.addEventListener("vigil:signed-out", () => showSignIn("Your session ended: sign in again."));

if (await resume()) await start();
else showSignIn();
