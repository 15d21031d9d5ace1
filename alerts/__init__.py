"""Alert rules, their evaluation, and one delivery channel per file (email, Slack)."""
