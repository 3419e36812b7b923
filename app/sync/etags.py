"""Entity tags and the conditional headers (RFC 9110, section 13): `If-Match`, `If-None-Match`.

A task's ETag is its version, `"<version>"`. A list's ETag is a digest of the query, the total and
the (id, version) of every task on the page: it changes whenever any task in that result changes,
enters or leaves it, and costs no database work (a few microseconds per page of 20).
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable
from hashlib import blake2b

# One entity-tag of a comma-separated list: optional weakness prefix, then the quoted opaque tag.
_ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')


def task_etag(version: int) -> str:
    return f'"{version}"'


def list_etag(query: tuple[object, ...], total: int, tasks: Iterable[tuple[int, int]]) -> str:
    """The ETag of a list answer: which list (`query`), its total, and each task's (id, version)."""
    digest = blake2b(repr((query, total)).encode(), digest_size=12)
    digest.update(array("q", [n for pair in tasks for n in pair]).tobytes())
    return f'"{digest.hexdigest()}"'


def _tags(header: str) -> list[tuple[bool, str]] | None:
    """The (weak, opaque-tag) pairs of a header value; None when it is not a valid list."""
    tags: list[tuple[bool, str]] = []
    pos = 0
    header = header.strip()
    while pos < len(header):
        match = _ENTITY_TAG.match(header, pos)
        if match is None:
            return None
        tags.append((match[1] is not None, match[2]))
        pos = match.end()
    return tags


def if_match_versions(header: str | None) -> list[int] | None:
    """The versions an `If-Match` header accepts: None when any version will do (no header, `*`).

    Strong comparison: weak tags and tags that are not a version never match, so an unparseable
    header accepts nothing (the write answers 412 for an existing task, as RFC 9110 asks).
    """
    if header is None or header.strip() == "*":
        return None
    versions: list[int] = []
    for weak, tag in _tags(header) or ():
        if not weak and tag.isdigit() and len(tag) < 19:
            versions.append(int(tag))
    return versions


def none_match(header: str | None, etag: str) -> bool:
    """Whether `If-None-Match` matches `etag` (weak comparison; `*` matches any current one)."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    wanted = etag.strip('"')
    return any(tag == wanted for _, tag in _tags(header) or ())
