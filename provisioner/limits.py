"""Field limits: the one source of the lengths and characters the service stores.

The database columns (``identities``, ``hr_events``) are declared with these constants, and the
HR event schema (``POST /hr/events``, ``provisioner import``) refuses anything longer, so nothing
the API accepts can fail to store. Changing a column's length here needs a migration.

Allowed characters: every text value refuses control characters (U+0000-U+001F, U+007F-U+009F,
NUL included) and lone surrogates; identifiers (``event_id``, ``employee_id``,
``manager_employee_id``, ``cancels_event_id``) are ``[A-Za-z0-9][A-Za-z0-9._:@/-]*``.
"""

from __future__ import annotations

import re
from typing import Final

# hr_events, lifecycle_transitions, plans
EVENT_ID_COLUMN: Final = 200  # hr_events.event_id, hr_events.cancels_event_id, lifecycle_transitions.event_id
PLAN_TRIGGER: Final = 200  # plans.trigger: "event:<event_id>", "reconcile", ...
EVENT_ID: Final = PLAN_TRIGGER - len("event:")  # 194: the longest event_id accepted, so its plan's trigger fits
RUN_TRIGGER: Final = 200  # reconcile_runs.trigger, reconcile_drift.fixed_by: "schedule", "console:<name>", ...
SOURCE: Final = 100  # hr_events.source (an HR source name, or the CSV import's --source)
EVENT_TYPE: Final = 20  # hr_events.type
EVENT_STATUS: Final = 20  # hr_events.status

# identities: HR-owned attributes
EMPLOYEE_ID: Final = 100  # identities.employee_id, identities.manager_employee_id, hr_events.employee_id
GIVEN_NAME: Final = 200
FAMILY_NAME: Final = 200
PREFERRED_NAME: Final = 200
DEPARTMENT: Final = 200
JOB_CODE: Final = 100
TITLE: Final = 200
LOCATION: Final = 200
COST_CENTER: Final = 100
EMPLOYMENT_TYPE: Final = 50
PREFERRED_LOGIN: Final = 64  # the local part of a userPrincipalName (provisioner/identities/upn.py)

# identities: derived or SCIM-set values
DISPLAY_NAME: Final = 400  # "<preferred or given> <family>", cut to this length
USER_NAME: Final = 256
EMAIL: Final = 320
EXTERNAL_ID: Final = 256

# identities.extra / an event's attributes.extra (a JSON column: limits per event)
EXTRA_MAX_KEYS: Final = 100
EXTRA_KEY: Final = 100  # characters in a key
EXTRA_VALUE: Final = 1000  # characters in a string value
EXTRA_TOTAL_BYTES: Final = 16384  # the whole object serialized as JSON (UTF-8)
EXTRA_INT_MAX: Final = 2**63 - 1  # integers are 64-bit signed; floats finite

# The HR text attributes and their limits (the schema builds its fields from this table).
HR_TEXT: Final[dict[str, int]] = {
    "given_name": GIVEN_NAME,
    "family_name": FAMILY_NAME,
    "preferred_name": PREFERRED_NAME,
    "department": DEPARTMENT,
    "job_code": JOB_CODE,
    "title": TITLE,
    "location": LOCATION,
    "cost_center": COST_CENTER,
    "employment_type": EMPLOYMENT_TYPE,
}

IDENTIFIER_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$"

# C0 and C1 control characters (NUL included) and lone surrogates (not storable as UTF-8).
_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def refused_character(value: str) -> str | None:
    """A description of the first character a stored text may not hold, or None."""
    found = _REFUSED.search(value)
    if found is None:
        return None
    return f"U+{ord(found.group()):04X} at position {found.start()}"
ROW_ID_MAX: Final = 2**31 - 1  # row ids are INTEGER columns: PostgreSQL refuses a larger value
