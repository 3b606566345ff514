"""What the SCIM endpoint announces and enforces (RFC 7643 §5, RFC 7644 §3.4.2.4, §3.7.4).

Every limit announced in ``/ServiceProviderConfig`` is enforced by the code that reads this
module, so the announcement and the behaviour cannot drift apart.
"""

from __future__ import annotations

from typing import Final

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    Filter,
    Pagination,
    Patch,
    ServiceProviderConfig,
    Sort,
)

SCIM_PREFIX: Final = "/scim/v2"
"""Where :func:`provisioner.scim.app.mount_scim` mounts the endpoint."""

MAX_RESULTS: Final = 1000
"""``filter.maxResults``: the largest page a query returns (RFC 7643 §5); a larger ``count`` is
lowered to it (RFC 7644 §3.4.2.4 lets the service provider return fewer results)."""

DEFAULT_PAGE_SIZE: Final = 100
MAX_START_INDEX: Final = 2**53
"""A larger ``startIndex`` is read as this one: the page is empty all the same (RFC 7644
§3.4.2.4), and the OFFSET stays within the 64-bit integer both databases take."""
"""Page size of a query that gives no ``count``."""

MAX_FILTER_TERMS: Final = 200
"""The most comparisons (``attr op value``, ``attr pr``) one filter may hold; a filter with more
is ``400 invalidFilter`` (a 2,000-term ``or`` chain overflowed the filter compiler's stack).
SCIM has no ``/ServiceProviderConfig`` attribute for it (``filter.maxResults`` is the page
size), so it is documented in the README. The service's own SCIM connector sends at most
``lookups_per_request`` (50) terms."""

MAX_FILTER_DEPTH: Final = 32
"""The deepest nesting of parentheses and value-path brackets in a filter; deeper is
``400 invalidFilter`` (500 nested parentheses overflowed the compiler's stack). Documented in
the README, as :data:`MAX_FILTER_TERMS`."""

MAX_BODY_DEPTH: Final = 64
"""The deepest nesting of objects and arrays in a request body (a SCIM resource nests at most
four levels); deeper is ``400 invalidSyntax`` (it would overflow the JSON decoder's stack)."""

BULK_MAX_OPERATIONS: Final = 1000
"""``bulk.maxOperations``; more operations in one request is a 413 (RFC 7644 §3.7.4)."""

BULK_MAX_PAYLOAD_SIZE: Final = 1_048_576
"""``bulk.maxPayloadSize`` in bytes; a larger body is a 413 (RFC 7644 §3.7.4)."""


def service_provider_config() -> ServiceProviderConfig:
    """The ``/ServiceProviderConfig`` resource (RFC 7643 §5)."""
    return ServiceProviderConfig(
        documentation_uri="https://datatracker.ietf.org/doc/html/rfc7644",
        patch=Patch(supported=True),
        bulk=Bulk(
            supported=True,
            max_operations=BULK_MAX_OPERATIONS,
            max_payload_size=BULK_MAX_PAYLOAD_SIZE,
        ),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        pagination=Pagination(
            index=True,
            cursor=False,
            default_pagination_method=Pagination.DefaultPaginationMethod.index,
            default_page_size=DEFAULT_PAGE_SIZE,
            max_page_size=MAX_RESULTS,
        ),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description=(
                    "A bearer token issued with `provisioner scim token create`; "
                    "scope read (scim:read) or read-write (scim:read scim:write)."
                ),
                spec_uri="https://datatracker.ietf.org/doc/html/rfc6750",
                primary=True,
            )
        ],
    )
