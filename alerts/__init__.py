"""Alert rules, their evaluation over the index, the outbox, and one delivery channel per file."""
