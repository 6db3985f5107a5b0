#!/usr/bin/env bash
# Make sure a Docker Engine answers on this machine. Installs Debian's docker.io
# when dockerd is missing and starts dockerd in the background when no engine
# answers. Idempotent: does nothing when an engine already answers.
set -euo pipefail

engine_answers() {
    # The engine's own API, not the CLI: a client binary alone proves nothing.
    curl -fsS --max-time 3 --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1
}

if engine_answers; then
    echo "docker: engine answers on /var/run/docker.sock"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "docker: no engine answers and this is not root; start the Docker Engine (sudo systemctl start docker) and add yourself to the 'docker' group" >&2
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "docker: installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io curl >/dev/null
fi

log=/var/log/ozwald-dockerd.log
echo "docker: starting dockerd (log: $log)"
# setsid: the engine must outlive the shell that started it.
setsid nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
    if engine_answers; then
        echo "docker: engine answers"
        exit 0
    fi
    sleep 1
done
echo "docker: dockerd did not answer within 60 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
