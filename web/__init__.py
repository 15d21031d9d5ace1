"""The analysts' web UI and JSON API, above search (``index``) and alert rules (``alerts``)."""
