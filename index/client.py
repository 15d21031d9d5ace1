"""The Elasticsearch client, configured once from settings."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from newsradar.settings import Settings


def get_client(settings: Settings, timeout: float = 30.0) -> Elasticsearch:
    return Elasticsearch(settings.es_hosts, request_timeout=timeout, retry_on_timeout=True, max_retries=3)
