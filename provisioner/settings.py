"""All configuration, in one pydantic-settings object read from ``PROVISIONER_*`` variables.

Secrets (HR signing secrets, target credentials) come from the environment or from files named
here; they are ``SecretStr`` so they never reach logs, reprs or the audit trail.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROVISIONER_", extra="ignore")

    database_url: str = "sqlite:///./provisioner.db"
    policies_dir: Path = Path("policies")
    targets_dir: Path = Path("targets")
    # HR sources beyond the native signed format (provisioner/hr_sources): one YAML file each.
    hr_sources_dir: Path = Path("hr_sources")
    # How often the scheduler looks for snapshot files of a source whose ``snapshot`` section
    # does not say (``every``).
    hr_snapshot_poll_seconds: float = Field(300.0, gt=0)

    # HR intake: one HMAC secret per source system (e.g. {"workday": "..."}), from
    # PROVISIONER_HR_SECRETS (JSON object) and/or PROVISIONER_HR_SECRETS_FILE (JSON object file).
    hr_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    hr_secrets_file: Path | None = None
    signature_tolerance_seconds: int = 300
    max_batch_events: int = 5000
    # Request bodies are refused with 413 while they stream, before any signature or token
    # check: POST /hr/events above hr_max_body_bytes, anything under /scim/v2 above
    # scim_max_body_bytes (above the SCIM Bulk maxPayloadSize, which /Bulk checks after the token).
    hr_max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    scim_max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    # An HR event's effective_at must lie within this many days of now (400 otherwise).
    hr_effective_past_days: int = Field(400, ge=1)
    hr_effective_future_days: int = Field(730, ge=1)
    # `import --snapshot --terminate-missing` refuses (without --force) to terminate more than
    # this share of the employed: a truncated extract must not terminate the company.
    snapshot_max_terminate_share: float = Field(0.1, ge=0.0, le=1.0)
    # A contract's end_date ends access at the end of that day in this time zone (IANA name).
    contract_end_timezone: str = "UTC"

    # Durable queue and workers.
    worker_batch_size: int = 200
    worker_concurrency: int = 4
    worker_poll_seconds: float = 0.5
    # Revocation first: loops (beside worker_concurrency) that claim only revocation work, and
    # the longest back-off of a revocation operation (a Retry-After is still waited out).
    worker_revocation_loops: int = 1
    revocation_backoff_max_seconds: float = 60.0
    lease_seconds: float = 120.0
    # SIGTERM/SIGINT: rounds under way may go on calling their targets this long, then stop;
    # their outcomes are recorded and operations without one go back to the queue.
    stop_grace_seconds: float = 3.0
    # Group additions are claimed group by group, whole requests of 20 members (Graph's
    # members@odata.bind), up to member_add_claim_size a round; a group's last few are held up to
    # member_add_hold_seconds while more of that group are on their way (queue.repository.claim_additions).
    member_add_claim_size: int = Field(1000, ge=1)
    member_add_hold_seconds: float = Field(10.0, ge=0)
    max_attempts: int = 10
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 900.0
    max_upn_suffix: int = 50

    # Scheduler: due HR events and drift reconciliation.
    due_events_seconds: float = 5.0
    reconcile_minutes: float = 60.0
    reconcile_fix: bool = False
    # The most unknown members `reconcile --fix` removes from one target in one run; more are
    # held (reported, exit 2), so a wiped or wrong database cannot empty the managed groups.
    reconcile_max_removals: int = 50
    # Attempts of each read reconciliation makes (transient failures: 429, 5xx, timeouts), with
    # the queue's back-off (backoff_base_seconds, backoff_max_seconds; Retry-After honoured).
    reconcile_read_attempts: int = Field(4, ge=1)
    # Every run (scheduled, CLI, console) is stored with its drift items for the console's
    # Reconcile page: the last reconcile_runs_kept runs, each with at most
    # reconcile_run_items_max drift items as rows (the count of all is kept).
    reconcile_runs_kept: int = Field(50, ge=1)
    reconcile_run_items_max: int = Field(10000, ge=0)
    # A changed policy set re-plans everyone it affects (provisioner/rollouts). A rollout that
    # would re-plan more people than this waits for an approver (`provisioner rollouts approve`);
    # None: no limit. 50: a tweak for one team applies on its own, a department's or the
    # company's change is read first (README "Change control"). The first set a database sees is
    # never held (there is nothing to compare it with: it is the initial provisioning).
    policy_rollout_max_auto: int | None = Field(50, ge=0)

    # Mass-change holds (provisioner/change_control/holds): per target and cause, destructive
    # operations (disables, deletions, membership removals) are held for an approver when the
    # people they touch in the last hold_window_minutes exceed BOTH the count and the share of
    # the target's managed accounts. Defaults and their reasons: README "Change control".
    hold_window_minutes: float = Field(60.0, gt=0)
    hold_hr_termination_count: int = Field(50, ge=0)
    hold_hr_termination_share: float = Field(0.05, ge=0.0, le=1.0)
    hold_snapshot_import_count: int = Field(10, ge=0)
    hold_snapshot_import_share: float = Field(0.02, ge=0.0, le=1.0)
    hold_policy_rollout_count: int = Field(50, ge=0)
    hold_policy_rollout_share: float = Field(0.05, ge=0.0, le=1.0)
    hold_reconcile_fix_count: int = Field(20, ge=0)
    hold_reconcile_fix_share: float = Field(0.02, ge=0.0, le=1.0)
    hold_scim_count: int = Field(20, ge=0)
    hold_scim_share: float = Field(0.02, ge=0.0, le=1.0)
    # Every this many minutes (and at start) `serve`/`worker` log the audit chain's head
    # ("audit anchor: head SEQ:HASH"), an anchor outside the database; 0: never.
    audit_anchor_minutes: float = Field(15.0, ge=0)

    # Change control (provisioner/change_control): a separation-of-duties exception must expire
    # within this many days; an approval without an expiry lasts until the policies stop granting
    # the group, or approval_max_days when set. Expired access is revoked by a job every
    # change_control_expiry_seconds (and by `drain`).
    sod_exception_max_days: int = Field(90, ge=1)
    approval_max_days: int | None = Field(None, ge=1)
    change_control_expiry_seconds: float = Field(60.0, gt=0)

    # Readiness (GET /readyz): 503 when a target is halted or one of these is exceeded (None: not
    # checked). Ages in seconds: the oldest open operation, due HR event, unverified leaver.
    readiness_max_queue_age_seconds: float | None = 3600.0
    readiness_max_event_age_seconds: float | None = 300.0
    readiness_max_unverified_leaver_seconds: float | None = 3600.0
    readiness_max_dead_letters: int | None = None
    # GET /metrics needs `Authorization: Bearer` with this token (for the scraper) or an admin
    # API token; metrics_public opens it (only where the port is reachable from inside alone).
    metrics_token: SecretStr | None = None
    metrics_public: bool = False
    # The IT console (/console): its session cookies are signed with this key. Unset, each process
    # makes a random one at start (sessions then end when it restarts and are not shared between
    # API processes: set it in production). The cookie is Secure unless the console is reached over
    # plain http on localhost (the demo, the tests).
    console_session_secret: SecretStr | None = None
    console_session_hours: float = Field(8.0, gt=0)

    # Console sign-in with Entra ID (provisioner/console/entra_signin.py; README "Console sign-in
    # with Entra ID"): OpenID Connect authorization code flow with PKCE through msal. The authority
    # is https://login.microsoftonline.com/{tenant} for a real tenant, or the sandbox authority's
    # (`provisioner sandbox oidc`) with its CA in console_oidc_ca_file. The client secret comes from
    # PROVISIONER_CONSOLE_OIDC_CLIENT_SECRET or the file named by ..._CLIENT_SECRET_FILE.
    # console_oidc_roles maps values of the ID token's roles claim to console roles
    # (admin, approver, auditor, viewer); other values are ignored.
    console_oidc_authority: str | None = None
    console_oidc_client_id: str | None = None
    console_oidc_client_secret: SecretStr | None = None
    console_oidc_client_secret_file: Path | None = None
    # Or a certificate instead of a secret: a PEM file with the private key and the certificate
    # (whose public part is uploaded to the app registration).
    console_oidc_client_certificate_file: Path | None = None
    console_oidc_redirect_uri: str | None = None
    console_oidc_ca_file: Path | None = None
    console_oidc_roles: dict[str, str] = Field(default_factory=lambda: {
        "admin": "admin", "approver": "approver", "auditor": "auditor", "viewer": "viewer"})

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("hr_secrets", mode="before")
    @classmethod
    def _parse_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("readiness_max_queue_age_seconds", "readiness_max_event_age_seconds", "policy_rollout_max_auto",
                     "readiness_max_unverified_leaver_seconds", "readiness_max_dead_letters", mode="before")
    @classmethod
    def _unset_limit(cls, value: object) -> object:
        # An empty value (or "none") turns a readiness limit off.
        return None if isinstance(value, str) and value.strip().lower() in ("", "none") else value

    @field_validator("contract_end_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/Berlin") from exc
        return value

    def source_secrets(self) -> dict[str, str]:
        """Signing secrets per HR source, merged from the variable and the secrets file."""
        merged = {name: secret.get_secret_value() for name, secret in self.hr_secrets.items()}
        if self.hr_secrets_file is not None:
            data = json.loads(self.hr_secrets_file.read_text())
            merged.update({str(k): str(v) for k, v in data.items()})
        return merged


    def console_oidc_secret(self) -> str | None:
        """The console's client secret, from the variable or else the secret file (None: neither)."""
        if self.console_oidc_client_secret is not None:
            return self.console_oidc_client_secret.get_secret_value()
        if self.console_oidc_client_secret_file is not None:
            return self.console_oidc_client_secret_file.read_text().strip() or None
        return None

@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
