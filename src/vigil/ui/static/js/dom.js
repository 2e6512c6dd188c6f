// Building the page from data: text is always set as text, never parsed as HTML.

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @param {string} tag
 * @param {Record<string, any>} [attrs] attributes; `on` maps event names to handlers
 * @param {...(Child | Child[])} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [name, handler] of Object.entries(value)) el.addEventListener(name, handler);
    } else if (key === "class") {
      el.className = value;
    } else if (key in el && typeof value !== "string") {
      /** @type {any} */ (el)[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** @param {Node} parent @param {(Child | Child[])[]} children */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** @param {Element} el @param {...(Child | Child[])} children */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** @param {string | number | null | undefined} when an ISO time or epoch seconds */
export function toDate(when) {
  if (when === null || when === undefined) return null;
  return typeof when === "number" ? new Date(when * 1000) : new Date(when);
}

/** @param {string | number | null | undefined} when */
export function time(when) {
  const date = toDate(when);
  if (!date) return "—";
  return h("time", { datetime: date.toISOString(), title: date.toISOString() }, date.toLocaleString());
}

/** @param {string | number | null | undefined} when @returns {string} */
export function age(when) {
  const date = toDate(when);
  if (!date) return "—";
  const s = Math.max(0, (Date.now() - date.getTime()) / 1000);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** A labelled field with a slot for its error message.
 * @param {string} id @param {string} label @param {HTMLElement} control @param {string} [hint] */
export function field(id, label, control, hint) {
  control.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const described = [hint ? `${id}-hint` : "", `${id}-error`].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  return h(
    "div",
    { class: "field", "data-field": id },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    error,
  );
}

/** @param {string} text @param {string} [level] */
export function badge(text, level) {
  return h("span", { class: `badge ${level || text}` }, text);
}

/** @param {string} title @param {...(Child | Child[])} children */
export function section(title, ...children) {
  return h("section", { class: "card", "aria-label": title }, h("h2", {}, title), ...children);
}

/** @param {string[]} headers @param {(Child | Child[])[][]} rows @param {string} caption */
export function table(headers, rows, caption) {
  // a region the keyboard can reach, since a wide table scrolls inside it
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h(
        "tbody",
        {},
        rows.length
          ? rows.map((cells) => h("tr", {}, cells.map((c, i) => h("td", { "data-label": headers[i] }, c))))
          : h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, "Nothing yet.")),
      ),
    ),
  );
}

/** @param {string} message @param {boolean} [bad] */
export function toast(message, bad = false) {
  const el = /** @type {HTMLElement} */ (document.getElementById("toast"));
  el.className = bad ? "bad" : "";
  el.textContent = message;
  clearTimeout(/** @type {any} */ (el).timer);
  /** @type {any} */ (el).timer = setTimeout(() => (el.textContent = ""), 6000);
}
