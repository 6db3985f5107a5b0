"""Ozwald's Python SDK: typed clients for every Ozwald service, and the `ozwald` CLI.

Start with `ozwald_sdk.agent_client.AgentClient` (or `AsyncAgentClient`); every error
it raises is an `ozwald_sdk.errors.OzwaldError`.
"""
