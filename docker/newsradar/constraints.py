"""Merge requirements.lock with the production image's extra pins into pip inputs.

The lock is the tested dependency set of the project; the image installs the default pipeline plus the
`celery` extra (CeleryExecutor, Redis, PostgreSQL) and adds the FAB packages, two of which need older
pins of packages the lock also names. pip cannot
override a constraint, so the lock's line is dropped wherever requirements-deploy.txt pins the same
package, and everything else stays exactly as locked.

Usage: python constraints.py LOCK DEPLOY PYPROJECT OUTDIR
writes OUTDIR/constraints.txt (for `pip install -c`) and OUTDIR/requirements.txt (for `-r`: the
project's dependencies plus the deploy pins), so dependencies install before the source is copied.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

EXTRA = "celery"  # the production executor; the other extras (torch, Argos) stay out of the image
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalise(name: str) -> str:
    """PEP 503 normalisation, so `Foo_Bar` in one file matches `foo-bar` in the other."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def requirement_name(line: str) -> str:
    match = _NAME.match(line)
    if not match:
        raise ValueError(f"cannot read a package name from requirement line {line!r}")
    return normalise(match.group(1))


def merge(lock_text: str, deploy_text: str, pyproject_text: str) -> tuple[list[str], list[str]]:
    """Return (constraints, requirements)."""
    deploy = requirement_lines(deploy_text)
    for line in deploy:
        if "==" not in line:
            raise ValueError(f"deploy requirement {line!r} must be pinned with ==")
    replaced = {requirement_name(line) for line in deploy}
    constraints = [line for line in requirement_lines(lock_text) if requirement_name(line) not in replaced]
    project = tomllib.loads(pyproject_text)["project"]
    return constraints, [*project["dependencies"], *project["optional-dependencies"][EXTRA], *deploy]


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    lock, deploy, pyproject, outdir = (Path(arg) for arg in argv[1:])
    constraints, requirements = merge(lock.read_text(), deploy.read_text(), pyproject.read_text())
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "constraints.txt").write_text("\n".join(constraints) + "\n")
    (outdir / "requirements.txt").write_text("\n".join(requirements) + "\n")
    print(f"{len(constraints)} constraints, {len(requirements)} requirements -> {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
