"""Enrichment of `Article` records: language, duplicates and stories, translation, embeddings, events.

Plain typed functions with no Airflow imports; the DAGs only call them.
"""
