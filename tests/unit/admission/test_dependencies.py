"""depends_on: missing dependencies, cycles, and the orders to stop and start in."""

from __future__ import annotations

from tests.unit.admission.builders import (
    make_plan,
    names,
    reasons,
    running,
    service,
)


def test_a_dependency_that_will_not_run_is_refused_with_a_close_name() -> None:
    result = make_plan([service("api", depends_on=["postgress"]), service("postgres")])

    assert reasons(result) == [("api", "DEPENDENCY_MISSING")]
    refusal = result.refusals[0]
    assert refusal.subject == "postgress"
    assert refusal.message == (
        "depends on 'postgress', which is neither desired nor a persistent service of realm "
        "'default'"
    )
    assert refusal.remedy.startswith("did you mean 'postgres'?")


def test_removing_the_dependency_of_a_kept_service_is_refused() -> None:
    api = service("api", depends_on=["db"])
    db = service("db")

    result = make_plan([api], [running(api), running(db)])

    assert reasons(result) == [("api", "DEPENDENCY_MISSING")]
    assert "which this update stops" in result.refusals[0].message


def test_a_persistent_service_satisfies_a_dependency() -> None:
    db = service("db")

    result = make_plan([service("api", depends_on=["db"])], [running(db, persistent=True)])

    assert result.admitted, result.refusals


def test_dependencies_do_not_cross_realms() -> None:
    result = make_plan(
        [service("api", realm="shop", depends_on=["db"]), service("db", realm="blog")]
    )

    assert reasons(result) == [("api", "DEPENDENCY_MISSING")]
    assert result.refusals[0].realm == "shop"


def test_every_service_on_a_cycle_is_refused_and_the_cycle_is_named() -> None:
    result = make_plan(
        [
            service("a", depends_on=["b"]),
            service("b", depends_on=["c"]),
            service("c", depends_on=["a"]),
            service("d", depends_on=["a"]),
        ]
    )

    assert reasons(result) == [
        ("a", "DEPENDENCY_CYCLE"),
        ("b", "DEPENDENCY_CYCLE"),
        ("c", "DEPENDENCY_CYCLE"),
    ]
    for refusal in result.refusals:
        assert refusal.message == (
            "depends_on forms a cycle: default:a -> default:b -> default:c -> default:a"
        )
    assert names(result.refusals[0].involved) == ["b", "c"]
    # Order is still given, cycle members (and what depends on them) last.
    assert names(result.start_order) == ["a", "b", "c", "d"]


def test_a_service_depending_on_itself_is_a_cycle() -> None:
    result = make_plan([service("a", depends_on=["a"])])

    assert reasons(result) == [("a", "DEPENDENCY_CYCLE")]
    assert result.refusals[0].message == "depends_on forms a cycle: default:a -> default:a"


def test_the_shortest_cycle_through_the_first_member_is_named() -> None:
    result = make_plan(
        [
            service("a", depends_on=["b", "c"]),
            service("b", depends_on=["c"]),
            service("c", depends_on=["a"]),
        ]
    )

    assert {r.message for r in result.refusals} == {
        "depends_on forms a cycle: default:a -> default:c -> default:a"
    }


def test_services_start_after_their_dependencies_and_stop_before_them() -> None:
    old_web = service("web", depends_on=["api"])
    old_api = service("api", depends_on=["db"])
    old_db = service("db")
    now = [running(old_web), running(old_api), running(old_db)]
    desired = [
        service("proxy", depends_on=["web"]),
        service("web", depends_on=["api"], command=["v2"]),
        service("api", depends_on=["db"], command=["v2"]),
        service("db", command=["v2"]),
        service("cache"),
    ]

    result = make_plan(desired, now)

    assert result.admitted, result.refusals
    assert names(result.stop_order) == ["web", "api", "db"]
    assert names(result.start_order) == ["cache", "db", "api", "web", "proxy"]


def test_a_chain_longer_than_the_recursion_limit_is_ordered() -> None:
    chain = [
        service(f"s{i:04d}", depends_on=[f"s{i + 1:04d}"] if i < 1999 else []) for i in range(2000)
    ]

    result = make_plan(chain)

    assert result.admitted
    assert names(result.start_order) == [f"s{i:04d}" for i in reversed(range(2000))]
