"""The Elasticsearch side of newsradar: the local node, capabilities, mapping, indexing and search."""
