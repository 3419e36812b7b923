"""Account shapes on the wire. Request structs are decoded strictly; their constraints are the docs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.patterns import NO_NUL_PATTERN, WHITESPACE, trimmed_pattern

EMAIL_MAX_CHARS = 254
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 128

# Syntactic only (deliverability is not something a regex can tell): one "@", no whitespace or
# control characters, a domain of at least two non-empty dot-separated labels. Surrounding
# whitespace is allowed and trimmed before storing. (Whitespace spelled out: see app/patterns.py.)
_NOT_IN_EMAIL = rf"{WHITESPACE}@\x00-\x1f\x7f"
EMAIL_PATTERN = rf"^[{WHITESPACE}]*[^{_NOT_IN_EMAIL}]+@[^{_NOT_IN_EMAIL}.]+(?:\.[^{_NOT_IN_EMAIL}.]+)+[{WHITESPACE}]*$"
NAME_MAX_CHARS = 100
NAME_PATTERN = trimmed_pattern(NAME_MAX_CHARS)

Email = Annotated[
    str,
    Meta(
        max_length=EMAIL_MAX_CHARS,
        pattern=EMAIL_PATTERN,
        description="An email address (one @, a domain with a dot, no spaces), at most 254 characters; "
        "trimmed; unique case-insensitively.",
        examples=["ada@example.com"],
    ),
]
Name = Annotated[
    str,
    Meta(
        pattern=NAME_PATTERN,
        description="Trimmed, then 1-100 characters; no NUL characters.",
        examples=["Ada Lovelace"],
    ),
]
NewPassword = Annotated[
    str,
    Meta(
        min_length=PASSWORD_MIN_CHARS,
        max_length=PASSWORD_MAX_CHARS,
        pattern=NO_NUL_PATTERN,
        description="8-128 characters (characters, not bytes); no NUL characters. Stored only as an Argon2id hash.",
        examples=["correct horse battery staple"],
    ),
]
SignInEmail = Annotated[
    str,
    Meta(max_length=EMAIL_MAX_CHARS, pattern=NO_NUL_PATTERN, examples=["ada@example.com"]),
]
SignInPassword = Annotated[
    str,
    Meta(max_length=PASSWORD_MAX_CHARS, pattern=NO_NUL_PATTERN, examples=["correct horse battery staple"]),
]

SIGN_UP_RULES = {
    "email": "email must be a valid address (one @, a domain with a dot, no spaces), at most 254 characters",
    "name": "name must be 1-100 characters after trimming, without NUL characters",
    "password": "password must be 8-128 characters, without NUL characters",
}
SIGN_IN_RULES = {
    "email": "email must be a string of at most 254 characters, without NUL characters",
    "password": "password must be a string of at most 128 characters, without NUL characters",
}


class SignUp(msgspec.Struct, frozen=True):
    """Body of `POST /api/auth/signup`. Unknown keys are ignored."""

    email: Email
    password: NewPassword
    name: Name


class SignIn(msgspec.Struct, frozen=True):
    """Body of `POST /api/auth/signin`. Unknown keys are ignored."""

    email: SignInEmail
    password: SignInPassword


class User(msgspec.Struct, frozen=True):
    """A user as the API returns it. `email`/`name` are null only for an external-token user whose
    token carried no such claim."""

    id: str
    email: str | None
    name: str | None
    created_at: datetime


class AuthSession(msgspec.Struct, frozen=True):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: Annotated[int, Meta(description="Seconds until access_token expires.")]
    user: User


class AuthEnvelope(msgspec.Struct, frozen=True):
    data: AuthSession


class UserEnvelope(msgspec.Struct, frozen=True):
    data: User
