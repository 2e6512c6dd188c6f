"""HTTP surfaces: the management API and the data plane."""
