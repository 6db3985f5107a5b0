"""Testbeds for the fleet: simulated agents that speak the real agent link protocol, and real
agents in their own network namespaces on one machine (docs/orchestrator.md).
"""
