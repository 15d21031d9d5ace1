"""`python -m newsradar ...`: the same command as `newsradar`, for subprocesses of the local stack."""

from newsradar.cli import app

app()
