"""Plain functions and clients the agents (and the service, MCP server and CLI) call.

Each agent-facing function returns JSON-serialisable data; failures come back as a structured
`{"error": {...}}` (see `tools.errors`) instead of raising, so the model can read and act on them.
"""
