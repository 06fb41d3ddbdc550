"""Graph files shipped with orchestrator, and the JSON Schema they follow."""
