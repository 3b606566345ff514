"""The third-party SCIM servers the suite runs as real processes: name -> module with ``start``.
(The integrator merges this with the other servers' entries.)"""

from __future__ import annotations

from tests.servers import scimmy_server

SERVERS = {
    "scimmy": scimmy_server,  # Node.js: scimmy + scimmy-routers on express
}
