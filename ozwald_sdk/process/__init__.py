"""What every long-running Ozwald server process needs, whichever it is (agent,
orchestrator): one holder per state directory and socket, a unix socket claimed safely,
and a correlation id with one log line per call."""
