"""HR webhooks with declarative mappings: ``section.py`` (the ``webhook:`` section of a source
file), ``mapping.py`` (payload -> HR events), ``signatures.py`` (each HR system's signing),
``endpoints.py`` (``POST /hr/webhooks/{source}``)."""
