"""Host ports: claimed once across the plan, free on the host unless Ozwald holds them."""

from __future__ import annotations

from tests.unit.admission.builders import (
    FakeHostFacts,
    make_plan,
    reasons,
    running,
    service,
)


def test_a_port_something_else_listens_on_is_refused() -> None:
    facts = FakeHostFacts(listening={("127.0.0.1", 8080)})

    result = make_plan([service("web", ports=[8080])], facts=facts)

    assert reasons(result) == [("web", "HOST_PORT_TAKEN")]
    assert result.refusals[0].subject == "127.0.0.1:8080"
    assert result.refusals[0].message == (
        "portal 'p0' wants host port 127.0.0.1:8080, which something Ozwald does not run "
        "already listens on"
    )
    assert "ss -ltnp" in result.refusals[0].remedy


def test_a_port_claimed_by_two_services_of_the_plan_is_refused_once() -> None:
    result = make_plan([service("a", ports=[8080]), service("b", ports=[8080])])

    assert reasons(result) == [("b", "PORT_CLAIMED_TWICE")]
    assert result.refusals[0].message == (
        "portal 'p0' wants host port 127.0.0.1:8080, claimed by default:a's portal 'p0'"
    )
    assert [r.name for r in result.refusals[0].involved] == ["a"]


def test_a_wildcard_address_collides_with_every_address_of_its_port() -> None:
    result = make_plan([service("a", ports=[("0.0.0.0", 8080)]), service("b", ports=[8080])])

    assert reasons(result) == [("b", "PORT_CLAIMED_TWICE")]
    assert "which overlaps 0.0.0.0:8080" in result.refusals[0].message


def test_the_same_port_on_two_addresses_and_two_ports_on_one_address_are_fine() -> None:
    result = make_plan(
        [
            service("a", ports=[("127.0.0.1", 8080), ("127.0.0.1", 8081)]),
            service("b", ports=[("10.0.0.5", 8080)]),
        ]
    )

    assert result.admitted, result.refusals


def test_one_service_claiming_a_port_twice_is_refused() -> None:
    result = make_plan([service("a", ports=[8080, 8080])])

    assert reasons(result) == [("a", "PORT_CLAIMED_TWICE")]
    assert "claimed by its own portal 'p0'" in result.refusals[0].message
    assert not result.refusals[0].involved


def test_an_empty_host_ip_is_the_default_loopback_address() -> None:
    spec = service("a")
    spec.portals.add(name="http", host_port=8080, container_port=80)

    result = make_plan([spec, service("b", ports=[("127.0.0.1", 8080)])])

    assert reasons(result) == [("b", "PORT_CLAIMED_TWICE")]


def test_ipv6_addresses_are_bracketed() -> None:
    facts = FakeHostFacts(listening={("::1", 9000)})

    result = make_plan([service("a", ports=[("::1", 9000)])], facts=facts)

    assert result.refusals[0].subject == "[::1]:9000"


def test_a_kept_service_keeps_its_port() -> None:
    kept = service("kept", ports=[8080])
    facts = FakeHostFacts(listening={("127.0.0.1", 8080)})

    result = make_plan([kept, service("new", ports=[8080])], [running(kept)], facts=facts)

    assert reasons(result) == [("new", "PORT_CLAIMED_TWICE")]
    assert [r.name for r in result.refusals[0].involved] == ["kept"]


def test_ports_of_stopping_and_restarting_services_are_not_asked_of_the_host() -> None:
    # Our own containers listen there now; the plan stops or replaces them.
    leaving = service("leaving", ports=[8080])
    changing = service("changing", image="ozwald/tiny:local", ports=[("0.0.0.0", 9090)])
    changed = service("changing", command=["serve", "--fast"], ports=[("0.0.0.0", 9090)])
    facts = FakeHostFacts(listening={("127.0.0.1", 8080), ("0.0.0.0", 9090)})

    result = make_plan(
        [changed, service("arriving", ports=[8080])],
        [running(leaving), running(changing)],
        facts=facts,
    )

    assert result.admitted, result.refusals
    assert not [q for q in facts.asked if q[0] == "port"]


def test_a_persistent_service_keeps_its_port() -> None:
    db = service("db", ports=[5432])

    result = make_plan([service("other-db", ports=[5432])], [running(db, persistent=True)])

    assert reasons(result) == [("other-db", "PORT_CLAIMED_TWICE")]


def test_a_wildcard_claimed_after_a_specific_address_collides_too() -> None:
    result = make_plan([service("a", ports=[8080]), service("b", ports=[("::", 8080)])])

    assert reasons(result) == [("b", "PORT_CLAIMED_TWICE")]
    assert "[::]:8080, which overlaps 127.0.0.1:8080" in result.refusals[0].message
