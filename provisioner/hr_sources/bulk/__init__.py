"""``POST /hr/bulkUpload``: SCIM BulkRequests shaped as Entra ID's API-driven inbound
provisioning sends them, each operation an HR event of the intake (see README, "HR sources:
SCIM bulk upload"). ``endpoints`` (HTTP, thin), ``service`` (validation and event typing, all or
nothing), ``mapping`` (SCIM attributes -> HR attributes), ``repository`` (what is known of the
people named), ``schemas`` (the request and answer shapes), ``auth`` (the source's bearer tokens).
"""
