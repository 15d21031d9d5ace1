from __future__ import annotations

from pathlib import Path

import pytest

from newsradar.settings import Settings


def test_env_prefix_and_index_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRADAR_INDEX_PREFIX", "eval-a")
    monkeypatch.setenv("NEWSRADAR_ES_URL", "http://127.0.0.1:9333")
    settings = Settings()
    assert settings.es_url == "http://127.0.0.1:9333"
    assert settings.index_name("articles") == "eval-a-articles"


def test_yaml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "newsradar.yaml"
    config.write_text("index_prefix: from-yaml\nes_heap: 2g\n")
    monkeypatch.setenv("NEWSRADAR_CONFIG", str(config))
    monkeypatch.delenv("NEWSRADAR_INDEX_PREFIX", raising=False)
    assert Settings().index_prefix == "from-yaml"
    assert Settings().es_heap == "2g"
    monkeypatch.setenv("NEWSRADAR_INDEX_PREFIX", "from-env")
    assert Settings().index_prefix == "from-env"


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEWSRADAR_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        Settings()


def test_upper_case_prefix_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRADAR_INDEX_PREFIX", "Bad")
    with pytest.raises(ValueError, match="lower case"):
        Settings()
