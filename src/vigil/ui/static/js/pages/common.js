// What several pages share: the "pick a project first" notice and a page heading.

import { h, replace } from "../dom.js";

/** @param {HTMLElement} main @param {string} title */
export function noProject(main, title) {
  replace(
    main,
    h("h1", {}, title),
    h("p", {}, "There is no project yet. ", h("a", { href: "#/projects" }, "Create a project"), " to begin."),
  );
}

/** @param {string} title @param {string} [lead] */
export function heading(title, lead) {
  return [h("h1", {}, title), lead ? h("p", { class: "lead" }, lead) : null];
}

/** A form's summary slot for errors that belong to no one field. */
export function formError() {
  return h("p", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
}

/** @param {string} label @param {(event: Event) => void} onClick @param {string} [kind] */
export function button(label, onClick, kind = "") {
  return h("button", { type: "button", class: kind, on: { click: onClick } }, label);
}
