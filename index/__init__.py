"""The Elasticsearch side of newsradar: every index's name and mapping, indexing, story state, the
query parser and hybrid search. Builds on ``enrich`` (stages, embeddings for queries)."""
