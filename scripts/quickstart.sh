#!/usr/bin/env bash
# `make quickstart`: Ozwald's main job on this host. Starts an ozwald-agent (unless one
# already answers on the default socket), shows the host profile it measured, provisions
# the services of examples/tiny/ozwald.yml, waits until they are healthy and asks one of
# them a question through its portal.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
config=examples/tiny/ozwald.yml

bash scripts/build-tiny-image.sh

if "$bin/ozwald" host --json >/dev/null 2>&1; then
    echo "quickstart: an agent already answers on the default socket"
else
    mkdir -p .ozwald
    echo "quickstart: starting ozwald-agent (log: .ozwald/agent.log)"
    # setsid: the agent outlives this script, like a service would.
    setsid nohup "$bin/ozwald-agent" --config "$config" --log-format json \
        >.ozwald/agent.log 2>&1 </dev/null &
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
"$bin/ozwald" update_services --config "$config" echo caller --wait
echo
"$bin/ozwald" status
echo
echo "quickstart: asking echo through its portal: curl http://127.0.0.1:18080/cgi-bin/echo"
curl -fsS http://127.0.0.1:18080/cgi-bin/echo
echo
echo "Next: $bin/ozwald --help; docs/walkthrough-single-host.md. Tear down: $bin/ozwald down"
if [ -f .ozwald/agent.pid ]; then
    echo "Stop the agent with: kill \$(cat .ozwald/agent.pid) (its containers keep running)"
fi
