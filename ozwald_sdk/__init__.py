"""Ozwald's Python SDK: typed clients for every Ozwald service, and the `ozwald` CLI.

Start with `ozwald_sdk.agent_client.AgentClient` (or `AsyncAgentClient`) for one host,
`ozwald_sdk.orchestrator_client.FleetClient` for the fleet; every error they raise is an
`ozwald_sdk.errors.OzwaldError`.
"""
