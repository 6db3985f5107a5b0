#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, where the repository was copied but nothing installed (no
# Docker either): print the host profile as JSON, record a hardware snapshot, and run the
# gpu-marked tests. With $OUT set, host_profile.json and nvidia_real_snapshot.json go there.
# Wheels in .whl/ (e.g. the protobuf the generated code needs, the docker SDK) are installed
# into a temporary directory first, for hosts that lack them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

site=""
if compgen -G ".whl/*.whl" >/dev/null; then
    site="$(mktemp -d)"
    trap 'rm -rf "$site"' EXIT
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
fi
export PYTHONPATH="${site:+$site:}gen/python:.${PYTHONPATH:+:$PYTHONPATH}"

python3 - <<'PY'
import json
import os
from pathlib import Path

from google.protobuf import json_format

from ozwald_agent.hardware.profile import collect_host_profile
from ozwald_agent.hardware.snapshot import record_snapshot
from ozwald_sdk.paths import default_agent_state_dir

profile = json_format.MessageToJson(collect_host_profile(default_agent_state_dir()))
print(profile)
if os.environ.get("OUT"):
    out = Path(os.environ["OUT"])
    (out / "host_profile.json").write_text(profile + "\n")
    snapshot = record_snapshot(description="recorded by scripts/gpu-check.sh")
    (out / "nvidia_real_snapshot.json").write_text(json.dumps(snapshot, indent=2) + "\n")
PY

# The real agent on this GPU host, asked through the real CLI over its unix socket.
run_dir="$(mktemp -d /tmp/oz-gpu-XXXX)"
python3 -m ozwald_agent.main --socket "$run_dir/agent.sock" --state-dir "$run_dir/state" \
    --log-format json >"$run_dir/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 100); do
    [ -S "$run_dir/agent.sock" ] && break
    sleep 0.1
done
python3 -m ozwald_sdk.cli.main --agent "unix://$run_dir/agent.sock" host
kill -TERM "$agent_pid"
wait "$agent_pid"
echo "agent exited $? after SIGTERM; socket left behind: $([ -e "$run_dir/agent.sock" ] && echo yes || echo no)"

python3 -m pytest -m gpu tests/gpu -p no:cacheprovider --run-gpu -o addopts=''
