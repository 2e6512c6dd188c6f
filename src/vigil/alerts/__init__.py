"""Alerts from Alertmanager and Grafana, into incidents."""
