"""Streaming anomaly detection for numeric series."""
