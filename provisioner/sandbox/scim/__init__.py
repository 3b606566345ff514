"""Stand-ins for downstream SCIM apps: the third-party scim2-server (PyPI) served in-process
or on a loopback port, and a fault-injecting transport for what it does not do."""
