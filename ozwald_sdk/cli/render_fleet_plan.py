"""A FleetPlan as text for people: what `ozwald apply` does (or would do) to each
deployment, and where each instance goes, or why no host can take it."""

from __future__ import annotations

import textwrap

from ozwald.orchestrator.v1 import placement_pb2

from ozwald_sdk.cli.text import INDENT, WIDTH

P = placement_pb2

_VERBS = {
    P.DEPLOYMENT_CHANGE_KIND_CREATE: "create",
    P.DEPLOYMENT_CHANGE_KIND_UPDATE: "update",
    P.DEPLOYMENT_CHANGE_KIND_DELETE: "delete",
    P.DEPLOYMENT_CHANGE_KIND_UNCHANGED: "keep",
}
_MARKS = {
    P.DEPLOYMENT_CHANGE_KIND_CREATE: "+",
    P.DEPLOYMENT_CHANGE_KIND_UPDATE: "~",
    P.DEPLOYMENT_CHANGE_KIND_DELETE: "-",
    P.DEPLOYMENT_CHANGE_KIND_UNCHANGED: "=",
}


def render_fleet_plan(plan: P.FleetPlan, *, applied: bool, width: int = WIDTH) -> str:
    """One block per deployment: its change, then one line per instance."""
    if applied:
        head = f"Applied as desired-state version {plan.desired_version}:"
    else:
        head = f"Plan against desired-state version {plan.desired_version} (nothing is changed):"
    if not plan.changes:
        return f"{head}\n{INDENT}no deployments in the file's realms, none stored: nothing to do\n"
    out = [head]
    for change in plan.changes:
        out.extend(change_lines(change))
    pending = [
        placed
        for change in plan.changes
        if change.kind != P.DEPLOYMENT_CHANGE_KIND_DELETE
        for placed in change.instances
        if not placed.host_id
    ]
    if pending:
        out.append("")
        note = (
            f"{len(pending)} instance{'s' if len(pending) != 1 else ''} cannot be placed now "
            "and stay PENDING until a host can take "
            + ("it" if len(pending) == 1 else "them")
            + "; `ozwald explain DEPLOYMENT` says why."
        )
        out.extend(textwrap.wrap(note, width=width, break_on_hyphens=False))
    return "\n".join(out) + "\n"


def change_lines(change: P.DeploymentChange) -> list[str]:
    mark = _MARKS.get(change.kind, "?")
    verb = _VERBS.get(change.kind, "change")
    count = len(change.instances)
    what = f"{INDENT}{mark} {verb} {change.deployment}"
    if change.kind != P.DEPLOYMENT_CHANGE_KIND_DELETE:
        what += f" ({count} instance{'s' if count != 1 else ''})"
    if change.changed_fields:
        what += f": {', '.join(change.changed_fields)} changed"
    lines = [what]
    width = max((len(p.instance) for p in change.instances), default=0)
    for placed in change.instances:
        lines.append(f"{INDENT * 3}{placed.instance:<{width}}  {placement_text(placed)}")
    return lines


def placement_text(placed: P.PlacedInstance) -> str:
    if placed.host_id:
        variety = f" ({placed.variety})" if placed.variety else ""
        return f"-> {placed.host_id}{variety}"
    return f"PENDING: {placed.reason or 'no host can take it'}"
