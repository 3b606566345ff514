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

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from provisioner.hr_sources.bulk.mapping import DEFAULT, key_problem, path_problem
from provisioner.targets.config import ConfigError
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


class WebhookSection(Section):
    """``POST /hr/webhooks/{name}``: the HR system's own payload, mapped by jmespath."""


class SnapshotSection(Section):
    """Full CSV extracts dropped in ``folder`` matching ``pattern``, each imported once as a snapshot."""


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
    return validate(HrSource, data, lines, path)


def load_sources(directory: Path) -> dict[str, HrSource]:
    """Every ``*.yaml`` under ``directory`` by source name (none if the folder does not exist);
    all problems reported together as ``ConfigError``."""
    sources: dict[str, HrSource] = {}
    problems: list[str] = []
    if not directory.is_dir():
        return sources
    for path in sorted(directory.glob("*.y*ml")):
        try:
            source = load_source_file(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if source.name in sources:
            problems.append(f"{path}:1: name: HR source {source.name!r} is declared twice")
        sources[source.name] = source
    if problems:
        raise ConfigError(problems)
    return sources
