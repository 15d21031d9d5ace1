"""Quality gates: ruff and mypy stay clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_clean() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_clean() -> None:
    result = _run("mypy")  # the files listed in pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


# Rank of each product folder (see docs/architecture.md): a module imports only lower ranks or its own
# folder. Subfolders belong to their top folder (crawlers/spiders is crawlers).
RANKS = {
    "newsradar": 0,
    "crawlers": 1,
    "enrich": 2,
    "index": 3,
    "alerts": 4,
    "web": 5,
    "dagkit": 5,
    "stack": 6,
    "commands": 7,
    "dags": 8,
}


def _imports(path: Path) -> set[str]:
    """Every module a file names: imports at any depth and importlib.import_module("literal")."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    for size in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:size])
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
    return None


def _product_files() -> list[Path]:
    return [
        path
        for folder in RANKS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "sample_site" not in path.parts
    ]


def test_layers_point_one_way() -> None:
    wrong = []
    for path in _product_files():
        mine = path.relative_to(ROOT).parts[0]
        for name in _imports(path):
            theirs = name.split(".")[0]
            if theirs in RANKS and theirs != mine and RANKS[theirs] >= RANKS[mine]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name} ({mine} -> {theirs})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_no_circle_of_files() -> None:
    graph: dict[Path, set[Path]] = {}
    for path in _product_files():
        targets = {_module_file(name) for name in _imports(path)}
        graph[path] = {t for t in targets if t is not None and t != path}
    done: set[Path] = set()

    def visit(node: Path, trail: list[Path]) -> list[Path] | None:
        if node in trail:
            return [*trail[trail.index(node) :], node]
        if node in done:
            return None
        for nxt in graph.get(node, ()):
            circle = visit(nxt, [*trail, node])
            if circle:
                return circle
        done.add(node)
        return None

    for start in graph:
        circle = visit(start, [])
        assert circle is None, "circle of imports: " + " -> ".join(str(p.relative_to(ROOT)) for p in circle)
