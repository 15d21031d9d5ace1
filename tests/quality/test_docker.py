"""The production deployment under docker/, checked without a Docker engine.

No engine runs on the machines that test newsradar, so these tests read the compose files,
Dockerfiles, scripts and Kibana objects the way Docker and Kibana would and check what can be
checked here: every file, image and variable they refer to exists; services are healthy-checked,
restarted and limited; the Airflow services share one configuration; the queue policy routes the
real DAGs' tasks; the Kibana objects aggregate only fields the articles mapping has, with types
that aggregate. `docker compose config` runs too when the client has the compose plugin.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILES = ["compose.es-single.yml", "compose.es-cluster.yml", "compose.yml"]
ENV_EXAMPLE = DOCKER / ".env.example"
SAVED_OBJECTS = DOCKER / "kibana" / "saved_objects.ndjson"
# ${VAR}, ${VAR:-default}, ${VAR:?error}; `$$` is compose's escape for a literal `$`.
_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def _compose(name: str) -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / name).read_text())
    assert isinstance(data, dict), f"{name} is not a YAML mapping"
    return data


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f".env.example:{number}: not KEY=value"
        assert key not in values, f".env.example:{number}: {key} set twice"
        values[key] = value.strip().strip("'\"")
    return values


def _interpolate(text: str, env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name, op, default = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op and op.endswith("-"):
            return default or ""
        raise AssertionError(f"${{{name}}} has no value in .env.example and no default")

    return _VAR.sub(value, text)


def _services(name: str) -> dict[str, dict[str, Any]]:
    services = _compose(name)["services"]
    assert isinstance(services, dict) and services, f"{name} defines no services"
    return services


def _all_services() -> list[tuple[str, str, dict[str, Any]]]:
    return [(file, name, svc) for file in COMPOSE_FILES for name, svc in _services(file).items()]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_parses(name: str) -> None:
    data = _compose(name)
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", data["name"]), "a fixed project name keeps volumes apart"
    for service, svc in data["services"].items():
        assert "image" in svc or "build" in svc, f"{name}: {service} has neither image nor build"


def test_build_contexts_and_dockerfiles_exist() -> None:
    checked = 0
    for file, name, svc in _all_services():
        build = svc.get("build")
        if build is None:
            continue
        build = {"context": build} if isinstance(build, str) else build
        context = (DOCKER / build["context"]).resolve()
        assert context.is_dir(), f"{file}: {name}: build context {context} does not exist"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{file}: {name}: {dockerfile} does not exist"
        assert "image" in svc, f"{file}: {name} builds an image without naming it (others reuse it by name)"
        checked += 1
    assert checked >= 4


def test_mounted_files_env_files_and_named_volumes_exist() -> None:
    bind_mounts = 0
    for file in COMPOSE_FILES:
        data = _compose(file)
        declared = set(data.get("volumes") or {})
        for name, svc in data["services"].items():
            for entry in svc.get("env_file") or []:
                entry = {"path": entry} if isinstance(entry, str) else entry
                if entry.get("required", True):
                    path = entry["path"]
                    assert (DOCKER / path).is_file(), f"{file}: {name}: env_file {path} missing"
            for volume in svc.get("volumes") or []:
                source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
                if source.startswith((".", "/")):
                    assert (DOCKER / source).resolve().exists(), f"{file}: {name}: mounts missing {source}"
                    bind_mounts += 1
                else:
                    assert source in declared, f"{file}: {name}: volume {source} is not declared"
    assert bind_mounts >= 4


def _images() -> list[tuple[str, str]]:
    env = _env_example()
    found = [(f"{file}:{name}", _interpolate(svc["image"], env)) for file, name, svc in _all_services()]
    for dockerfile in DOCKER.rglob("Dockerfile"):
        text = dockerfile.read_text()
        args = dict(re.findall(r"^ARG\s+([A-Za-z_]+)=(\S+)", text, re.M))
        for image in re.findall(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)", text, re.M):
            found.append((str(dockerfile.relative_to(ROOT)), _interpolate(image, args)))
    return found


def test_images_are_pinned() -> None:
    images = _images()
    assert len(images) >= 10
    for where, image in images:
        name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
        assert name and tag, f"{where}: image {image!r} has no tag"
        assert tag != "latest", f"{where}: image {image!r} is not pinned"
        assert re.search(r"\d", tag), f"{where}: tag of {image!r} names no version"


def test_elasticsearch_and_kibana_share_the_local_node_version() -> None:
    from newsradar.settings import Settings

    version = Settings().es_version
    assert _env_example()["STACK_VERSION"] == version
    dockerfile = (DOCKER / "elasticsearch" / "Dockerfile").read_text()
    assert f"ARG STACK_VERSION={version}" in dockerfile
    assert "docker.elastic.co/elasticsearch/elasticsearch:${STACK_VERSION}" in dockerfile
    assert re.search(r"elasticsearch-plugin install --batch analysis-icu analysis-smartcn", dockerfile)


def test_every_variable_is_documented_in_env_example() -> None:
    documented = _env_example()
    used: set[str] = set()
    for file in COMPOSE_FILES:
        used |= {match.group(1) for match in _VAR.finditer((DOCKER / file).read_text())}
    missing = sorted(used - set(documented))
    unused = sorted(set(documented) - used)
    assert not missing, f"used in compose files but not in .env.example: {missing}"
    assert not unused, f"in .env.example but used by no compose file: {unused}"


def test_secrets_are_placeholders_and_required() -> None:
    documented = _env_example()
    secret = re.compile(r"PASSWORD|SECRET|FERNET|ENCRYPTION_KEY|WEBHOOK|TOKEN")
    secrets = [key for key in documented if secret.search(key)]
    assert len(secrets) >= 10
    for key in secrets:
        assert documented[key] in ("",) or documented[key].startswith("CHANGE-ME"), (
            f".env.example holds a value for {key}: only placeholders belong there"
        )
    for file in COMPOSE_FILES:
        for match in _VAR.finditer((DOCKER / file).read_text()):
            name, op, default = match.groups()
            if secret.search(name) and op == ":-":
                assert not default, f"{file}: {name} has a default value; secrets come only from .env"
            if documented.get(name, "").startswith("CHANGE-ME"):
                assert op == ":?", f"{file}: ${{{name}}} must fail loudly when unset (use :?)"


def test_setup_script_refuses_placeholders_and_bad_passwords() -> None:
    script = DOCKER / "elasticsearch" / "setup.sh"
    good = "Abcdefgh1234-x"
    cases = {
        "CHANGE-ME-elastic-password": "replace the CHANGE-ME placeholder of ELASTIC_PASSWORD",
        "short": "ELASTIC_PASSWORD must be at least 12 characters",
        'with"quote-and-more': "ELASTIC_PASSWORD must be at least 12 characters",
    }
    for password, message in cases.items():
        env = {
            "PATH": os.environ["PATH"],
            "ES_NODES": "es01",
            "ELASTIC_PASSWORD": password,
            "KIBANA_PASSWORD": good,
            "NEWSRADAR_ES_PASSWORD": good,
        }
        proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert message in proc.stderr


def test_entrypoint_trusts_the_deployment_ca(tmp_path: Path) -> None:
    public = tmp_path / "public.pem"
    public.write_text("PUBLIC ROOTS\n")
    ca = tmp_path / "ca.crt"
    ca.write_text("DEPLOYMENT CA\n")
    bundle = tmp_path / "bundle.pem"
    env = {
        "PATH": os.environ["PATH"],
        "CA_PUBLIC": str(public),
        "CA_BUNDLE": str(bundle),
        "EXTRA_CA_CERTS": f"{ca} {tmp_path / 'missing.crt'}",
    }
    script = DOCKER / "newsradar" / "entrypoint.sh"
    proc = subprocess.run(
        ["sh", str(script), "sh", "-c", 'cat "$CA_BUNDLE"; echo "args: $0"', "passed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "PUBLIC ROOTS\nDEPLOYMENT CA\nargs: passed\n"
    assert "missing.crt" in proc.stderr


def _dockerfile_copies(dockerfile: Path) -> list[str]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    sources: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].upper() not in ("COPY", "ADD"):
            continue
        args = [part for part in parts[1:] if not part.startswith("--")]
        assert not any(part.startswith("--from") for part in parts), "multi-stage COPY not expected"
        sources.extend(args[:-1])
    return sources


def test_dockerfile_copy_sources_exist() -> None:
    contexts = {}
    for _file, _name, svc in _all_services():
        build = svc.get("build")
        if isinstance(build, dict):
            dockerfile = (DOCKER / build["context"] / build.get("dockerfile", "Dockerfile")).resolve()
            contexts[dockerfile] = (DOCKER / build["context"]).resolve()
    copied = 0
    for dockerfile, context in contexts.items():
        for source in _dockerfile_copies(dockerfile):
            assert (context / source).exists(), f"{dockerfile}: COPY source {source} missing in {context}"
            copied += 1
    assert copied >= 10, "the project image copies the lock, the project and the deploy files"


def test_project_image_installs_the_lock_and_stays_offline() -> None:
    dockerfile = (DOCKER / "newsradar" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert "HF_HUB_OFFLINE=1" in dockerfile
    assert "requirements.lock" in dockerfile and "pip install -c /opt/build/constraints.txt" in dockerfile


def test_deploy_constraints_keep_the_lock_except_replaced_pins() -> None:
    constraints = _load(DOCKER / "newsradar" / "constraints.py", "newsradar_docker_constraints")
    lock = (ROOT / "requirements.lock").read_text()
    deploy = (DOCKER / "newsradar" / "requirements-deploy.txt").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    merged, requirements = constraints.merge(lock, deploy, pyproject)

    deploy_lines = constraints.requirement_lines(deploy)
    replaced = {constraints.requirement_name(line) for line in deploy_lines}
    lock_lines = constraints.requirement_lines(lock)
    assert {constraints.requirement_name(line) for line in merged}.isdisjoint(replaced)
    assert [line for line in lock_lines if constraints.requirement_name(line) not in replaced] == merged
    assert "apache-airflow-providers-fab" in replaced and "apache-airflow-providers-celery" in replaced
    assert requirements[-len(deploy_lines) :] == deploy_lines
    assert "apache-airflow==3.3.2" in requirements and "celery==5.6.3" in requirements
    with pytest.raises(ValueError, match="must be pinned"):
        constraints.merge(lock, "redis>=5\n", pyproject)


def test_airflow_services_share_one_environment() -> None:
    data = _compose("compose.yml")
    common = data["x-airflow-common"]["environment"]
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert common["AIRFLOW__CORE__AUTH_MANAGER"] == FAB
    assert common["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert common["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    for key, value in data["x-newsradar-env"].items():
        assert common[key] == value, f"Airflow environment lacks newsradar's {key}"
    airflow = {name: svc for name, svc in data["services"].items() if name.startswith("airflow-")}
    assert {
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker-crawl",
        "airflow-worker-enrich",
    } <= set(airflow)
    image = data["x-airflow-common"]["image"]
    for name, svc in airflow.items():
        assert svc["image"] == image, f"{name} runs another image"
        for key, value in common.items():
            assert svc["environment"].get(key) == value, f"{name}: {key} differs from x-airflow-common"
    text = (DOCKER / "compose.yml").read_text()
    assert text.count("*airflow-common-env") >= 1 and text.count("<<: *airflow-common\n") == len(airflow)


def test_workers_serve_separate_queues() -> None:
    services = _services("compose.yml")
    crawl = services["airflow-worker-crawl"]["command"]
    enrich = services["airflow-worker-enrich"]["command"]
    assert crawl[:3] == ["airflow", "celery", "worker"] and crawl[crawl.index("--queues") + 1] == "crawl"
    assert enrich[:3] == ["airflow", "celery", "worker"] and enrich[enrich.index("--queues") + 1] == "enrich"
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == "enrich"
    web = services["newsradar-web"]
    assert web["command"][:2] == ["newsradar", "serve"]


def test_queue_policy_routes_the_real_dags() -> None:
    from airflow.dag_processing.dagbag import DagBag

    policy = _load(DOCKER / "newsradar" / "airflow_local_settings.py", "newsradar_airflow_local_settings")
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    routed: dict[str, set[str]] = {"crawl": set(), "enrich": set()}
    for dag in bag.dags.values():
        for task in dag.tasks:
            default = task.queue
            policy.route(task, default)
            routed[task.queue].add(f"{dag.dag_id}.{task.task_id}")
    assert "newsradar_crawl.crawl" in routed["crawl"]
    assert "newsradar_process.index" in routed["enrich"]
    assert all(policy.is_crawl_task(*name.split(".", 1)) for name in routed["crawl"])

    class Chosen:  # a task whose DAG picked a queue keeps it
        dag_id, task_id, queue = "newsradar_crawl", "fetch", "special"

    chosen = Chosen()
    policy.route(chosen, "default")
    assert chosen.queue == "special"


def test_long_running_services_have_healthchecks_restart_and_limits() -> None:
    long_running = 0
    for file, name, svc in _all_services():
        if svc.get("restart") == "no":  # one-shot set-up services
            assert "command" in svc, f"{file}: {name} is one-shot but runs the image default"
            continue
        long_running += 1
        check = svc.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{file}: {name} has no healthcheck"
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), f"{file}: {name} restart"
        limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        assert svc.get("mem_limit") or limits.get("memory"), f"{file}: {name} has no memory limit"
    assert long_running >= 15


PRODUCT_FOLDERS = ("newsradar", "crawlers", "enrich", "index", "alerts", "web", "stack", "commands", "dagkit")


def test_newsradar_variables_are_read_by_the_project() -> None:
    """A NEWSRADAR_* variable that no code reads would be a setting that silently does nothing."""
    from newsradar.settings import Settings

    fields = {f"NEWSRADAR_{name.upper()}" for name in Settings.model_fields}
    sources = "\n".join(path.read_text() for area in PRODUCT_FOLDERS for path in (ROOT / area).rglob("*.py"))
    keys = {key for svc in _services("compose.yml").values() for key in svc.get("environment") or {}}
    assert {"NEWSRADAR_ES_URL", "NEWSRADAR_ADMIN_TOKEN", "NEWSRADAR_TRANSLATION_BACKEND"} <= keys
    for key in sorted(keys):
        if not key.startswith("NEWSRADAR_"):
            continue
        prefix = "NEWSRADAR_SLACK_WEBHOOK_" if key.startswith("NEWSRADAR_SLACK_WEBHOOK_") else key
        assert key in fields or prefix in sources, f"{key} is set for the containers but nothing reads it"


def _saved_objects() -> list[dict[str, Any]]:
    objects = [json.loads(line) for line in SAVED_OBJECTS.read_text().splitlines() if line.strip()]
    assert objects, "no saved objects"
    return objects


def _mapping_fields() -> dict[str, str]:
    """Field path -> type of the production mapping (a node with analysis-common, icu and smartcn)."""
    from index.capabilities import Capabilities
    from index.mapping import articles_mapping

    caps = Capabilities(
        version="9.5.4",
        modules=frozenset({"analysis-common", "lang-painless", "reindex", "rank-rrf"}),
        plugins=frozenset({"analysis-icu", "analysis-smartcn"}),
    )
    fields: dict[str, str] = {}

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            fields[prefix + name] = spec.get("type", "object")
            for sub, sub_spec in (spec.get("fields") or {}).items():
                fields[f"{prefix}{name}.{sub}"] = sub_spec["type"]
            walk(spec.get("properties") or {}, f"{prefix}{name}.")

    walk(articles_mapping(caps)["properties"], "")
    return fields


def test_saved_objects_use_only_mapped_aggregatable_fields() -> None:
    fields = _mapping_fields()
    aggregatable = {"keyword", "date", "integer", "long", "float", "boolean"}
    objects = _saved_objects()
    by_type: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_type.setdefault(obj["type"], []).append(obj)
    assert {"index-pattern", "lens", "dashboard", "search"} <= set(by_type)

    (view,) = by_type["index-pattern"]
    assert view["attributes"]["title"].startswith("newsradar-articles")
    assert fields[view["attributes"]["timeFieldName"]] == "date"

    used: set[str] = set()
    for lens in by_type["lens"]:
        for layer in lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values():
            assert sorted(layer["columnOrder"]) == sorted(layer["columns"])
            for column in layer["columns"].values():
                field = column["sourceField"]
                if field == "___records___":
                    continue
                assert field in fields, f"{lens['id']}: {field} is not in the articles mapping"
                kind = fields[field]
                assert kind in aggregatable, f"{lens['id']}: {field} ({kind}) cannot aggregate"
                used.add(field)
    assert {"lang", "event_types", "story_id", "first_seen_at", "published_at"} <= used

    for search in by_type["search"]:
        for field in search["attributes"]["columns"]:
            assert field in fields, f"{search['id']}: column {field} is not in the articles mapping"
        for field, _order in search["attributes"]["sort"]:
            assert fields.get(field) in aggregatable, f"{search['id']}: cannot sort on {field}"


def test_saved_objects_references_resolve() -> None:
    objects = _saved_objects()
    ids = {(obj["type"], obj["id"]) for obj in objects}
    assert len(ids) == len(objects), "duplicate saved-object ids"
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, f"{obj['id']} refers to missing {ref}"
        names = {ref["name"] for ref in obj["references"]}
        if obj["type"] == "lens":
            for layer in obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]:
                assert f"indexpattern-datasource-layer-{layer}" in names
        if obj["type"] == "search":
            source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
            assert source["indexRefName"] in names
        if obj["type"] == "dashboard":
            panels = json.loads(obj["attributes"]["panelsJSON"])
            assert len(panels) >= 4
            for panel in panels:
                assert f"{panel['panelIndex']}:{panel['panelRefName']}" in names


def test_scripts_parse() -> None:
    for script, shell in [
        (DOCKER / "elasticsearch" / "setup.sh", "bash"),
        (DOCKER / "kibana" / "import.sh", "bash"),
        (DOCKER / "newsradar" / "entrypoint.sh", "sh"),
    ]:
        proc = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"
        assert os.access(script, os.X_OK), f"{script} is not executable"


def _compose_client() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client on PATH"
    proc = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"the docker client has no compose plugin ({(proc.stderr or proc.stdout).strip()[:120]})"
    return None


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_docker_compose_config(name: str) -> None:
    reason = _compose_client()
    if reason:
        print(f"skipping docker compose config: {reason}", file=sys.stderr)
        pytest.skip(reason)
    proc = subprocess.run(
        ["docker", "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(DOCKER / name), "config", "-q"],
        cwd=DOCKER,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
