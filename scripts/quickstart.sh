#!/usr/bin/env bash
# `make quickstart`: start an ozwald-agent on this host (unless one already answers on
# the default socket) and show the host profile it measured.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

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

"$bin/ozwald" host
echo
echo "The agent keeps running. Machine-readable: $bin/ozwald host --json"
if [ -f .ozwald/agent.pid ]; then
    echo "Stop it with: kill \$(cat .ozwald/agent.pid)"
fi
