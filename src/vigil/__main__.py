"""`python -m vigil`: the `vigil` command (how `vigil up` starts its pipeline workers)."""

from vigil.cli.main import app

app()
