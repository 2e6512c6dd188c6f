// The management API as the signed-in page uses it: the session cookie goes along by itself,
// and every change carries the session's CSRF token.

/** @type {string | null} */
let csrf = null;

export class ApiError extends Error {
  /** @param {number} status @param {any} body */
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
    /** @type {{loc: (string|number)[], msg: string}[]} */
    this.errors = (body && body.details && body.details.errors) || [];
  }
}

/**
 * @param {string} method
 * @param {string} path
 * @param {any} [body] JSON, or a string sent as `contentType`
 * @param {string} [contentType]
 */
export async function call(method, path, body, contentType) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = contentType || "application/json";
    payload = typeof body === "string" && contentType ? body : JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  const text = await response.text();
  const data = text ? safeJson(text) : null;
  if (response.status === 401 && !path.startsWith("/ui/session")) {
    window.dispatchEvent(new CustomEvent("vigil:signed-out"));
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** @param {string} text */
function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

/** @param {string} path */
export const get = (path) => call("GET", path);
/** @param {string} path @param {any} [body] */
export const post = (path, body) => call("POST", path, body);
/** @param {string} path @param {any} [body] */
export const put = (path, body) => call("PUT", path, body);
/** @param {string} path @param {any} [body] */
export const patch = (path, body) => call("PATCH", path, body);
/** @param {string} path */
export const del = (path) => call("DELETE", path);

/** @returns {Promise<boolean>} whether a session is open */
export async function resume() {
  try {
    csrf = (await call("GET", "/ui/session")).csrf;
    return true;
  } catch {
    return false;
  }
}

/** @param {string} token */
export async function signIn(token) {
  csrf = (await call("POST", "/ui/session", { token })).csrf;
}

export async function signOut() {
  await call("DELETE", "/ui/session");
  csrf = null;
}

/**
 * Server-sent events, reconnected by the browser; closed by the returned function.
 * @param {string} path
 * @param {Record<string, (data: any) => void>} handlers by event name
 */
export function stream(path, handlers) {
  const source = new EventSource(path, { withCredentials: true });
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handler(JSON.parse(/** @type {MessageEvent} */ (event).data)));
  }
  return () => source.close();
}

/** @param {string} project @param {string} [rest] */
export const projectPath = (project, rest = "") =>
  `/api/v1/projects/${encodeURIComponent(project)}${rest}`;

/** Shows an API error next to the form's fields (by `loc`), or under the form.
 * @param {HTMLFormElement} form @param {unknown} error @param {Record<string, string>} [fieldOf] loc → field id */
export function showErrors(form, error, fieldOf = {}) {
  clearErrors(form);
  const err = error instanceof ApiError ? error : new ApiError(0, { message: String(error) });
  let placed = false;
  for (const problem of err.errors) {
    const loc = problem.loc.filter((part) => part !== "body").join(".");
    const id = Object.entries(fieldOf).find(([prefix]) => loc === prefix || loc.startsWith(`${prefix}.`));
    const slot = id && form.querySelector(`#${id[1]}-error`);
    if (slot instanceof HTMLElement) {
      slot.textContent = `${problem.msg}${loc && loc !== id[0] ? ` (${loc})` : ""}`;
      slot.hidden = false;
      form.querySelector(`#${id[1]}`)?.setAttribute("aria-invalid", "true");
      placed = true;
    }
  }
  const summary = form.querySelector(".form-error");
  if (summary instanceof HTMLElement) {
    summary.textContent = placed ? `Not saved: ${err.message}` : err.message;
    summary.hidden = false;
    summary.focus();
  }
}

/** @param {HTMLFormElement} form */
export function clearErrors(form) {
  form.querySelectorAll(".field-error, .form-error").forEach((el) => {
    el.textContent = "";
    /** @type {HTMLElement} */ (el).hidden = true;
  });
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}
