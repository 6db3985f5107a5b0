"""What crosses the wire in these tests: deployments sent, the ErrorInfo of errors."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from ozwald.common.v1 import service_spec_pb2
from ozwald.orchestrator.v1 import deployment_pb2

from tests.integration.orchestrator.fake_agent import GIB


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, error
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


def web(replicas: int = 1, name: str = "web") -> deployment_pb2.Deployment:
    return deployment_pb2.Deployment(
        name=name,
        realm="demo",
        service="web",
        replicas=replicas,
        candidates=[
            service_spec_pb2.ServiceSpec(
                realm="demo",
                name=name,
                variety="cpu",
                image="ozwald/tiny:local",
                resources=service_spec_pb2.ResourceRequirements(memory_bytes=GIB, cpus=1),
            )
        ],
    )
