"""orchestrator: specialist-first agent systems."""
