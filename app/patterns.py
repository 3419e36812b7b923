"""Text rules as regular expressions, shared by every request struct.

The decoder (msgspec) enforces a struct field's `pattern`, and the OpenAPI document shows the same
pattern, so the document says exactly what is accepted. Whitespace is spelled out rather than
written `\\s`, which means one set in Python (`str.strip`, msgspec) and another in JSON Schema's
ECMA-262 regexes (U+001C-U+001F and U+0085 versus U+FEFF): this class is Python's set, and both
read it alike. No text may hold NUL, which PostgreSQL cannot store.
"""

from __future__ import annotations

WHITESPACE = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL_PATTERN = r"^[^\x00]*$"


def trimmed_pattern(max_chars: int) -> str:
    """1 to `max_chars` characters once leading/trailing whitespace is trimmed; no NUL anywhere."""
    ws = WHITESPACE
    return rf"^[{ws}]*[^{ws}\x00](?:[^\x00]{{0,{max_chars - 2}}}[^{ws}\x00])?[{ws}]*$"
