"""Vigil's built-in agents, run in-process by the pipeline (`builtin:<name>` endpoints)."""
