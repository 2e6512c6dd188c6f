"""State: projects, keys, pipelines, sinks, batches, outputs and dead letters (SQLAlchemy)."""
