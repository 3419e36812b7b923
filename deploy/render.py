"""Write an nginx configuration for the Tasks API into a directory nginx can run from as any user.

    python deploy/render.py --dir /srv/tasks-nginx --listen 127.0.0.1:8080 \
        --upstream 127.0.0.1:8001 --upstream 127.0.0.1:8002
    nginx -p /srv/tasks-nginx -c nginx.conf -e stderr        # add -g 'daemon off;' to stay in front

Only the standard library: an operator runs it anywhere, without the project installed.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.template"
TEMP_DIRS = ("body", "proxy", "fastcgi", "uwsgi", "scgi")


def render(
    prefix: Path,
    listen: str,
    upstreams: list[str],
    *,
    max_body_bytes: int = 1_048_576,
    auth_rate_per_min: int = 30,
    worker_processes: str = "1",
) -> Path:
    """Create `prefix` (logs/, tmp/) and `prefix`/nginx.conf; returns the config's path."""
    prefix = prefix.resolve()
    for sub in ("logs", *(f"tmp/{name}" for name in TEMP_DIRS)):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    servers = "\n".join(f"        server {address} max_fails=1 fail_timeout=10s;" for address in upstreams)
    # safe_substitute: nginx's own $variables are not placeholders and must stay as they are.
    text = Template(TEMPLATE.read_text()).safe_substitute(
        PREFIX=str(prefix),
        LISTEN=listen,
        UPSTREAM_SERVERS=servers,
        MAX_BODY_BYTES=str(max_body_bytes),
        AUTH_RATE_PER_MIN=str(auth_rate_per_min),
        # One request is allowed again after 60/rate seconds.
        RETRY_AFTER_S=str(math.ceil(60 / auth_rate_per_min)),
        WORKER_PROCESSES=worker_processes,
    )
    config = prefix / "nginx.conf"
    config.write_text(text)
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="nginx's prefix: config, logs, temp files")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="nginx's listen address (default %(default)s)")
    parser.add_argument("--upstream", action="append", required=True, help="a `just serve` instance host:port")
    parser.add_argument("--max-body-bytes", type=int, default=1_048_576, help="MAX_BODY_BYTES of the instances")
    parser.add_argument("--auth-rate-per-min", type=int, default=30, help="sign-up/sign-in per address a minute")
    parser.add_argument("--worker-processes", default="1", help="a number, or auto: one per core")
    args = parser.parse_args()
    config = render(
        args.dir,
        args.listen,
        args.upstream,
        max_body_bytes=args.max_body_bytes,
        auth_rate_per_min=args.auth_rate_per_min,
        worker_processes=args.worker_processes,
    )
    print(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
