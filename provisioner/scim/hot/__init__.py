"""The SCIM endpoint's fast path for the busiest reads: a provisioning client's user lookups.

Okta and Entra ID look people up one at a time before every create or update, so
``GET /Users?filter=userName eq "..."`` and ``GET /Users/{id}`` are most of the load. Three
layers answer them, each giving byte for byte what the ordinary path gives
(``tests/scim_endpoint/test_hot_path.py``, ``test_fast.py``):

- :mod:`.middleware` (``ScimHotReads``), outermost: the plain successful lookup answered
  before any routing, with one SQL statement (:mod:`.statements`) on a held connection;
- :mod:`.routes` (``UsersReadFastPath``), the SCIM sub-application's outermost layer: the two
  reads it passes on, sent straight to the endpoint functions without FastAPI's machinery;
- :mod:`.render`: a column-only user rendered as a plain dict, without scim2-models objects.
"""
