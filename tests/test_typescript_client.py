"""A typed client: TypeScript types generated from the committed openapi.json (openapi-typescript)
type-check the sample client (clients/typescript), which then runs the seed frontend's calls
against the real service.

Needs Node 20 and npm: required in CI (`.ci/run` runs `npm ci`), skipped elsewhere without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import LiveServer

CLIENT = Path(__file__).resolve().parent.parent / "clients" / "typescript"


def npm(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["npm", *args], cwd=CLIENT, capture_output=True, text=True, timeout=timeout, check=False)


def npx(*args: str) -> subprocess.CompletedProcess[str]:
    # --no: only the pinned packages of package-lock.json, never a download on the fly.
    return subprocess.run(["npx", "--no", *args], cwd=CLIENT, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def generated() -> Path:
    if shutil.which("npm") is None and not os.environ.get("CI"):
        pytest.skip("Node.js/npm are not installed; CI runs this")
    if not (CLIENT / "node_modules" / ".bin" / "tsc").exists():
        installed = npm("ci", "--no-audit", "--no-fund")
        assert installed.returncode == 0, installed.stdout + installed.stderr
    result = npx("openapi-typescript", "../../openapi.json", "-o", "src/api.d.ts")
    assert result.returncode == 0, result.stdout + result.stderr
    return CLIENT / "src" / "api.d.ts"


def test_the_sample_client_type_checks_against_the_generated_types(generated: Path) -> None:
    assert "TaskListEnvelope" in generated.read_text()
    result = npx("tsc", "--noEmit")
    assert result.returncode == 0, f"type errors in clients/typescript:\n{result.stdout}{result.stderr}"


def test_a_type_error_is_caught(generated: Path) -> None:
    # The check is not vacuous: a field the API does not have fails the build.
    wrong = CLIENT / "src" / "wrong_field.ts"
    wrong.write_text('import type { Task } from "./client.js";\nexport const f = (t: Task): boolean => t.done;\n')
    try:
        result = npx("tsc", "--noEmit")
    finally:
        wrong.unlink()
    assert result.returncode != 0
    assert "Property 'done' does not exist" in result.stdout


def test_the_sample_client_runs_the_seed_frontends_calls(generated: Path, live: LiveServer) -> None:
    built = npx("tsc")
    assert built.returncode == 0, built.stdout + built.stderr
    result = subprocess.run(
        ["node", "dist/demo.js", live.url], cwd=CLIENT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"ok":true' in result.stdout
