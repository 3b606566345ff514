"""Logins for real-world names: each person hired through the whole service (HR event -> processor
-> worker -> msgraph-sdk -> Graph sandbox), the login read back from the sandbox's own store.

Transliteration is anyascii's (Japanese kanji come out in their Chinese readings, Arabic and
Hebrew without vowels: HR's ``preferred_login`` is the answer where that is not wanted).
"""

from __future__ import annotations

import pytest

from provisioner.identities import repository as identities
from provisioner.identities import upn
from tests.support import EntraView, event, hire
from tests.targets.scim_helpers import WikiView

# (given name, family name, the login's local part Entra ID must hold)
NAMES = [
    ("Ørjan", "Øye", "orjan.oye"),
    ("Łukasz", "Straße", "lukasz.strasse"),
    ("ŁUKASZ", "ŻÓŁW", "lukasz.zolw"),
    ("Đorđe", "Đoković", "dorde.dokovic"),
    ("Þór", "Þórsson", "thor.thorsson"),
    ("Zoë", "Brontë", "zoe.bronte"),
    ("José", "Ñúñez", "jose.nunez"),
    ("Ævar", "Ólafsson", "aevar.olafsson"),
    ("Émilie", "Ängström", "emilie.angstrom"),
    ("Søren", "Kierkegaard", "soren.kierkegaard"),
    ("ÅSA", "ÖBERG", "asa.oberg"),
    ("Seán", "O'Brien", "sean.obrien"),
    ("Gianna", "D\u2019Angelo", "gianna.dangelo"),  # typographic apostrophe
    ("Jean-Luc", "Picard", "jean-luc.picard"),
    ("Mary-Kate", "O'Neill-Smith", "mary-kate.oneill-smith"),
    ("Pieter", "van der Berg", "pieter.vanderberg"),
    ("María", "de la Cruz", "maria.delacruz"),
    ("Siobhán", "Ó Súilleabháin", "siobhan.osuilleabhain"),
    ("Zażółć", "Gęślą", "zazolc.gesla"),
    ("Řehoř", "Šťastný", "rehor.stastny"),
    ("Ödön", "Erdős", "odon.erdos"),
    ("İsmail", "Çağlar", "ismail.caglar"),
    ("Minh Khai", "Nguyễn Thị", "minhkhai.nguyenthi"),
    ("Дмитрий", "Шостакович", "dmitriy.shostakovich"),
    ("Αλέξανδρος", "Παπαδόπουλος", "alexandros.papadopoylos"),
    ("小明", "王", "xiaoming.wang"),
    ("太郎", "山田", "tailang.shantian"),  # kanji read as Chinese: see the preferred_login test
    ("민준", "김", "minjun.gim"),
    ("محمد", "عبدالله", "mhmd.bdllh"),
    ("דוד", "לוי", "dvd.lvy"),
    ("ＡＢＣ", "Ｄｅｆ", "abc.def"),  # full-width letters
    ("\ufb01ona", "Bell", "fiona.bell"),  # the "fi" ligature
    (".Anna.", "Bell.", "anna.bell"),  # dots at the edges of names
    ("Sukarno", "-", "sukarno"),  # a single-name person (HR sends a dash as family name)
    ("---", "...", "n134"),  # nothing usable: the employee id
    ("Admin", "-", "admin2"),  # reserved
    ("Root", ".", "root2"),  # reserved
    # 93 characters: cut at 64
    ("Maximilian Alexander Friedrich", "Wolfeschlegelsteinhausenbergerdorff",
     "maximilianalexanderfriedrich.wolfeschlegelsteinhausenbergerdorff"),
    # the given name alone is 63 characters: the cut leaves no dot before '@'
    ("Pablo Diego José Francisco de Paula Juan Nepomuceno Cipriano Ruiz y Blasco", "Picasso",
     "pablodiegojosefranciscodepaulajuannepomucenociprianoruizyblasco"),
]


def _employee(i: int) -> str:
    return f"N{100 + i}"


def _login(svc, employee_id: str) -> str | None:
    with svc.db.transaction() as session:
        person = identities.by_employee_id(session, employee_id)
        return person.user_name if person else None


async def test_real_world_names_get_valid_logins_read_back_from_entra(service, entra: EntraView):
    assert len(NAMES) >= 30
    resp = await service.send([hire(f"h{i}", _employee(i), given, family, "Sales")
                               for i, (given, family, _) in enumerate(NAMES)])
    assert resp.status_code == 202, resp.text
    await service.drain()
    wrong = {}
    for i, (given, family, local) in enumerate(NAMES):
        user = entra.user(_employee(i))
        assert user is not None, f"{given} {family}: no account in Entra ID"
        got = user["userPrincipalName"]
        if got != f"{local}@example.com":
            wrong[f"{given} {family}"] = got
        assert upn.problem(got) is None, got
        assert len(got.partition("@")[0]) <= upn.LOCAL_MAX
        assert user["mailNickname"] == got.partition("@")[0]
        assert user["mail"] == got
        assert _login(service, _employee(i)) == got  # the service records what Entra holds
    assert wrong == {}


async def test_collision_suffix_keeps_a_64_character_login_within_64(service, entra: EntraView):
    given, family = "Maximilian Alexander Friedrich", "Wolfeschlegelsteinhausenbergerdorff"
    await service.send([hire("c1", "C1", given, family, "Sales"), hire("c2", "C2", given, family, "Sales"),
                        hire("c3", "C3", "Pablo Diego José Francisco de Paula Juan Nepomuceno Cipriano Ruiz y Blasco",
                             "Picasso", "Sales"),
                        hire("c4", "C4", "Pablo Diego José Francisco de Paula Juan Nepomuceno Cipriano Ruiz y Blasco",
                             "Picasso", "Sales")])
    await service.drain()
    first, second = entra.user("C1")["userPrincipalName"], entra.user("C2")["userPrincipalName"]
    assert first == "maximilianalexanderfriedrich.wolfeschlegelsteinhausenbergerdorff@example.com"
    assert second == "maximilianalexanderfriedrich.wolfeschlegelsteinhausenbergerdorf2@example.com"
    assert len(second.partition("@")[0]) == 64
    third, fourth = entra.user("C3")["userPrincipalName"], entra.user("C4")["userPrincipalName"]
    assert third == "pablodiegojosefranciscodepaulajuannepomucenociprianoruizyblasco@example.com"
    assert fourth == "pablodiegojosefranciscodepaulajuannepomucenociprianoruizyblasco2@example.com"


async def test_collision_with_an_account_already_in_entra_gets_the_next_suffix(service, entra: EntraView):
    service.sandbox.seed_user("orjan.oye@example.com", display_name="Another Ørjan")
    await service.send(hire("o1", "O1", "Ørjan", "Øye", "Sales"))
    await service.drain()
    assert entra.user("O1")["userPrincipalName"] == "orjan.oye2@example.com"


async def test_hr_login_override_is_used(service, entra: EntraView):
    await service.send([hire("p1", "P1", "太郎", "山田", "Sales", preferred_login="Taro.Yamada"),
                        hire("p2", "P2", "Hanako", "Yamada", "Sales", preferred_login="taro.yamada"),
                        hire("p3", "P3", "Post", "Master", "Sales", preferred_login="postmaster")])
    await service.drain()
    assert entra.user("P1")["userPrincipalName"] == "taro.yamada@example.com"
    assert entra.user("P2")["userPrincipalName"] == "taro.yamada2@example.com"  # taken: a suffix
    assert entra.user("P3")["userPrincipalName"] == "postmaster2@example.com"  # reserved: skipped



async def test_a_64_character_login_override_is_stored_and_collides_within_64(service, entra: EntraView):
    """At the column's limit (PostgreSQL refuses one character more than it holds)."""
    longest = "l" * 60 + ".oye"
    await service.send([hire("q1", "Q1", "Ørjan", "Øye", "Sales", preferred_login=longest),
                        hire("q2", "Q2", "Åse", "Øye", "Sales", preferred_login=longest.upper())])
    await service.drain()
    assert entra.user("Q1")["userPrincipalName"] == f"{longest}@example.com"
    assert entra.user("Q2")["userPrincipalName"] == "l" * 60 + ".oy2@example.com"
    with service.db.transaction() as session:
        assert identities.by_employee_id(session, "Q2").preferred_login == longest  # lower-cased at intake


@pytest.mark.parametrize("bad", ["taro yamada", "taro..yamada", ".taro", "taro.", "taro@example.com", "tarō",
                                 "a&b", "-taro", "x" * 65, "taro!"])
async def test_an_invalid_login_override_is_refused_at_intake_naming_the_field(service, entra: EntraView, bad):
    resp = await service.send(hire("b1", "B1", "Taro", "Yamada", "Sales", preferred_login=bad))
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert "attributes.preferred_login" in problem["detail"], problem
    await service.drain()
    assert entra.user("B1") is None  # nothing half-stored


async def test_reserved_logins_are_configurable(database_url, tmp_path):
    from provisioner.demo.harness import SandboxedService

    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                           target_overrides={"accounts": {"domain": "example.com",
                                                          "reserved_logins": ["ada.lovelace"]}})
    try:
        await svc.send([hire("r1", "R1", "Ada", "Lovelace", "Sales"), hire("r2", "R2", "Admin", "-", "Sales")])
        await svc.drain()
        view = EntraView(svc)
        assert view.user("R1")["userPrincipalName"] == "ada.lovelace2@example.com"
        assert view.user("R2")["userPrincipalName"] == "admin@example.com"  # no longer reserved here
    finally:
        await svc.close()


async def test_name_change_keeps_the_login_by_default(service, entra: EntraView):
    await service.send(hire("k1", "K1", "Zoë", "Brontë", "Sales"))
    await service.drain()
    await service.send(event("k2", "update", "K1", family_name="Nicholls"))
    await service.drain()
    user = entra.user("K1")
    assert user["surname"] == "Nicholls"
    assert user["userPrincipalName"] == "zoe.bronte@example.com"
    assert user["mail"] == "zoe.bronte@example.com"
    assert _login(service, "K1") == "zoe.bronte@example.com"
    assert (await WikiView(service).user("K1"))["userName"] == "zoe.bronte@example.com"


async def test_name_change_renames_the_login_under_the_rename_policy(database_url, tmp_path):
    from provisioner.demo.harness import SandboxedService

    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                           target_overrides={"accounts": {"domain": "example.com", "on_name_change": "rename"}})
    try:
        view = EntraView(svc)
        svc.sandbox.seed_user("zoe.nicholls@example.com", display_name="Another Zoë")
        await svc.send([hire("n1", "R1", "Zoë", "Brontë", "Sales"), hire("n2", "R2", "Ada", "Byron", "Sales")])
        await svc.drain()
        remote_id = view.remote_id("R1")
        assert view.user("R1")["userPrincipalName"] == "zoe.bronte@example.com"
        await svc.send([event("n3", "update", "R1", family_name="Nicholls"),
                        event("n4", "update", "R2", department="Finance")])  # not a name change
        await svc.drain()
        user = view.user("R1")
        assert view.remote_id("R1") == remote_id  # the same account, renamed
        assert user["userPrincipalName"] == "zoe.nicholls2@example.com"  # collision-checked
        assert user["mail"] == "zoe.nicholls2@example.com"
        assert user["mailNickname"] == "zoe.nicholls2"
        assert _login(svc, "R1") == "zoe.nicholls2@example.com"
        with svc.db.transaction() as session:
            person = identities.by_employee_id(session, "R1")
            assert identities.account(session, person.id, "entra").login == "zoe.nicholls2@example.com"
        assert view.user("R2")["userPrincipalName"] == "ada.byron@example.com"
        # The SCIM app's userName maps {login} (the default): it follows, read back over SCIM.
        wiki = WikiView(svc)
        assert (await wiki.user("R1"))["userName"] == "zoe.nicholls2@example.com"
        assert (await wiki.user("R2"))["userName"] == "ada.byron@example.com"
        # The old login is free again for someone else.
        await svc.send(hire("n5", "R3", "Zoë", "Brontë", "Sales"))
        await svc.drain()
        assert view.user("R3")["userPrincipalName"] == "zoe.bronte@example.com"
        # HR's override is a name change too.
        await svc.send(event("n6", "update", "R2", preferred_login="lady.byron"))
        await svc.drain()
        assert view.user("R2")["userPrincipalName"] == "lady.byron@example.com"
    finally:
        await svc.close()
