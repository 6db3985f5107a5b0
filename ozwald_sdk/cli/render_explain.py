"""`ozwald explain` as text: for each instance, where it is and why; the best hosts with
their scores; and every filter that turned hosts away, with how many and why."""

from __future__ import annotations

from ozwald.orchestrator.v1.fleet_service_pb2 import ExplainDeploymentResponse
from ozwald.orchestrator.v1.placement_pb2 import InstanceExplanation

from ozwald_sdk.cli.render_services import cut
from ozwald_sdk.cli.text import INDENT, WIDTH

BEST_SHOWN = 3
EXAMPLES_SHOWN = 2


def render_explanation(name: str, response: ExplainDeploymentResponse, width: int = WIDTH) -> str:
    strategy = response.strategy or "the configured"
    out = [f"Deployment {name}, placed by the {strategy} strategy:"]
    if not response.instances:
        out.append(f"{INDENT}it has no instances (replicas: 0)")
    for explanation in response.instances:
        out.append("")
        out.extend(instance_lines(explanation, width))
    return "\n".join(out) + "\n"


def instance_lines(explanation: InstanceExplanation, width: int = WIDTH) -> list[str]:
    where = f"on {explanation.host_id}" if explanation.host_id else "PENDING"
    lines = [f"{INDENT}{explanation.instance}  {where}"]
    if explanation.summary:
        lines.append(f"{INDENT * 2}{explanation.summary}")
    if explanation.best:
        lines.append(f"{INDENT * 2}feasible hosts, best first:")
        for verdict in explanation.best[:BEST_SHOWN]:
            variety = f" as {verdict.variety}" if verdict.variety else ""
            lines.append(f"{INDENT * 3}{verdict.host_id}{variety}, score {verdict.score:.3g}")
        more = len(explanation.best) - BEST_SHOWN
        if more > 0:
            lines.append(f"{INDENT * 3}... and {more} more")
    elif not explanation.host_id and not explanation.summary:
        lines.append(f"{INDENT * 2}no host can take it")
    for rejection in explanation.rejections:
        hosts = f"{rejection.hosts} host{'s' if rejection.hosts != 1 else ''}"
        lines.append(f"{INDENT * 2}{rejection.filter}: rejected {hosts}")
        for example in rejection.examples[:EXAMPLES_SHOWN]:
            lines.append(cut(f"{INDENT * 3}{example}", width))
    return lines
