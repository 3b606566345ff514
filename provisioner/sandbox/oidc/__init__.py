"""A sandbox OpenID Connect authority shaped like Microsoft Entra ID's v2.0 endpoints.

Discovery, an authorize endpoint with a user picker, a token endpoint (authorization code with
PKCE S256) and a JWKS, served over HTTPS with a CA generated at start, so that msal's real
authorization code flow runs end to end in tests and in the demo. Sandbox code: never imported
by production code paths.
"""
