import { ApiError, get, post, projectPath } from "../api.js";
import { h, replace, table, time, toast } from "../dom.js";
import { button, heading, noProject } from "./common.js";

export const title = "Dead letters";

/** @type {import("../app.js").Page} */
export async function render(main, ctx) {
  if (!ctx.project) return noProject(main, title);
  const project = ctx.project;
  const all = ctx.query.get("all") === "1";
  /** @type {any[]} */
  const rows = await get(projectPath(project, `/dead-letters?limit=200${all ? "&include_replayed=true" : ""}`));
  const again = () => render(main, ctx);
  /** @param {string} path @param {string} done */
  const replay = async (path, done) => {
    try {
      const answer = await post(path);
      toast(`${done}: ${answer.replayed.length} put back on the bus.`);
      await again();
    } catch (error) {
      toast(error instanceof ApiError ? error.message : String(error), true);
    }
  };
  replace(
    main,
    heading(title, "Work that could not be delivered after its retries: replay it once its destination is fixed."),
    h(
      "p",
      { class: "actions" },
      button("Replay all", () => replay(projectPath(project, "/dead-letters/replay"), "Replayed")),
      h("a", { href: all ? "#/dead-letters" : "#/dead-letters?all=1" }, all ? "Hide replayed" : "Show replayed too"),
    ),
    table(
      ["Kind", "Target", "Error", "Attempts", "Created", "Replayed", "Actions"],
      rows.map((d) => [
        d.kind,
        d.target,
        h("span", { class: "error-text" }, d.error),
        String(d.attempts),
        time(d.created_at),
        d.replayed_at ? time(d.replayed_at) : "no",
        d.replayed_at ? "" : button(`Replay ${d.kind} ${d.ref}`, () => replay(projectPath(project, `/dead-letters/${d.id}/replay`), "Replayed")),
      ]),
      "Dead letters",
    ),
  );
}
