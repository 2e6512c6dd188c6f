"""Edges where telemetry enters: OTLP over HTTP and gRPC, and agents' outputs."""
