"""`provisioner import FILE --wait` follows the import to the end while the service does the
work: the events applied, the operations per target done, then a one-line summary and exit 0;
an operation that ends dead makes it exit 1 with the command that lists them. The end state is
read back from the Graph sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provisioner.cli.main import app
from provisioner.settings import get_settings
from tests.support import EntraView

runner = CliRunner()


@pytest.fixture
def cli_env(service, monkeypatch):
    monkeypatch.setenv("PROVISIONER_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("PROVISIONER_POLICIES_DIR", str(service.settings.policies_dir))
    monkeypatch.setenv("PROVISIONER_TARGETS_DIR", str(service.settings.targets_dir))
    get_settings.cache_clear()
    yield service
    get_settings.cache_clear()


async def import_waiting(service, *args: str):
    """The CLI in a thread, the service (processor and worker) running beside it until it ends."""
    done = asyncio.ensure_future(asyncio.to_thread(runner.invoke, app, ["import", *args, "--wait"]))
    while not done.done():
        await service.drain(max_wait=5)
        await asyncio.sleep(0.1)
    return await done


def extract(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "extract.csv"
    path.write_text("employee_id,given_name,family_name,department,location,employment_type\n" + "\n".join(rows) + "\n")
    return path


async def test_import_wait_shows_the_work_to_the_end_and_exits_0(cli_env, entra: EntraView, tmp_path: Path):
    people = [f"W{n},Wai,Ting{n},Engineering,DE-BER-2,employee" for n in range(6)]
    result = await import_waiting(cli_env, str(extract(tmp_path, people)))
    assert result.exit_code == 0, result.output
    assert "6 event(s) stored" in result.output
    assert "events applied" in result.output and "entra operations" in result.output  # the bars
    done = next(line for line in result.output.splitlines() if line.startswith("done:"))
    assert "6 event(s): 6 applied" in done and "entra: " in done and " dead" not in done, done
    for n in range(6):  # finished means finished: everything is in Graph already
        assert entra.groups(f"W{n}") == {"All Staff", "Employees", "Engineering", "GitHub Users", "Berlin Office"}


async def test_import_wait_exits_1_naming_the_command_when_an_operation_ends_dead(cli_env, tmp_path: Path):
    cli_env.sandbox.fail_next("POST", r"^/users$", status=400, code="Request_BadRequest",
                              message="Property mailNickname is invalid", times=1)
    people = [f"D{n},Dee,Ad{n},Sales,US-NYC,employee" for n in range(3)]
    result = await import_waiting(cli_env, str(extract(tmp_path, people)))
    assert result.exit_code == 1, result.output
    assert "operation(s) dead: see 'provisioner ops list --status dead'" in result.output
    done = next(line for line in result.output.splitlines() if line.startswith("done:"))
    assert "3 event(s): 3 applied" in done and " dead" in done, done
