// ozwald_host_profile: calls AgentService/GetHostProfile through the code that
// protoc and grpc_cpp_plugin generate from proto/, so CI proves the contract is
// usable from a language other than Python. Prints one `key=value` per line.
//
// Exit codes: 0 answered, 1 the call failed (gRPC status on stderr), 2 bad usage.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "ozwald/agent/v1/agent_service.grpc.pb.h"
#include "ozwald/common/v1/gpu.pb.h"

namespace {

using ozwald::agent::v1::AgentService;
using ozwald::agent::v1::GetHostProfileRequest;
using ozwald::agent::v1::GetHostProfileResponse;
using ozwald::common::v1::GpuAbsenceReason_Name;
using ozwald::common::v1::GpuVendor_Name;

constexpr auto kDeadline = std::chrono::seconds(10);

// gRPC C++ has no public lookup from code to name; people search logs for the name.
const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNRECOGNIZED";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " unix:///path/to/agent.sock\n";
    return 2;
  }
  const std::string target = argv[1];

  // The unix socket is guarded by file permissions; TCP listeners need mTLS,
  // which this client does not speak.
  std::unique_ptr<AgentService::Stub> stub =
      AgentService::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kDeadline);
  GetHostProfileResponse response;
  const grpc::Status status = stub->GetHostProfile(&context, GetHostProfileRequest(), &response);
  if (!status.ok()) {
    std::cerr << "GetHostProfile on " << target << " failed: "
              << StatusCodeName(status.error_code()) << " (" << status.error_code()
              << "): " << status.error_message() << "\n";
    return 1;
  }

  const auto& profile = response.profile();
  std::cout << "hostname=" << profile.hostname() << "\n"
            << "logical_cores=" << profile.cpu().logical_cores() << "\n"
            << "memory_total_bytes=" << profile.memory().total_bytes() << "\n";
  for (const auto& report : profile.gpu_vendors()) {
    const std::string key = "gpu." + GpuVendor_Name(report.vendor());
    std::cout << key << ".present=" << (report.present() ? "true" : "false") << "\n"
              << key << ".absence_reason=" << GpuAbsenceReason_Name(report.absence_reason())
              << "\n";
  }
  return 0;
}
