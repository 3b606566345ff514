"""HR sources: the ways an HR system's records come in besides the native signed event format.

A source is declared by a file under ``hr_sources/`` (``Settings.hr_sources_dir``):
``declarations.py`` reads them. Each section is one way in:

- ``bulk_upload``: SCIM BulkRequests at ``POST /hr/bulkUpload`` (Entra ID's API-driven inbound
  provisioning shape), authenticated by the source's bearer tokens (``bulk/``).
- ``webhook``: an HR system's own JSON payload, mapped by jmespath expressions (``webhooks/``).
- ``snapshot``: full CSV extracts dropped in a folder, picked up by the scheduler (``snapshots/``).

Every way ends in the same intake (``provisioner.intake.service``): an HR event with ``source``
set to the source's name.
"""
