from __future__ import annotations

from ozwald.common.v1 import service_spec_pb2

from ozwald_agent.admission.dependencies import stop_order
from ozwald_agent.provisioning.reconciler import _stop_waves


def _specs(**depends: list[str]) -> dict[tuple[str, str], service_spec_pb2.ServiceSpec]:
    return {
        ("r", name): service_spec_pb2.ServiceSpec(realm="r", name=name, depends_on=deps)
        for name, deps in depends.items()
    }


def test_dependents_stop_in_an_earlier_wave_than_what_they_depend_on() -> None:
    specs = _specs(db=[], api=["db"], web=["api"], worker=["db"], lone=[])
    waves = _stop_waves(stop_order(specs, specs.keys()), specs)
    position = {key[1]: i for i, wave in enumerate(waves) for key in wave}
    assert position["web"] < position["api"] < position["db"]
    assert position["worker"] < position["db"]
    # Independent services share a wave: that is the point of waves.
    assert {"web", "worker", "lone"} <= {key[1] for key in waves[0]}


def test_services_outside_the_stop_set_do_not_hold_a_wave_back() -> None:
    specs = _specs(db=[], api=["db"])
    assert _stop_waves([("r", "db")], specs) == [[("r", "db")]]


def test_a_cycle_still_ends() -> None:
    specs = _specs(a=["b"], b=["a"])
    waves = _stop_waves([("r", "a"), ("r", "b")], specs)
    assert sorted(key for wave in waves for key in wave) == [("r", "a"), ("r", "b")]
