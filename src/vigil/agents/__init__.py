"""Agents: the team's own over HTTP (seed 000's protocol), keyed by endpoint scheme."""
