"""Deployments that placement or the agents could not honour are refused before storing."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from ozwald.common.v1 import error_reason_pb2
from ozwald.orchestrator.v1 import deployment_pb2

from ozwald_orchestrator.rpc_errors import OrchestratorError
from ozwald_orchestrator.validation import deployment_problems, validate_request
from tests.unit.orchestrator.fakes import deployment


def test_a_well_formed_deployment_has_no_problems() -> None:
    assert deployment_problems(deployment("web", 3)) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: setattr(d, "name", "Web_1"), "is not a deployment name"),
        (lambda d: setattr(d, "replicas", 1001), "exceeds the limit of 1000"),
        (lambda d: d.ClearField("candidates"), "no candidates"),
        (lambda d: setattr(d.candidates[0], "realm", "other"), "belongs to realm 'other'"),
        (lambda d: d.candidates[0].depends_on.append("db"), "depends on db"),
        (lambda d: setattr(d.candidates[0], "image", ""), "has no image"),
        (lambda d: d.candidates[0].resources.gpus.device_ids.append("0"), "pins GPU device ids"),
        (lambda d: d.candidates.append(d.candidates[0]), "repeats variety 'cpu'"),
    ],
    ids=["name", "replicas", "candidates", "realm", "depends-on", "image", "device-ids", "variety"],
)
def test_each_problem_is_named(
    change: Callable[[deployment_pb2.Deployment], object], words: str
) -> None:
    web = deployment("web", 1)
    change(web)
    assert any(words in problem for problem in deployment_problems(web)), deployment_problems(web)


def test_an_invalid_request_names_the_deployment_and_its_reason() -> None:
    bad = deployment("db", 1)
    bad.candidates[0].depends_on.append("cache")
    with pytest.raises(OrchestratorError) as refused:
        validate_request([deployment("web"), bad], [])
    error = refused.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == error_reason_pb2.ERROR_REASON_DEPLOYMENT_INVALID
    assert error.metadata == {"deployment": "db"}
    assert "cache" in error.message


def test_a_name_given_twice_is_invalid() -> None:
    with pytest.raises(OrchestratorError, match="names it twice"):
        validate_request([deployment("web"), deployment("web", 2)], [])
