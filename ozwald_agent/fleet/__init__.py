"""The agent's side of the fleet: one stream to the orchestrator (`--orchestrator`).

`link.FleetLink` keeps the stream open for the agent's life: it registers the host, sends
heartbeats, instance status changes, host profiles and footprints up, and applies the
assignments that come down as the agent's FLEET scope (docs/agent.md, "Joining a fleet").
"""
