"""Verify a webhook post the way its HR system signs it (the source file's ``signature``).

- ``bamboohr``: hex HMAC-SHA256 with the webhook's private key over the raw body followed by
  the ``X-BambooHR-Timestamp`` header's value, in ``X-BambooHR-Signature``; a timestamp further
  from now than the tolerance is refused (no replays).
- ``hibob``: Base64 HMAC-SHA512 with the webhook's secret over the raw body, in ``Bob-Signature``
  (HiBob sends no timestamp: a replayed post is the same event again, answered as a duplicate).
- ``hmac-sha256``: hex (or Base64) HMAC-SHA256 over the raw body in the named header, with or
  without a ``sha256=`` prefix, for any other system.

Comparisons are constant-time; the secret is read from its variable or file when a post comes
(so a rotated secret file is used at once), and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

from provisioner.hr_sources.webhooks.section import Scheme, Signature

BAMBOOHR_SIGNATURE = "X-BambooHR-Signature"
BAMBOOHR_TIMESTAMP = "X-BambooHR-Timestamp"
HIBOB_SIGNATURE = "Bob-Signature"


class SignatureError(Exception):
    pass


class SecretUnavailable(Exception):
    """The source's secret cannot be read (a configuration problem, not the caller's)."""


def read_secret(signature: Signature) -> str:
    try:
        return signature.secret.read()
    except (OSError, RuntimeError) as exc:
        raise SecretUnavailable(str(exc).splitlines()[0]) from None


def sign(signature: Signature, secret: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    """The headers the HR system sends with ``body`` (for tests, the demo and trying a mapping)."""
    key = secret.encode()
    if signature.scheme == Scheme.BAMBOOHR:
        assert timestamp is not None
        mac = hmac.new(key, body + timestamp.encode(), hashlib.sha256).hexdigest()
        return {BAMBOOHR_TIMESTAMP: timestamp, BAMBOOHR_SIGNATURE: mac}
    if signature.scheme == Scheme.HIBOB:
        return {HIBOB_SIGNATURE: base64.b64encode(hmac.new(key, body, hashlib.sha512).digest()).decode()}
    digest = hmac.new(key, body, hashlib.sha256).digest()
    assert signature.header is not None
    return {signature.header: digest.hex() if signature.encoding == "hex" else base64.b64encode(digest).decode()}


def _seconds(timestamp: str) -> float:
    """Unix seconds, or an ISO 8601 date-time with offset."""
    try:
        return float(timestamp)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        raise SignatureError(f"{BAMBOOHR_TIMESTAMP} is neither Unix seconds nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise SignatureError(f"{BAMBOOHR_TIMESTAMP} has no UTC offset")
    return moment.timestamp()


def verify(signature: Signature, secret: str, headers: Mapping[str, str], body: bytes, *,
           now: float, tolerance: int) -> None:
    """Raise SignatureError saying what is wrong (never what was expected)."""
    if signature.scheme == Scheme.BAMBOOHR:
        given, timestamp = headers.get(BAMBOOHR_SIGNATURE), headers.get(BAMBOOHR_TIMESTAMP)
        if not given or not timestamp:
            raise SignatureError(f"missing signature headers: BambooHR sends {BAMBOOHR_SIGNATURE} "
                                 f"and {BAMBOOHR_TIMESTAMP}")
        allowed = signature.tolerance_seconds or tolerance
        if abs(now - _seconds(timestamp)) > allowed:
            raise SignatureError(f"stale timestamp: more than {allowed} s from the server's clock")
        expected = sign(signature, secret, body, timestamp)[BAMBOOHR_SIGNATURE]
        given = given.strip().lower()
    elif signature.scheme == Scheme.HIBOB:
        given = headers.get(HIBOB_SIGNATURE)
        if not given:
            raise SignatureError(f"missing signature header: HiBob sends {HIBOB_SIGNATURE}")
        expected = sign(signature, secret, body)[HIBOB_SIGNATURE]
        given = given.strip()
    else:
        assert signature.header is not None
        given = headers.get(signature.header)
        if not given:
            raise SignatureError(f"missing signature header {signature.header}")
        expected = sign(signature, secret, body)[signature.header]
        given = given.strip().removeprefix("sha256=")
        if signature.encoding == "hex":
            given = given.lower()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise SignatureError("bad signature")
