"""``hr_sources/*.yaml``: one file per HR source, validated with ``file:line`` errors like the
policies. The file's stem is the source's name unless ``name`` says otherwise; the name is the
``source`` of every event it sends (as for the native format's HMAC sources).

Each section is optional and is one way in; a source declares at least one::

    name: workday
    bulk_upload: {}          # POST /hr/bulkUpload with this source's bearer tokens
    webhook: {...}           # POST /hr/webhooks/workday, payloads mapped by jmespath
    snapshot: {...}          # CSV extracts picked up from a folder
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from provisioner.hr_sources.bulk.mapping import DEFAULT, key_problem, path_problem
from provisioner.hr_sources.webhooks.section import WebhookMapping
from provisioner.targets.config import load_folder
from provisioner.yaml_lines import read_mapping, validate

SOURCE_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BulkUploadSection(Section):
    """``POST /hr/bulkUpload``: SCIM BulkRequests as Entra's API-driven inbound provisioning
    documents them. ``attributes`` overrides the default mapping (HR attribute -> SCIM path, see
    ``bulk/mapping.py``; an empty path turns an entry off)."""

    attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _mapping(cls, attributes: dict[str, str]) -> dict[str, str]:
        problems = [f"{key}: {problem}" for key, path in attributes.items()
                    for problem in (key_problem(key), path_problem(path) if path.strip() else None) if problem]
        if problems:
            raise ValueError("; ".join(problems))
        if not {**DEFAULT, **attributes}.get("employee_id", "").strip():
            raise ValueError("employee_id: a path is required (the worker's id, e.g. externalId)")
        return attributes


class WebhookSection(WebhookMapping):
    """``POST /hr/webhooks/{name}``: the HR system's own payload, mapped by jmespath
    (the fields: ``provisioner/hr_sources/webhooks/section.py``)."""


class SnapshotSection(Section):
    """Full CSV extracts dropped in ``folder`` matching ``pattern``, each imported once as a
    snapshot (``snapshots/``). Paths are relative to the source file's folder unless absolute;
    ``archive`` and ``rejected`` default to sub-folders of ``folder``. A file is picked only when
    unchanged for ``settle_seconds`` (and names starting with ``.`` never are): HR writes the
    extract under another name, then renames it."""

    folder: Path
    pattern: str = Field("*.csv", min_length=1, pattern=r"^[^/\\]+$")
    archive: Path | None = None
    rejected: Path | None = None
    terminate_missing: bool = False
    # The guard of terminate_missing; None: PROVISIONER_SNAPSHOT_MAX_TERMINATE_SHARE.
    max_terminate_share: float | None = Field(None, ge=0.0, le=1.0)
    # How often the scheduler looks ("30s", "5m", "1h"); None: PROVISIONER_HR_SNAPSHOT_POLL_SECONDS.
    every: str | None = Field(None, pattern=r"^[1-9][0-9]*[smh]$")
    settle_seconds: float = Field(30.0, ge=0)

    @model_validator(mode="after")
    def _apart(self) -> SnapshotSection:
        here = os.path.normpath(self.folder)
        for name in ("archive", "rejected"):
            value = getattr(self, name)
            if value is not None and os.path.normpath(value) == here:
                raise ValueError(f"{name} must be another folder than folder (its files would be picked again)")
        return self

    @property
    def interval_seconds(self) -> float | None:
        if self.every is None:
            return None
        return int(self.every[:-1]) * {"s": 1, "m": 60, "h": 3600}[self.every[-1]]

    def resolved(self, base: Path) -> SnapshotSection:
        """The same section with every folder absolute (relative ones taken from ``base``)."""
        folder = base / self.folder
        return self.model_copy(update={"folder": folder, "archive": base / (self.archive or folder / "archive"),
                                       "rejected": base / (self.rejected or folder / "rejected")})


class HrSource(Section):
    name: str = Field(pattern=SOURCE_NAME)
    description: str | None = None
    bulk_upload: BulkUploadSection | None = None
    webhook: WebhookSection | None = None
    snapshot: SnapshotSection | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> HrSource:
        if self.bulk_upload is None and self.webhook is None and self.snapshot is None:
            raise ValueError("declare at least one way in: bulk_upload, webhook or snapshot")
        return self


def load_source_file(path: Path) -> HrSource:
    data, lines = read_mapping(path, "an HR source file holds one mapping (name, bulk_upload, webhook, snapshot)")
    data.setdefault("name", path.stem)
    source = validate(HrSource, data, lines, path)
    if source.snapshot is not None:  # its folders are relative to this file's
        source = source.model_copy(update={"snapshot": source.snapshot.resolved(path.parent.absolute())})
    return source


def load_sources(directory: Path) -> dict[str, HrSource]:
    """Every ``*.yaml`` under ``directory`` by source name (none if the folder does not exist);
    all problems reported together as ``ConfigError``."""
    if not directory.is_dir():
        return {}
    return load_folder(directory, load_source_file, "HR source")
