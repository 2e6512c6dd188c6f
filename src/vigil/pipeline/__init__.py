"""Per project and pipeline: filter, batch, deliver to the agent."""
