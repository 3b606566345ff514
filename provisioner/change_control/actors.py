"""Who asked and who decided, as change control records them: ``<channel>:<name>``.

- ``token:<name>``: an API token (its name) over HTTP;
- ``console:<name>``: a person signed in to the IT console (``console.session.ConsoleUser``);
- ``cli:<name>``: the command line, ``--by``/``--as NAME`` or else the operating-system user.

Every new decision (approvals, separation-of-duties exceptions, hold sets, policy rollouts) and
every requester of a grant asked for through the API is recorded in this form. Rows written
before it may hold a bare name (approvals over HTTP and ``--by``/``--as`` did): they are left as
they are, and :func:`same_person` reads both. Separation of duties compares people, not
channels: a token's owner who asked for a grant cannot approve it from the console or the CLI
under the same name either.
"""

from __future__ import annotations

TOKEN, CONSOLE, CLI = "token", "console", "cli"
CHANNELS = (TOKEN, CONSOLE, CLI)
MAX_LENGTH = 100  # the narrowest column that stores one (access_requests.requested_by, decided_by)


def actor(channel: str, name: str) -> str:
    """``<channel>:<name>``, cut to what every column holds."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    return f"{channel}:{name.strip()}"[:MAX_LENGTH]


def name_of(recorded: str | None) -> str | None:
    """The person's name in a recorded actor: ``token:alice``, ``cli:alice`` and a bare
    ``alice`` (a row from before this format) all give ``alice``."""
    if recorded is None:
        return None
    channel, sep, name = recorded.partition(":")
    return name if sep and channel in CHANNELS else recorded


def same_person(one: str | None, other: str | None) -> bool:
    """Whether two recorded actors name the same person, whatever channel each came through."""
    return one is not None and other is not None and name_of(one) == name_of(other)
