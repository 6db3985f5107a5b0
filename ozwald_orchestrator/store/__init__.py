"""Where the orchestrator keeps desired and observed state: a FleetStore (SQLite today)."""
