"""`vigil feedback give|list|stats`: rate an analysis, a plan or a workflow; see what people said."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from vigil.cli.client import (
    DEFAULT_API_URL,
    ApiUrlOption,
    JsonOption,
    ProjectArg,
    TokenOption,
    console,
    print_json,
    project_call,
    say,
    short_time,
    table,
)

feedback_app = typer.Typer(
    help="Feedback on analyses, plans and workflows: later analyses of similar problems learn from it.",
    no_args_is_help=True,
)


def _judged(row: dict[str, Any]) -> str:
    parts = [f"{row['rating']}/5"] if row.get("rating") is not None else []
    if row.get("helpful") is not None:
        parts.append("helpful" if row["helpful"] else "not helpful")
    return ", ".join(parts)


@feedback_app.command("give")
def give(
    project: ProjectArg,
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET", help="A workflow or incident id, or a workflow's analysis_id or plan_id."
        ),
    ],
    rating: Annotated[int | None, typer.Option(min=1, max=5, help="1 (wrong) to 5 (right).")] = None,
    helpful: Annotated[bool | None, typer.Option("--helpful/--not-helpful", help="Was it helpful?")] = None,
    comment: Annotated[str | None, typer.Option(help="What was right or wrong.")] = None,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Rate an analysis, a plan or a workflow (a rating, helpful or not, or both)."""
    if rating is None and helpful is None:
        raise typer.BadParameter("give --rating, --helpful/--not-helpful, or both")
    body = {"target_id": target, "rating": rating, "helpful": helpful, "comment": comment}
    _, row = project_call(api_url, token, project, "POST", "/feedback", body=body)
    if as_json:
        print_json(row)
        return
    say(f"[green]noted[/] {escape(_judged(row))} on {row['target_kind']} {escape(row['target_id'])}")


@feedback_app.command("list")
def list_feedback(
    project: ProjectArg,
    target: Annotated[str | None, typer.Option("--target", help="Only this target id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Feedback, newest first."""
    params = {"target_id": target, "limit": limit}
    _, rows = project_call(api_url, token, project, "GET", "/feedback", params=params)
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("No feedback.")
        return
    cells = [
        [
            str(r["id"]),
            short_time(r["created_at"]),
            r["target_kind"],
            r["target_id"],
            _judged(r),
            r["comment"] or "",
        ]
        for r in rows
    ]
    console.print(table(["ID", "AT", "KIND", "TARGET", "JUDGED", "COMMENT"], cells))


@feedback_app.command("stats")
def stats(
    project: ProjectArg,
    as_json: JsonOption = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    token: TokenOption = None,
) -> None:
    """Counts, mean rating, helpful ratio, approvals and rejections, and the rewards they add up to."""
    _, found = project_call(api_url, token, project, "GET", "/feedback/stats")
    if as_json:
        print_json(found)
        return

    def row(name: str, s: dict[str, Any], reward: float) -> list[str]:
        mean = "" if s["mean_rating"] is None else f"{s['mean_rating']:.2f}"
        ratio = "" if s["helpful_ratio"] is None else f"{s['helpful_ratio']:.0%}"
        return [name, str(s["count"]), mean, ratio, f"{reward:+.2f}"]

    kinds = [row(kind, s, s["reward"]) for kind, s in found["by_target_kind"].items()]
    total = row("all", found, found["reward"]["feedback"])
    console.print(table(["TARGET", "FEEDBACK", "MEAN RATING", "HELPFUL", "REWARD"], [*kinds, total]))
    reward = found["reward"]
    say(
        f"approvals {found['approvals']} ({reward['approvals']:+.0f}), rejections {found['rejections']} "
        f"({reward['rejections']:+.0f}), outcomes {reward['outcomes']:+.0f}: reward {reward['total']:+.2f}"
    )
