"""Vigil's MCP server (on the official `mcp` SDK): `/mcp` on the API port, and `vigil mcp` on stdio."""
