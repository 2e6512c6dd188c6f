"""Shared test doubles: real local servers that speak vendors' protocols, never mocks of our code.

Each is a real HTTP server on 127.0.0.1, port 0, in a thread (`_server.LocalServer`; the API doubles
route through `_rest.RestServer`), used as `with X() as server:` or `async with X() as server:`, and
recording every request (`server.requests`, `server.fail_next(...)`, `server.delay_next(...)`).

Agents and sinks: agent, openai_server, anthropic_server, gemini_server, slack_server,
webhook_receiver, s3_server. Remediation and investigation: kubernetes_server (with k8s_cluster,
k8s_patch), docker_server, prometheus_server, loki_server, elasticsearch_server. Tickets:
github_server, gitlab_server, jira_server, linear_server (with _graphql). Alert webhook bodies:
alerts (Alertmanager v4, Grafana). The tests in tests/doubles_tests drive each with the vendor's
official client, so a double that drifts from the real protocol fails there.
"""
