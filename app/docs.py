"""The interactive docs page (Scalar), loading one exact, integrity-checked script.

People paste their bearer token on this page, so the script that runs there is pinned: an exact
version of `@scalar/api-reference` and its subresource-integrity hash, so a changed file on the CDN
is refused by the browser instead of run. Litestar's plugin loads `@latest` without integrity, and a
stylesheet from a branch (`@main`) of another repository; this page loads only the pinned script
(its bundle carries its own styles).

To upgrade: pick the version, then hash the very file the CDN serves, from the npm tarball:
    npm pack @scalar/api-reference@X.Y.Z
    tar xzf scalar-api-reference-X.Y.Z.tgz package/dist/browser/standalone.js
    echo "sha384-$(openssl dgst -sha384 -binary package/dist/browser/standalone.js | openssl base64 -A)"
(`tests/test_operations.py` re-computes it when npm can fetch the package.)
"""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Request
from litestar.openapi.plugins import ScalarRenderPlugin

SCALAR_VERSION = "1.76.0"
SCALAR_FILE = "dist/browser/standalone.js"
SCALAR_URL = f"https://cdn.jsdelivr.net/npm/@scalar/api-reference@{SCALAR_VERSION}/{SCALAR_FILE}"
SCALAR_INTEGRITY = "sha384-oH1C0RwqcwbVXkC+r8A+4qRoyEUQdtxAzOwumkxZtQBBcsy61FOoPt7B50OVJYYQ"


class PinnedScalarPlugin(ScalarRenderPlugin):
    """Scalar at `SCALAR_URL`, with `integrity` and `crossorigin` (needed for integrity on a CDN)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(js_url=SCALAR_URL, **kwargs)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema["info"]["title"]))
        spec_url = escape(self.get_openapi_json_route(request))
        return f"""<!DOCTYPE html>
<html>
  <head>
    <title>{title}</title>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1">
  </head>
  <body>
    <noscript>Scalar requires JavaScript to show the documentation.</noscript>
    <script id="api-reference" data-url="{spec_url}"></script>
    <script src="{SCALAR_URL}" integrity="{SCALAR_INTEGRITY}" crossorigin="anonymous"></script>
  </body>
</html>
""".encode()
