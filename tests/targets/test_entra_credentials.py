"""Credentials built from a target's auth block (no network: nothing asks for a token)."""

from __future__ import annotations

import datetime

import pytest
from azure.core.credentials import AccessToken
from azure.identity import aio as identity_aio

from provisioner.targets.config import EntraAuth
from provisioner.targets.entra.credentials import (
    StaticTokenCredential,
    build_credential,
)


async def test_static_token_credential_answers_any_scope_with_sdk_keywords() -> None:
    cred = StaticTokenCredential("t0k")
    token = await cred.get_token("https://graph.microsoft.com/.default", claims=None, enable_cae=True)
    assert isinstance(token, AccessToken) and token.token == "t0k"
    assert "t0k" not in repr(cred)
    await cred.close()


async def test_static_token_from_secret_ref(monkeypatch) -> None:
    monkeypatch.setenv("ENTRA_TEST_TOKEN", "abc")
    cred = build_credential(EntraAuth(method="static_token", token={"env": "ENTRA_TEST_TOKEN"}))
    assert (await cred.get_token("x")).token == "abc"


async def test_client_secret_builds_async_client_secret_credential(monkeypatch) -> None:
    monkeypatch.setenv("ENTRA_TEST_SECRET", "s3cret")
    auth = EntraAuth(
        method="client_secret", tenant_id="contoso.onmicrosoft.com", client_id="app", client_secret={"env": "ENTRA_TEST_SECRET"}
    )
    cred = build_credential(auth)
    assert isinstance(cred, identity_aio.ClientSecretCredential)
    await cred.close()


async def test_missing_secret_is_an_error(monkeypatch) -> None:
    monkeypatch.delenv("ENTRA_TEST_SECRET", raising=False)
    auth = EntraAuth(method="client_secret", tenant_id="t", client_id="c", client_secret={"env": "ENTRA_TEST_SECRET"})
    with pytest.raises(RuntimeError, match="ENTRA_TEST_SECRET"):
        build_credential(auth)


async def test_managed_identity_builds_async_credential() -> None:
    cred = build_credential(EntraAuth(method="managed_identity", client_id="user-assigned-id"))
    assert isinstance(cred, identity_aio.ManagedIdentityCredential)
    await cred.close()


async def test_certificate_builds_async_certificate_credential(tmp_path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provisioner-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "app.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    cred = build_credential(EntraAuth(method="certificate", tenant_id="t", client_id="c", certificate_path=pem))
    assert isinstance(cred, identity_aio.CertificateCredential)
    await cred.close()
