"""ozwald-orchestrator: fleet desired state, placement, health and recovery (docs/orchestrator.md).

It talks to agents and operators only over gRPC (proto/ozwald/orchestrator/v1) and imports
nothing from ozwald_agent.
"""
