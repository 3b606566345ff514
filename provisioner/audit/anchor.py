"""Anchors: the audit chain's head (``SEQ:HASH``) kept outside the database.

The head travels in every evidence manifest (``audit_head``) and in a periodic log line
(``audit anchor``); ``provisioner audit verify --anchor`` checks the chain against one, so deleting
the newest records and rewinding the head, or deleting every record, is found even though the
database alone is consistent again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ANCHOR = re.compile(r"(\d+):([0-9a-fA-F]{64})")


class AnchorError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    hash: str
    source: str  # where it came from, named in the verifier's messages

    @property
    def short(self) -> str:
        return f"{self.seq}:{self.hash[:12]}…"


def _from_manifest(path: Path) -> Anchor:
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AnchorError(f"{path}: not a readable JSON manifest ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("manifest"), dict):
        data = data["manifest"]  # the API's JSON answer: {"manifest": {...}, "records": [...]}
    head = data.get("audit_head") if isinstance(data, dict) else None
    if not isinstance(head, dict) or not _ANCHOR.fullmatch(f"{head.get('seq')}:{head.get('hash')}"):
        raise AnchorError(f"{path}: the manifest carries no audit_head with seq and hash "
                          "(exported before audit anchoring?)")
    return Anchor(int(head["seq"]), str(head["hash"]).lower(), str(path))


def parse_anchor(value: str) -> Anchor:
    """``SEQ:HASH`` or the path of an evidence manifest (``*.manifest.json``)."""
    match = _ANCHOR.fullmatch(value.strip())
    if match:
        return Anchor(int(match[1]), match[2].lower(), "the anchor given")
    path = Path(value)
    if not path.is_file():
        raise AnchorError(f"--anchor {value!r} is neither SEQ:HASH (a sequence number, ':' and 64 hex "
                          "characters, as the manifests and the 'audit anchor' log lines carry it) "
                          "nor a manifest file")
    return _from_manifest(path)
