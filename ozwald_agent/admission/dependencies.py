"""depends_on: every dependency must run, no cycles, and the orders to stop and start in.

A dependency names a service of the same realm that will run once the plan is applied: a
desired service or a persistent one. A kept service is checked too: removing its
dependency from the desired set would pull the ground from under it.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Collection, Iterable, Mapping, Set

from ozwald.agent.v1 import plan_pb2
from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.keys import ServiceKey, label
from ozwald_agent.admission.refusals import refusal

Specs = Mapping[ServiceKey, service_spec_pb2.ServiceSpec]


def check_dependencies(will_run: Specs, stopping: Set[ServiceKey]) -> list[plan_pb2.Refusal]:
    """Refusals for missing dependencies and for every service on a dependency cycle."""
    refused = [r for key in sorted(will_run) for r in _missing(key, will_run, stopping)]
    graph = _graph(will_run)
    for component in _strongly_connected(sorted(graph), graph):
        first = min(component)
        if len(component) == 1 and first not in graph[first]:
            continue
        cycle = _cycle_through(first, set(component), graph)
        path = " -> ".join(label(k) for k in [*cycle, first])
        for key in sorted(component):
            refused.append(
                refusal(
                    key,
                    plan_pb2.REFUSAL_REASON_DEPENDENCY_CYCLE,
                    f"depends_on forms a cycle: {path}",
                    "remove one of the depends_on entries on the cycle: services start only "
                    "after their dependencies are ready",
                    subject=path,
                    involved=[k for k in sorted(component) if k != key],
                )
            )
    return refused


def start_order(will_run: Specs, starting: Collection[ServiceKey]) -> list[ServiceKey]:
    """`starting`, dependencies first; unordered services by realm and name."""
    graph = _graph(will_run)
    return [k for k in _topological(graph, graph) if k in starting]


def stop_order(running: Specs, stopping: Collection[ServiceKey]) -> list[ServiceKey]:
    """`stopping`, dependents first; unordered services by realm and name."""
    graph = _graph(running)
    dependents: dict[ServiceKey, set[ServiceKey]] = {k: set() for k in graph}
    for key, dependencies in graph.items():
        for dependency in dependencies:
            dependents[dependency].add(key)
    return [k for k in _topological(graph, dependents) if k in stopping]


def _graph(specs: Specs) -> dict[ServiceKey, set[ServiceKey]]:
    """Each service's dependencies among `specs` (unknown names left out)."""
    return {
        key: {(key[0], d) for d in spec.depends_on if (key[0], d) in specs}
        for key, spec in specs.items()
    }


def _missing(
    key: ServiceKey, will_run: Specs, stopping: Set[ServiceKey]
) -> Iterable[plan_pb2.Refusal]:
    realm = key[0]
    for dependency in dict.fromkeys(will_run[key].depends_on):
        target = (realm, dependency)
        if target in will_run:
            continue
        if target in stopping:
            why = "which this update stops: it is not in the desired set"
            remedy = f"add {label(target)} to the update, or remove it from depends_on"
        else:
            why = f"which is neither desired nor a persistent service of realm {realm!r}"
            names = sorted(n for r, n in will_run if r == realm and n != key[1])
            close = difflib.get_close_matches(dependency, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            remedy = f"{hint}add {label(target)} to the update, or remove it from depends_on"
        yield refusal(
            key,
            plan_pb2.REFUSAL_REASON_DEPENDENCY_MISSING,
            f"depends on {dependency!r}, {why}",
            remedy,
            subject=dependency,
        )


def _topological(
    nodes: Mapping[ServiceKey, object], before: Mapping[ServiceKey, set[ServiceKey]]
) -> list[ServiceKey]:
    """Kahn's algorithm, smallest key first among the ready ones. Nodes on a cycle, and
    those after them, come last in key order."""
    waiting = {n: {p for p in before.get(n, set()) if p in nodes and p != n} for n in nodes}
    after: dict[ServiceKey, list[ServiceKey]] = {n: [] for n in nodes}
    for node, earlier in waiting.items():
        for e in earlier:
            after[e].append(node)
    ready = [n for n, earlier in waiting.items() if not earlier]
    heapq.heapify(ready)
    ordered: list[ServiceKey] = []
    while ready:
        node = heapq.heappop(ready)
        ordered.append(node)
        for later in after[node]:
            waiting[later].discard(node)
            if not waiting[later]:
                heapq.heappush(ready, later)
    done = set(ordered)
    return ordered + sorted(n for n in nodes if n not in done)


def _strongly_connected(
    nodes: list[ServiceKey], graph: Mapping[ServiceKey, set[ServiceKey]]
) -> list[list[ServiceKey]]:
    """Tarjan's algorithm, without recursion so a long chain cannot hit the stack limit."""
    index: dict[ServiceKey, int] = {}
    low: dict[ServiceKey, int] = {}
    stack: list[ServiceKey] = []
    on_stack: set[ServiceKey] = set()
    components: list[list[ServiceKey]] = []

    def visit(node: ServiceKey) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for root in nodes:
        if root in index:
            continue
        visit(root)
        work = [(root, iter(sorted(graph[root])))]
        while work:
            node, successors = work[-1]
            descended = False
            for successor in successors:
                if successor not in index:
                    visit(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    descended = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if descended:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[ServiceKey] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _cycle_through(
    start: ServiceKey, members: Set[ServiceKey], graph: Mapping[ServiceKey, set[ServiceKey]]
) -> list[ServiceKey]:
    """A shortest cycle from `start` back to it inside one strongly connected component,
    as the path without the closing `start`."""
    if start in graph[start]:
        return [start]
    parents: dict[ServiceKey, ServiceKey] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        following: list[ServiceKey] = []
        for node in frontier:
            for successor in sorted(graph[node] & members):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1]
                if successor not in seen:
                    seen.add(successor)
                    parents[successor] = node
                    following.append(successor)
        frontier = following
    return [start]
