"""The documentation ships with the code: the README leads to the API reference, every relative
link of the docs resolves inside the repository, and nothing names a file outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "API.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30)
    return [ROOT / name for name in listed.stdout.decode().split("\0") if name]


def test_the_readme_links_the_api_reference() -> None:
    assert "](docs/API.md)" in (ROOT / "README.md").read_text()


def test_every_relative_link_of_the_docs_resolves_inside_the_repository() -> None:
    for doc in DOCS:
        for target in LINK.findall(doc.read_text()):
            if re.match(r"^[a-z]+:", target):
                continue  # an absolute URL
            resolved = (doc.parent / target).resolve()
            assert resolved.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
            assert resolved.exists(), f"{doc.name} links to a missing file: {target}"


def test_no_tracked_file_names_anything_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|CONTRACT\.md")
    offenders = [
        str(path.relative_to(ROOT))
        for path in tracked_files()
        if path.is_file() and outside.search(path.read_text(errors="ignore"))
    ]
    assert offenders == [], offenders
