"""`just openapi`: the app's OpenAPI document, written to the committed `openapi.json`.

Clients are generated from that file (clients/typescript), so it must be byte-for-byte
reproducible: the app is built from fixed settings (never the environment or `.env`), keys are
sorted and the formatting is fixed. tests/test_openapi_export.py fails when the file drifts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from app.config import Settings
from app.main import create_app

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "openapi.json"

# Only what create_app() insists on; nothing here reaches the document. The pool is created
# closed and never opened: no database is contacted. A secret (with the default HS256) keeps
# the built-in accounts in, as a default deployment has them.
_EXPORT_ENV = {
    "DATABASE_URL": "postgresql://openapi-export.invalid/tasks",
    "JWT_SECRET": "openapi-export-not-a-secret-0123456789abcdef",
}


def document() -> dict[str, Any]:
    """The OpenAPI document the app serves at /schema/openapi.json with default settings."""
    app = create_app(Settings.from_mapping(_EXPORT_ENV))
    return app.openapi_schema.to_schema()


def render(doc: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, non-ASCII kept, one final newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    OPENAPI_FILE.write_text(render(document()), encoding="utf-8")
    print(f"wrote {OPENAPI_FILE.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
