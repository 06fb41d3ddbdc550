"""Toolsets: how the graph reaches specialists (in process here; MCP servers and clients)."""
