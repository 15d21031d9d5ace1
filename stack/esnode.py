"""A real, single Elasticsearch node on loopback, managed by newsradar.

No Docker engine and no internet here, so the node is Elastic's `integ-test-zip` distribution,
fetched once from Maven Central into a cache outside the repository. ES refuses to run as root,
so when we are root it runs as a system user; its data directory sits beside the unpacked
distribution (not inside it), so data survive restarts and version upgrades.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from elasticsearch import Elasticsearch
from elasticsearch import exceptions as es_exceptions

from newsradar.settings import Settings, redact_url
from stack.services import alive, terminate

Echo = Callable[[str], None]
MAVEN_GROUP = "org.elasticsearch.distribution.integ-test-zip"
MAVEN_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy"
JVM_DIRS = (Path("/usr/lib/jvm"), Path("/opt/java"), Path("/usr/local/lib/jvm"))


class NodeError(RuntimeError):
    """A failure the operator can act on; the message says what happened and what to do."""


@dataclass(frozen=True)
class NodeStatus:
    url: str
    running: bool
    managed: bool
    pid: int | None
    version: str | None
    health: str | None
    home: Path

    def describe(self) -> str:
        if not self.running:
            return f"Elasticsearch is not running at {self.url} (node home {self.home})"
        who = f"pid {self.pid}" if self.managed else "not started by newsradar"
        return f"Elasticsearch {self.version} at {self.url}: {self.health} ({who}, home {self.home})"


def _noop(_: str) -> None:
    return None


def _host_port(settings: Settings) -> tuple[str, int]:
    parsed = urlparse(settings.es_url)
    return parsed.hostname or "127.0.0.1", parsed.port or 9200


def _client(settings: Settings, timeout: float = 5.0) -> Elasticsearch:
    return Elasticsearch(settings.es_url, request_timeout=timeout, retry_on_timeout=False, max_retries=0)


def _java_major(java: Path) -> int | None:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    return int(match.group(1)) if match else None


def find_java(settings: Settings) -> Path:
    """Return a Java home >= 21: the configured one, else the newest JDK found on the machine."""
    if settings.es_java_home is not None:
        java = settings.es_java_home / "bin" / "java"
        major = _java_major(java)
        if major is None or major < 21:
            raise NodeError(
                f"NEWSRADAR_ES_JAVA_HOME={settings.es_java_home} has no Java 21+ ({java}: "
                f"{'missing' if major is None else f'Java {major}'}). Point it at a JDK 21 or newer."
            )
        return settings.es_java_home
    found: list[tuple[int, Path]] = []
    for base in JVM_DIRS:
        if not base.is_dir():
            continue
        for home in sorted(base.iterdir()):
            java = home / "bin" / "java"
            if home.is_symlink() or not java.exists():
                continue
            major = _java_major(java)
            if major is not None:
                found.append((major, home))
    usable = [item for item in found if item[0] >= 21]
    if not usable:
        seen = ", ".join(f"{home} (Java {major})" for major, home in found) or "none"
        raise NodeError(
            "Elasticsearch 9 needs Java 21 or newer, and none was found "
            f"(looked in {', '.join(map(str, JVM_DIRS))}; found: {seen}). "
            "Install a JDK 21+ (e.g. a Temurin package) or set NEWSRADAR_ES_JAVA_HOME."
        )
    return max(usable)[1]


def distribution_zip(settings: Settings, echo: Echo = _noop) -> tuple[str, Path]:
    """Fetch the pinned distribution once; later calls find it in the cache."""
    cache = settings.cache_dir / "elasticsearch"
    versions = [settings.es_version, *[v for v in settings.es_fallback_versions if v != settings.es_version]]
    for version in versions:
        cached = cache / f"elasticsearch-{version}.zip"
        if cached.is_file() and zipfile.is_zipfile(cached):
            return version, cached
    if shutil.which("mvn") is None:
        raise NodeError(
            "Maven (mvn) is needed once to download Elasticsearch; install it (apt-get install maven)."
        )
    cache.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for version in versions:
        artifact = f"{MAVEN_GROUP}:elasticsearch:{version}:zip"
        echo(f"Downloading Elasticsearch {version} ({artifact}) from Maven Central into {cache} ...")
        proc = subprocess.run(
            ["mvn", "-B", "-q", MAVEN_PLUGIN, f"-Dartifact={artifact}", f"-DoutputDirectory={cache}"],
            capture_output=True,
            text=True,
        )
        cached = cache / f"elasticsearch-{version}.zip"
        if proc.returncode == 0 and cached.is_file():
            return version, cached
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        failures.append(f"{version}: {tail}")
        echo(f"  {version} did not resolve; trying the next pinned fallback")
    raise NodeError(
        "Download failed: no pinned Elasticsearch 9.x integ-test-zip resolved from Maven Central.\n"
        + "\n".join(failures)
        + "\nCheck the network to the Maven registry, or put a zip at "
        + f"{cache}/elasticsearch-<version>.zip and set NEWSRADAR_ES_VERSION."
    )


def _install_dir(settings: Settings, version: str) -> Path:
    return settings.es_home / f"elasticsearch-{version}"


def _pidfile(settings: Settings) -> Path:
    return settings.es_home / "run" / "elasticsearch.pid"


def _ensure_user(settings: Settings) -> str | None:
    """Create the node's system user when we are root; None means run as ourselves."""
    if os.geteuid() != 0:
        return None
    user = settings.es_user
    if subprocess.run(["id", "-u", user], capture_output=True).returncode != 0:
        proc = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise NodeError(f"could not create system user {user!r} for Elasticsearch: {proc.stderr.strip()}")
    return user


def _unpack(zip_path: Path, target: Path) -> None:
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-q", str(zip_path), "-d", str(tmp)], check=True)
    else:  # Python's zipfile drops exec bits: restore them on the launchers
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tmp)
    (inner,) = list(tmp.iterdir())
    for launcher in (inner / "bin").iterdir():
        launcher.chmod(0o755)
    jdk_bin = inner / "jdk" / "bin"
    if jdk_bin.is_dir():
        for exe in jdk_bin.iterdir():
            exe.chmod(0o755)
    inner.rename(target)
    tmp.rmdir()


def transport_port(http_port: int) -> int:
    """The node-to-node port, fixed beside the HTTP port (9200 -> 9300, 9201 -> 9301): left to its
    default range, two nodes on one machine race for 9300 and the second one's port depends on which
    started first."""
    return http_port + 100


def _write_config(settings: Settings, install: Path) -> None:
    host, port = _host_port(settings)
    data = settings.es_home / "data"
    logs = settings.es_home / "logs"
    data.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    (settings.es_home / "run").mkdir(parents=True, exist_ok=True)
    (install / "config" / "elasticsearch.yml").write_text(
        "# Written by newsradar: a single development node on loopback.\n"
        "cluster.name: newsradar-local\n"
        "node.name: newsradar-local-1\n"
        f"path.data: {data}\n"
        f"path.logs: {logs}\n"
        f"network.host: {host}\n"
        f"http.port: {port}\n"
        f"transport.port: {transport_port(port)}\n"
        "discovery.type: single-node\n"
        "xpack.security.enabled: false\n"
        "cluster.routing.allocation.disk.threshold_enabled: false\n"
        "action.destructive_requires_name: false\n"
    )
    options = install / "config" / "jvm.options.d"
    options.mkdir(exist_ok=True)
    (options / "heap.options").write_text(f"-Xms{settings.es_heap}\n-Xmx{settings.es_heap}\n")


def install(settings: Settings, echo: Echo = _noop) -> Path:
    """Download (once), unpack (once per version) and configure the node; return its directory."""
    version, zip_path = distribution_zip(settings, echo)
    target = _install_dir(settings, version)
    if not (target / "bin" / "elasticsearch").exists():
        echo(f"Unpacking Elasticsearch {version} into {target}")
        settings.es_home.mkdir(parents=True, exist_ok=True)
        _unpack(zip_path, target)
    _write_config(settings, target)
    # The config above breaks a node with security settings a previous version may have left.
    (target / "config" / "elasticsearch.keystore").unlink(missing_ok=True)
    user = _ensure_user(settings)
    if user is not None:
        subprocess.run(["chown", "-R", f"{user}:", str(settings.es_home)], check=True)
        # The system user must be able to reach the node home through its parents.
        for parent in settings.es_home.parents:
            if parent == Path("/"):
                break
            if parent.stat().st_mode & 0o001 == 0:
                raise NodeError(
                    f"{parent} is not traversable by {user}; set NEWSRADAR_ES_HOME to a path under /var/lib"
                )
    return target


def _read_pid(settings: Settings) -> int | None:
    try:
        pid = int(_pidfile(settings).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def _probe(settings: Settings) -> tuple[str | None, str | None]:
    """Health and version of whatever Elasticsearch answers at the URL, or (None, None)."""
    try:
        client = _client(settings, timeout=3.0)
        health = client.cluster.health()
        nodes = client.nodes.info(node_id="_local", metric="_none")
    except (es_exceptions.ConnectionError, es_exceptions.TransportError, es_exceptions.ApiError):
        return None, None
    versions = [node.get("version") for node in nodes.get("nodes", {}).values()]
    return str(health.get("status")), (versions[0] if versions else None)


def status(settings: Settings) -> NodeStatus:
    pid = _read_pid(settings)
    health, version = _probe(settings)
    return NodeStatus(
        url=redact_url(settings.es_url),
        running=health is not None,
        managed=pid is not None and health is not None,
        pid=pid,
        version=version,
        health=health,
        home=settings.es_home,
    )


def _log_tail(settings: Settings, lines: int = 25) -> str:
    log = settings.es_home / "logs" / "newsradar-local.log"
    if not log.is_file():
        return "(no log written yet)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_healthy(settings: Settings, timeout: float, pid: int | None = None) -> NodeStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = status(settings)
        if current.running and current.health in ("green", "yellow"):
            return current
        if pid is not None and _read_pid(settings) is None and not alive(pid):
            raise NodeError(f"Elasticsearch exited during start-up. Last log lines:\n{_log_tail(settings)}")
        time.sleep(0.5)
    raise NodeError(
        f"Elasticsearch did not become healthy within {timeout:.0f}s. Last log lines:\n{_log_tail(settings)}"
    )


def start(settings: Settings, echo: Echo = _noop) -> NodeStatus:
    """Start the node, or reuse the one already answering; idempotent."""
    current = status(settings)
    if current.running:
        echo(f"Reusing running node: {current.describe()}")
        return current
    host, port = _host_port(settings)
    if _port_open(host, port):
        raise NodeError(
            f"Port {port} on {host} is taken by a program that is not Elasticsearch. Stop it, or choose "
            f"another port with NEWSRADAR_ES_URL=http://127.0.0.1:<port>."
        )
    if _port_open(host, transport_port(port)):
        raise NodeError(
            f"Transport port {transport_port(port)} on {host} (HTTP port + 100) is taken, probably by "
            "another Elasticsearch node; choose another HTTP port with NEWSRADAR_ES_URL."
        )
    java_home = find_java(settings)
    target = install(settings, echo)
    pidfile = _pidfile(settings)
    pidfile.unlink(missing_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ES_JAVA_HOME": str(java_home),
        "LANG": "C.UTF-8",
    }
    command = [str(target / "bin" / "elasticsearch"), "-d", "-p", str(pidfile)]
    user = _ensure_user(settings)
    if user is not None:
        command = ["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in env.items()], *command]
    echo(f"Starting Elasticsearch with Java at {java_home} ...")
    began = time.monotonic()
    proc = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr)[-2000:]
        raise NodeError(
            f"Elasticsearch failed to start (exit {proc.returncode}):\n{output}\n"
            f"Last log lines:\n{_log_tail(settings)}"
        )
    pid = _read_pid(settings)
    result = wait_healthy(settings, settings.es_start_timeout, pid)
    echo(f"Elasticsearch {result.version} healthy ({result.health}) in {time.monotonic() - began:.1f}s")
    return result


def stop(settings: Settings, echo: Echo = _noop, timeout: float = 60.0) -> bool:
    """Stop the node we started, by its pid file; False when there was none to stop."""
    pid = _read_pid(settings)
    if pid is None:
        if status(settings).running:
            echo(
                f"An Elasticsearch answers at {redact_url(settings.es_url)} but was not started by "
                "newsradar; leaving it."
            )
        else:
            echo("Elasticsearch is not running.")
        return False
    terminate(pid, "Elasticsearch", echo, timeout, group=False)
    _pidfile(settings).unlink(missing_ok=True)
    echo(f"Elasticsearch (pid {pid}) stopped")
    return True
