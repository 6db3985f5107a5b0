"""A Plan as text for people: `ozwald update_services --plan`, and a refused apply.

Plan for host vm (host profile of 2026-11-27 05:51:29 UTC): admitted
  START    default:echo    new service
           memory 32.0 MiB (declared); cpus 0.25
  STOP     default:old     no longer desired
           gives back memory 32.0 MiB (declared)
...
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1.gpu_pb2 import GPU_VENDOR_AMD, GPU_VENDOR_NVIDIA, GpuVendor

from ozwald_sdk.cli.text import INDENT, WIDTH, Section, human_bytes

P = plan_pb2
KIND_WIDTH = 7
_MAX_LABEL = 28
DETAIL_INDENT = INDENT + " " * (KIND_WIDTH + 2)
_VENDORS: dict[GpuVendor.ValueType, str] = {GPU_VENDOR_NVIDIA: "NVIDIA", GPU_VENDOR_AMD: "AMD"}


def kind_name(kind: P.ActionKind.ValueType) -> str:
    return P.ActionKind.Name(kind).removeprefix("ACTION_KIND_")


def refusal_name(reason: P.RefusalReason.ValueType) -> str:
    return P.RefusalReason.Name(reason).removeprefix("REFUSAL_REASON_")


def vendor_name(vendor: GpuVendor.ValueType) -> str:
    return _VENDORS.get(vendor, "GPU")


def ref_label(ref: P.ServiceRef | P.PlannedAction | P.Refusal) -> str:
    return f"{ref.realm}:{ref.name}"


def render_plan(plan: P.Plan, width: int = WIDTH) -> str:
    """Verdict, every action with its figures and GPUs, the orders, the budget, then every
    refusal with its remedy."""
    out = [*_headline(plan, width), ""]
    label_width = _label_width(plan.actions)
    for action in plan.actions:
        out.extend(action_lines(action, label_width, width, details=True))
    if not plan.actions:
        out.append(f"{INDENT}no services run or are desired")
    note = stop_note(plan, width)
    if note:
        out.append("")
        out.extend(note)
    orders = Section("")
    if plan.stop_order:
        orders.add("Stop order", ", ".join(ref_label(r) for r in plan.stop_order))
    if plan.start_order:
        orders.add("Start order", ", ".join(ref_label(r) for r in plan.start_order))
    if orders.fields:
        out.append(orders.render(width))
    out.append("")
    out.append(_budget(plan.budget).render(width))
    if plan.refusals:
        out.append("")
        out.extend(refusal_lines(plan.refusals, width))
    return "\n".join(out) + "\n"


def stop_note(plan: P.Plan, width: int = WIDTH) -> list[str]:
    """Why services nobody asked to stop are stopped; empty when none is."""
    stopped = [ref_label(a) for a in plan.actions if a.kind == P.ACTION_KIND_STOP]
    if not stopped:
        return []
    return _wrap(
        f"{', '.join(stopped)} {'is' if len(stopped) == 1 else 'are'} not in the desired "
        "set: an update makes the services it is given the complete set of dynamic "
        "services on the host, and stops the others.",
        width,
        INDENT,
    )


def _headline(plan: P.Plan, width: int) -> list[str]:
    """Which host the plan is for, then the verdict."""
    host = f"host {plan.hostname}" if plan.hostname else "the host"
    if plan.HasField("profile_collected_at"):
        stamp = plan.profile_collected_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")
        host += f", as profiled at {stamp}"
    if plan.admitted:
        changes = sum(1 for a in plan.actions if a.kind != P.ACTION_KIND_KEEP)
        verdict = (
            "Admitted: nothing to change."
            if not changes
            else f"Admitted: {changes} service{'' if changes == 1 else 's'} to change."
        )
    else:
        count = len(plan.refusals)
        verdict = (
            f"REFUSED: {count} problem{'' if count == 1 else 's'}, listed at the end; "
            "applying this plan would change nothing."
        )
    return [*_wrap(f"Plan for {host}", width, ""), *_wrap(verdict, width, "")]


def _label_width(actions: Iterable[P.PlannedAction]) -> int:
    return min(max((len(ref_label(a)) for a in actions), default=0), _MAX_LABEL)


def action_lines(
    action: P.PlannedAction, label_width: int, width: int = WIDTH, *, details: bool = False
) -> list[str]:
    """`START    default:echo  new service`, then with `details` the changed fields,
    the resource figures and the GPUs, indented under the service."""
    head = f"{INDENT}{kind_name(action.kind):<{KIND_WIDTH}}  {ref_label(action):<{label_width}}  "
    lines = textwrap.wrap(
        action.reason or "-",
        width=width,
        initial_indent=head,
        subsequent_indent=" " * len(head) if len(head) < width // 2 else DETAIL_INDENT,
        break_on_hyphens=False,
    )
    if not details:
        return lines
    if any(field not in action.reason for field in action.changed_fields):
        lines.extend(_wrap(f"changed: {', '.join(action.changed_fields)}", width))
    figures = _figures(action)
    if figures:
        lines.extend(_wrap(figures, width))
    for gpu in action.gpus.devices:
        lines.extend(_wrap(_gpu(action, gpu), width))
    return lines


def _figures(action: P.PlannedAction) -> str:
    if not action.HasField("resources"):
        return ""
    resources = action.resources
    parts = [f"memory {_byte_figure(resources.memory)}"]
    if resources.HasField("vram_per_gpu"):
        parts.append(f"VRAM per GPU {_byte_figure(resources.vram_per_gpu)}")
    parts.append(f"cpus {resources.cpus:g} (declared)" if resources.cpus else "cpus not declared")
    text = "; ".join(parts)
    return f"gives back {text}" if action.kind == P.ACTION_KIND_STOP else text


def _byte_figure(figure: P.ByteFigure) -> str:
    """`8.0 GiB (footprint; declared 12.0 GiB)`: the figure admission counted, and why."""
    amount = human_bytes(figure.accounted_bytes)
    if figure.source == P.FIGURE_SOURCE_FOOTPRINT:
        declared = (
            f"; declared {human_bytes(figure.declared_bytes)}" if figure.declared_bytes else ""
        )
        return f"{amount} (footprint{declared})"
    stale = (
        "; footprint stale: measured for an older spec, profile again"
        if (figure.footprint_stale)
        else ""
    )
    if figure.source == P.FIGURE_SOURCE_DECLARED:
        return f"{amount} (declared{stale})"
    if stale:
        return f"not declared (counted as 0{stale})"
    return "not declared, no footprint (counted as 0)"


def _gpu(action: P.PlannedAction, gpu: P.AssignedGpu) -> str:
    vendor = vendor_name(action.gpus.vendor)
    if not gpu.reported:
        where = f"{vendor} GPU {gpu.uuid} (no longer reported by the host)"
    else:
        where = f"GPU {gpu.index} {gpu.name or vendor} ({gpu.uuid})"
    held = "whole" if action.gpus.exclusive else "shared"
    verb = "held" if action.kind == P.ACTION_KIND_STOP else "reserved"
    return f"{where}: {human_bytes(gpu.reserved_bytes)} {verb}, {held}"


def _budget(budget: P.HostBudget) -> Section:
    section = Section("Budget")
    memory = budget.memory
    section.add(
        "Memory",
        f"{human_bytes(memory.available_bytes)} available of {human_bytes(memory.total_bytes)}",
    )
    section.add(
        "  released", f"{human_bytes(memory.released_bytes)} by services that stop or restart"
    )
    section.add(
        "  claimed", f"{human_bytes(memory.claimed_bytes)} by services that start or restart"
    )
    section.add("  left", human_bytes(memory.left_bytes))
    cpu = budget.cpu
    section.add("CPUs", f"{cpu.claimed_cores:g} of {cpu.usable_cores} usable cores claimed")
    for gpu in budget.gpus:
        section.add(f"{vendor_name(gpu.vendor)} GPU {gpu.index}", _gpu_budget(gpu))
    return section


def _gpu_budget(gpu: P.GpuBudget) -> str:
    holders = ", ".join(ref_label(h) for h in gpu.holders)
    if not gpu.assignable:
        return f"{gpu.name}: not assignable" + (f" ({gpu.note})" if gpu.note else "")
    if gpu.exclusive:
        use = f"held whole by {holders}"
    elif holders:
        use = f"{human_bytes(gpu.reserved_bytes)} reserved by {holders}"
    else:
        use = "unused by Ozwald"
    text = (
        f"{gpu.name}: {use}; {human_bytes(gpu.free_bytes)} free of {human_bytes(gpu.total_bytes)}"
    )
    if gpu.unmanaged_bytes:
        text += f" ({human_bytes(gpu.unmanaged_bytes)} used outside Ozwald)"
    if gpu.note:
        text += f"; {gpu.note}"
    return text


def refusal_lines(refusals: Sequence[P.Refusal], width: int = WIDTH) -> list[str]:
    """`Refused:` then, per refusal, the service and reason code, what and why, the remedy."""
    count = len(refusals)
    out = [f"Refused: {count} problem{'' if count == 1 else 's'}"]
    for refused in refusals:
        out.append(f"{INDENT}{ref_label(refused)}  {refusal_name(refused.reason)}")
        out.extend(_wrap(refused.message, width, INDENT * 2))
        if refused.remedy:
            out.extend(_wrap(f"remedy: {refused.remedy}", width, INDENT * 2))
    return out


def _wrap(text: str, width: int, indent: str = DETAIL_INDENT) -> list[str]:
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + INDENT,
        break_on_hyphens=False,
        break_long_words=True,
    )
