"""The SCIM connector on its own against scim2-server: the error map, dry-run at the transport,
OAuth 2.0 client credentials, batched lookups, target files, and `provisioner targets check`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from provisioner.cli.main import app
from provisioner.sandbox.ports import free_port
from provisioner.sandbox.scim.app import ScimSandbox, serve_in_thread
from provisioner.settings import get_settings
from provisioner.targets.config import ConfigError, load_targets
from provisioner.targets.contract import AccountSpec, OpKind, Outcome, TargetError, TargetOp
from provisioner.targets.scim import errors
from provisioner.targets.scim.config import ScimTarget
from provisioner.targets.scim.connector import ScimConnector
from tests.targets.scim_helpers import RequestLog

REPO = Path(__file__).resolve().parents[2]


def config(**extra) -> ScimTarget:
    data = {"kind": "scim", "name": "app", "base_url": "http://app.test/v2", "auth": {"method": "none"},
            "managed_groups": [{"name": "App Users"}], "create_missing_groups": True, **extra}
    return ScimTarget.model_validate(data)


def spec(n: int) -> AccountSpec:
    return AccountSpec(employee_id=f"E{n}", login=f"person{n}@example.com", mail_nickname=f"person{n}",
                       display_name=f"Person {n}", given_name="Person", family_name=str(n),
                       email=f"person{n}@example.com")


@pytest.mark.parametrize(("status", "body", "headers", "outcome"), [
    (429, None, {"Retry-After": "7"}, Outcome.TRANSIENT),
    (503, None, {}, Outcome.TRANSIENT),
    (500, {"detail": "boom"}, {}, Outcome.TRANSIENT),
    (412, None, {}, Outcome.TRANSIENT),
    (401, None, {}, Outcome.STOP),
    (403, None, {}, Outcome.STOP),
    (404, None, {}, Outcome.NOT_FOUND),
    (409, {"scimType": "uniqueness", "detail": "taken"}, {}, Outcome.EXISTS),
    (400, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
           "scimType": "uniqueness"}, {}, Outcome.EXISTS),
    (400, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
           "scimType": "noTarget"}, {}, Outcome.NOT_FOUND),
    (400, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
           "scimType": "invalidValue", "detail": "bad department"}, {}, Outcome.BAD_REQUEST),
    (501, None, {}, Outcome.BAD_REQUEST),
])
def test_each_answer_maps_to_one_outcome(status, body, headers, outcome):
    answer = errors.outcome_of(status, body, headers)
    assert answer.outcome == outcome
    assert answer.detail.startswith(f"HTTP {status}")


def test_scim_type_and_detail_reach_the_dead_letter_text():
    answer = errors.outcome_of(400, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
                                     "scimType": "invalidValue", "detail": "bad department"})
    assert answer.detail == "HTTP 400 invalidValue: bad department"


def test_retry_after_in_seconds_and_as_an_http_date():
    assert errors.retry_after(httpx.Headers({"Retry-After": "30"})) == 30.0
    when = datetime.now(UTC) + timedelta(seconds=90)
    assert 80 <= errors.retry_after(httpx.Headers({"Retry-After": format_datetime(when, usegmt=True)})) <= 91
    assert errors.retry_after(httpx.Headers({})) is None


def test_network_failures_are_transient():
    answer = errors.outcome_of_exception(httpx.ReadTimeout("slow"))
    assert answer.outcome == Outcome.TRANSIENT and "ReadTimeout" in answer.detail


async def test_dry_run_reads_but_never_writes():
    server = ScimSandbox()
    connector = ScimConnector.create(config(), transport=server.transport(), dry_run=True)
    try:
        health = await connector.check()
        assert health.reachable and health.credentials_ok
        assert health.capabilities["bulk"] is True and health.capabilities["patch"] is True
        assert await connector.resolve_groups(["App Users"]) == {}  # not created in a dry run
        with pytest.raises(TargetError) as refused:
            await connector.apply([TargetOp(1, OpKind.CREATE_ACCOUNT, account=spec(1))])
        assert refused.value.outcome == Outcome.STOP
        assert await server.users() == [] and await server.group("App Users") is None
        assert connector.recorder.blocked == 1
    finally:
        await connector.aclose()


async def test_match_before_create_looks_many_people_up_in_few_requests():
    server = ScimSandbox()
    connector = ScimConnector.create(config(), transport=server.transport())
    try:
        for n in range(0, 120, 3):  # every third person already has an account
            await server.add("Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                       "userName": f"person{n}@example.com", "externalId": f"E{n}"})
        connector.recorder.reset()
        found = await connector.find_accounts([spec(n) for n in range(120)])
        assert set(found) == {f"E{n}" for n in range(0, 120, 3)}
        # 120 people, 50 to a filter (externalId and userName terms together), + ServiceProviderConfig,
        # + one listing (40 users, one page) confirming the filters' empty answers.
        assert connector.recorder.calls_by_method["GET"] == 3 + 1 + 1
        connector.recorder.reset()
        await connector.find_accounts([spec(n) for n in range(120, 240)])
        # The filter was confirmed: no listing again within the confirmation period.
        assert connector.recorder.calls_by_method["GET"] == 3
    finally:
        await connector.aclose()


async def test_oauth2_client_credentials_token_is_fetched_once_and_renewed_after_401(monkeypatch):
    monkeypatch.setenv("APP_CLIENT_SECRET", "s3cret")
    issued: list[str] = []
    server = ScimSandbox(token="token-1")

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
        assert form == {"grant_type": "client_credentials", "client_id": "provisioner",
                        "client_secret": "s3cret", "scope": "scim"}
        issued.append(server.app.token)
        return httpx.Response(200, json={"access_token": server.app.token, "expires_in": 3600,
                                         "token_type": "Bearer"})

    class Router(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.idp, self.app = httpx.MockTransport(token_endpoint), server.transport()

        async def handle_async_request(self, request):
            target = self.idp if request.url.host == "idp.test" else self.app
            return await target.handle_async_request(request)

    auth = {"method": "oauth2_client_credentials", "token_url": "https://idp.test/oauth2/token",
            "client_id": "provisioner", "client_secret": {"env": "APP_CLIENT_SECRET"}, "scope": "scim"}
    connector = ScimConnector.create(config(auth=auth), transport=Router())
    try:
        assert (await connector.check()).credentials_ok
        await connector.find_accounts([spec(1), spec(2)])
        assert issued == ["token-1"]
        server.app.token = "token-2"  # the identity provider rotated the key
        assert await connector.find_account(spec(1)) is None
        assert issued == ["token-1", "token-2"]
    finally:
        await connector.aclose()


def test_target_file_errors_name_the_file_and_line(tmp_path: Path):
    (tmp_path / "app.yaml").write_text(
        "kind: scim\n"
        "base_url: ftp://app.example.com\n"
        "auth:\n"
        "  method: bearer\n"
        "mapping:\n"
        "  shoeSize: '{given_name}'\n"
        "deprovision:\n"
        "  mode: disable_then_delete\n")
    with pytest.raises(ConfigError) as bad:
        load_targets(tmp_path)
    text = "\n".join(bad.value.problems)
    assert f"{tmp_path / 'app.yaml'}:2: base_url" in text
    assert ":3: auth" in text and "needs: token" in text
    assert ":5: mapping" in text and "shoeSize" in text
    assert ":7: deprovision" in text and "delete_after_days" in text


def test_shipped_wiki_target_loads():
    wiki = load_targets(REPO / "targets")["wiki"]
    assert wiki.kind == "scim" and wiki.deprovision.mode == "disable_then_delete"
    assert wiki.managed_group_names() == ["Wiki Readers", "Wiki Editors"]


@pytest.fixture
def served_wiki(tmp_path: Path, monkeypatch):
    """A targets folder holding only the wiki, pointing at scim2-server on a loopback port."""
    server = ScimSandbox(token="wiki-token")
    url, handle = serve_in_thread(server)
    targets, policies = tmp_path / "targets", tmp_path / "policies"
    targets.mkdir()
    policies.mkdir()
    data = yaml.safe_load((REPO / "targets" / "wiki.yaml").read_text())
    data["base_url"] = url
    (targets / "wiki.yaml").write_text(yaml.safe_dump(data))
    (policies / "wiki.yaml").write_text("name: wiki\nbirthright: true\ngrants:\n  wiki:\n    groups: [Wiki Readers]\n")
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(targets))
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(policies))
    monkeypatch.setenv("WIKI_SCIM_TOKEN", "wiki-token")
    get_settings.cache_clear()
    yield server, targets, data
    get_settings.cache_clear()
    handle.should_exit = True


async def _wiki_groups(server: ScimSandbox) -> list:
    return [await server.group(name) for name in ("Wiki Readers", "Wiki Editors")]


def test_targets_check_reports_capabilities_and_changes_nothing(served_wiki):
    import asyncio

    server, _, _ = served_wiki
    result = CliRunner().invoke(app, ["targets", "check"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "wiki" in result.output and '"bulk": true' in result.output and '"max_operations": 1000' in result.output
    assert "managed group(s) not there yet" in result.output
    assert asyncio.run(_wiki_groups(server)) == [None, None]  # create_missing_groups waits for real work


def test_targets_check_fails_on_a_wrong_token(served_wiki, monkeypatch):
    monkeypatch.setenv("WIKI_SCIM_TOKEN", "wrong")
    result = CliRunner().invoke(app, ["targets", "check"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "HTTP 401" in result.output


def test_targets_check_fails_when_the_app_is_unreachable(served_wiki):
    _, targets, data = served_wiki
    data["base_url"] = f"http://127.0.0.1:{free_port()}/v2"
    (targets / "wiki.yaml").write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["targets", "check"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "ConnectError" in result.output


async def test_a_missing_token_halts_the_target_with_a_clear_reason(monkeypatch):
    monkeypatch.delenv("APP_SCIM_TOKEN", raising=False)
    connector = ScimConnector.create(config(auth={"method": "bearer", "token": {"env": "APP_SCIM_TOKEN"}}),
                                     transport=ScimSandbox(token="t").transport())
    try:
        with pytest.raises(TargetError) as stopped:
            await connector.apply([TargetOp(1, OpKind.CREATE_ACCOUNT, account=spec(1))])
        assert stopped.value.outcome == Outcome.STOP
        assert "APP_SCIM_TOKEN is not set" in stopped.value.detail
        health = await connector.check()
        assert not health.credentials_ok and "APP_SCIM_TOKEN" in health.detail
    finally:
        await connector.aclose()


async def test_rounds_arriving_while_a_bulk_request_is_in_flight_share_the_next_one():
    server = ScimSandbox()
    slow = RequestLog(server.transport())
    slow.before = lambda _request: asyncio.sleep(0.05)  # a network-like delay before each request
    connector = ScimConnector.create(config(), transport=slow)
    try:
        await connector.capabilities()
        rounds = [[TargetOp(n * 10 + i, OpKind.CREATE_ACCOUNT, account=spec(n * 10 + i)) for i in range(3)]
                  for n in range(4)]
        first = asyncio.create_task(connector.apply(rounds[0]))
        await asyncio.sleep(0.01)  # the first round's Bulk request is on its way
        answers = await asyncio.gather(first, *(connector.apply(r) for r in rounds[1:]))
        # Not four: the first alone (or, on a slow machine, with the others) and the rest together.
        assert slow.counts()[("POST", "Bulk")] in (1, 2)
        ids = {r.remote_id for results in answers for r in results}
        assert all(r.outcome == Outcome.DONE for results in answers for r in results)
        assert len(ids) == 12 and len(await server.users()) == 12
    finally:
        await connector.aclose()
