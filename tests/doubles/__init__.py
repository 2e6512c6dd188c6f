"""Shared test doubles: real local servers that speak vendors' protocols, never mocks of our code."""
