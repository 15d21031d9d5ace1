"""The real Elasticsearch node: lifecycle, capabilities, persistence and clear errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from index.capabilities import detect
from newsradar.settings import Settings
from stack import esnode as node


def test_node_is_healthy_9x_and_start_is_idempotent(es: Elasticsearch, settings: Settings) -> None:
    current = node.status(settings)
    assert current.running and current.health in ("green", "yellow")
    assert current.version is not None and current.version.startswith("9.")
    again = node.start(settings)
    assert again.running and again.pid == current.pid


def test_capabilities_of_the_local_node(es: Elasticsearch) -> None:
    caps = detect(es)
    assert caps.version.startswith("9.")
    assert "x-pack-core" in caps.modules
    # The integ-test-zip is server-only: the code must not assume these.
    assert caps.language_analyzers is caps.has("analysis-common")
    assert caps.rrf is caps.has("rank-rrf")


def test_data_survive_a_restart(es: Elasticsearch, settings: Settings) -> None:
    if node.status(settings).pid is None:
        pytest.skip("node not managed by newsradar here; restarting it is not ours to do")
    index = settings.index_name("restart-probe")
    es.index(index=index, id="kept", document={"title": "persisted"}, refresh=True)
    assert node.stop(settings)
    assert not node.status(settings).running
    node.start(settings)
    restarted = Elasticsearch(settings.es_url)
    restarted.cluster.health(index=index, wait_for_status="yellow", timeout="60s")
    assert restarted.get(index=index, id="kept")["_source"]["title"] == "persisted"


def test_port_taken_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        settings = Settings(es_url=f"http://127.0.0.1:{port}", es_home=tmp_path / "es")
        with pytest.raises(node.NodeError, match=f"Port {port}.*not Elasticsearch"):
            node.start(settings)


def test_java_too_old_is_named(tmp_path: Path) -> None:
    old = next((p for p in Path("/usr/lib/jvm").glob("*17*") if (p / "bin" / "java").exists()), None)
    if old is None:
        pytest.skip("no Java 17 on this machine to test against")
    with pytest.raises(node.NodeError, match="Java 21"):
        node.find_java(Settings(es_java_home=old))


def test_download_failure_names_versions_and_maven_output(tmp_path: Path) -> None:
    settings = Settings(es_version="0.0.0-none", es_fallback_versions=[], cache_dir=tmp_path / "cache")
    with pytest.raises(node.NodeError, match=r"Download failed(.|\n)*0\.0\.0-none"):
        node.distribution_zip(settings)


def test_transport_port_sits_beside_the_http_port(es: Elasticsearch, settings: Settings) -> None:
    """Two nodes on one machine (two worktrees) must not race for the default transport port 9300."""
    _host, port = node._host_port(settings)
    assert node.transport_port(9200) == 9300 and node.transport_port(9201) == 9301
    info = es.nodes.info(node_id="_local", metric="transport")
    published = next(iter(info["nodes"].values()))["transport"]["publish_address"]
    assert published.endswith(f":{node.transport_port(port)}")


def test_transport_port_taken_is_named(tmp_path: Path) -> None:
    with socket.socket() as http_free, socket.socket() as blocker:
        http_free.bind(("127.0.0.1", 0))
        port = http_free.getsockname()[1]
        http_free.close()
        try:
            blocker.bind(("127.0.0.1", node.transport_port(port)))
        except OSError:
            pytest.skip("the port beside a free one is in use already")
        blocker.listen(1)
        settings = Settings(es_url=f"http://127.0.0.1:{port}", es_home=tmp_path / "es")
        with pytest.raises(node.NodeError, match="Transport port"):
            node.start(settings)
