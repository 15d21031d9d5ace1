"""`python -m newsradar ...`: the same command as `newsradar`, for subprocesses of the local stack."""

from commands.main import app

app()
