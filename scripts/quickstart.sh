#!/usr/bin/env bash
# `make quickstart`: Ozwald's main job on this host, from nothing to a real model answering.
#
#   1. the vLLM CPU image (built once, offline: scripts/build-vllm-cpu-image.sh)
#   2. the embedding model, unpacked into examples/quickstart/models
#   3. an ozwald-agent (unless one already answers on the default socket)
#   4. ozwald update_services --config examples/quickstart/ozwald.yml embed --wait
#   5. an embeddings request with the official openai client (examples/quickstart/ask.py)
#
# It prints how long each step took: the time from the command to the first answer, and
# the time from config to the first running service, with and without the one-time
# steps (image build, model download). OZWALD_QUICKSTART_T0 (ns since the epoch) is when
# `make quickstart` started, so the install counts too.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
config=examples/quickstart/ozwald.yml
t0=${OZWALD_QUICKSTART_T0:-$(date +%s%N)}

now() { date +%s%N; }
seconds() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e9 }'; }

t=$(now)
bash scripts/build-vllm-cpu-image.sh
image_ns=$(( $(now) - t ))

t=$(now)
bash scripts/fetch-embedding-model.sh examples/quickstart/models
model_ns=$(( $(now) - t ))

if "$bin/ozwald" host --json >/dev/null 2>&1; then
    echo "quickstart: an agent already answers on the default socket"
else
    mkdir -p .ozwald
    echo "quickstart: starting ozwald-agent (log: .ozwald/agent.log)"
    # setsid: the agent outlives this script, like a service would.
    setsid nohup "$bin/ozwald-agent" --log-format json >.ozwald/agent.log 2>&1 </dev/null &
    echo $! >.ozwald/agent.pid
    for _ in $(seq 1 100); do
        "$bin/ozwald" host --json >/dev/null 2>&1 && break
        if ! kill -0 "$(cat .ozwald/agent.pid)" 2>/dev/null; then
            echo "quickstart: the agent exited; its log:" >&2
            cat .ozwald/agent.log >&2
            exit 1
        fi
        sleep 0.2
    done
fi

echo
t_config=$(now)
"$bin/ozwald" update_services --config "$config" embed --wait
t_running=$(now)
echo
"$bin/ozwald" status
echo
echo "quickstart: asking embed through its portal with the openai client"
"$bin/python" examples/quickstart/ask.py
t_answer=$(now)

one_time_ns=$(( image_ns + model_ns ))
echo
echo "quickstart: timings"
printf '  %-46s %8s s\n' \
    "one-time image build (0 when already built)" "$(seconds "$image_ns")" \
    "one-time model download and unpack" "$(seconds "$model_ns")" \
    "config to first running service" "$(seconds $(( t_running - t_config )))" \
    "command to first answer" "$(seconds $(( t_answer - t0 )))" \
    "command to first answer, without one-time steps" "$(seconds $(( t_answer - t0 - one_time_ns )))"
echo
echo "Next: docs/quickstart-cpu.md, $bin/ozwald profile --config $config embed, $bin/ozwald --help."
echo "Tear down: $bin/ozwald down"
if [ -f .ozwald/agent.pid ]; then
    echo "Stop the agent with: kill \$(cat .ozwald/agent.pid) (its containers keep running)"
fi
