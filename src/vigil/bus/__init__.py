"""The bus: NATS JetStream streams, consumers and publishing, and the managed nats-server."""
