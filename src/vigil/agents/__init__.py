"""Agents: the team's own over HTTP (the agent protocol), keyed by endpoint scheme."""
