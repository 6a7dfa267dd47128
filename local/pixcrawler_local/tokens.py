"""The local stand-in for the API Gateway JWT authorizer: HS256 tokens signed with a secret in the data dir.

Deployed, the gateway verifies an OIDC issuer's RS256 token and hands the claims to the API function; here
`pixcrawler token` mints tokens and the local gateway verifies them the same way (signature, issuer,
audience, expiry) before passing the same claims on. PyJWT does the JOSE work.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

ISSUER = "pixcrawler-local"
AUDIENCE = "pixcrawler-local"
ALGORITHM = "HS256"
_USER_NAMESPACE = uuid.UUID("6f1b2f7e-4c0a-4a55-9d59-3f0a6c2d8e11")


def user_id(email: str) -> uuid.UUID:
    """The same email always gets the same `sub`, so a new token reaches the same profile."""
    return uuid.uuid5(_USER_NAMESPACE, email.strip().lower())


def mint(secret: str, email: str, lifetime: timedelta = timedelta(hours=24), sub: uuid.UUID | None = None) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(sub or user_id(email)),
        "email": email,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str) -> dict[str, str] | None:
    """The claims as the HTTP API's JWT authorizer passes them (every value a string), or None if invalid."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER, options={"require": ["sub"]}
        )
    except jwt.PyJWTError:
        return None
    return {name: value if isinstance(value, str) else str(value) for name, value in claims.items()}
