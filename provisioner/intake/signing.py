"""HMAC-SHA256 request signing for HR sources.

The HR system sends three headers:

- ``X-HR-Source``: the source name, which selects the shared secret;
- ``X-HR-Timestamp``: Unix seconds when it signed;
- ``X-HR-Signature``: ``sha256=`` + hex HMAC-SHA256(secret, ``"{timestamp}." + raw body``).

Timestamps more than the tolerance (5 minutes) from now are refused, so a captured request
cannot be replayed later. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SOURCE_HEADER = "X-HR-Source"
TIMESTAMP_HEADER = "X-HR-Timestamp"
SIGNATURE_HEADER = "X-HR-Signature"


_NO_SECRET = "no source has this name"


class SignatureError(Exception):
    pass


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(source: str, secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers an HR source sends (used by the CLI, the demo and tests)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        SOURCE_HEADER: source,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(secret, ts, body),
        "Content-Type": "application/json",
    }


def verify(secrets: dict[str, str], source: str | None, timestamp: str | None,
           signature: str | None, body: bytes, *, now: float, tolerance: int) -> str:
    """Return the verified source name or raise SignatureError saying what is wrong."""
    if not source or not timestamp or not signature:
        raise SignatureError(
            f"missing signature headers: send {SOURCE_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix seconds") from exc
    if abs(now - ts) > tolerance:
        raise SignatureError(f"stale timestamp: more than {tolerance} s from the server's clock")
    # An unknown source gets the very answer a bad signature gets (after the same work), so a 401
    # never tells a caller which source names exist.
    secret = secrets.get(source)
    expected = sign(secret if secret is not None else _NO_SECRET, ts, body)
    if not hmac.compare_digest(expected, signature) or secret is None:
        raise SignatureError("bad signature")
    return source
