"""Benchmark of the SCIM endpoint against a scim2-server peer (``provisioner bench scim``).

Seeds ``users`` identities straight into a scratch database (bulk INSERT), serves the endpoint
with uvicorn in a subprocess on a free loopback port, starts ``scim2-server`` (in memory) as the
peer and seeds it with ``peer_users`` users through the protocol (``POST /Bulk``), then
measures both the same way for ``seconds`` per scenario, in ``rounds`` alternating rounds
(:mod:`provisioner.bench.load`) — by default one aiohttp client sending one request at a time
(``concurrency``, ``workers`` and ``client`` change that):

* ``filter=userName eq "..."`` — target: at least 3x the peer's rate and p99 < 50 ms;
* ``filter=userName sw "..."`` — target: at least 50x the peer's rate (an index range here,
  a full scan there);
* ``GET /Users/{id}`` and ``POST /Users``.

Everything listens on 127.0.0.1 and is stopped at the end; the scratch database is removed
(a PostgreSQL ``database_url`` names the server: a scratch database is created on it and
dropped afterwards). The scratch database is built by the migrations, so it has the indexes
the endpoint relies on (0003: case-insensitive userName, e-mail and group displayName).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from provisioner.bench.load import Call, Client, Scenario, Target, auth_headers, interleaved
from provisioner.bench.scim_setup import (
    sample_ids,
    scratch_database,
    seed_identities,
    seed_peer,
    serve_endpoint,
    serve_peer,
    user_name,
)
from provisioner.db import Database
from provisioner.tokens.service import create_token

_DB_ENV = "PROVISIONER_BENCH_DATABASE_URL"
_USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
_SW_PREFIX_DIGITS = 6  # "user000123" matches 10 users: one page, no COUNT needed
_TARGETS = {"eq": ("3x", 3.0, 50.0), "sw": ("50x", 50.0, None)}


def bench_app() -> Any:
    """The uvicorn factory run in the server subprocess."""
    from fastapi import FastAPI

    from provisioner.scim.app import mount_scim

    app = FastAPI()
    app.state.db = Database(os.environ[_DB_ENV])
    mount_scim(app)
    return app


def run(
    *,
    users: int = 100_000,
    database_url: str | None = None,
    peer_users: int = 10_000,
    seconds: float = 5.0,
    concurrency: int = 1,
    workers: int = 1,
    client: Client = "aiohttp",
    rounds: int = 5,
    console: Console | None = None,
) -> list[dict[str, Any]]:
    """Run the benchmark; returns one dict per scenario and prints a table.

    :param users: identities seeded into the endpoint's database.
    :param database_url: ``None`` for a scratch SQLite file; a PostgreSQL URL for a scratch
        database on that server; a SQLite URL for that (empty) file.
    :param peer_users: users seeded into the scim2-server peer.
    :param seconds: measuring time per scenario and server.
    :param rounds: the ``seconds`` are split into this many rounds, alternating between the
        endpoint and the peer (:func:`provisioner.bench.load.interleaved`), so load from
        outside the benchmark falls on both.
    :param concurrency: clients sending requests at the same time (each its own httpx
        client and connection); 1 measures one request at a time.
    :param workers: uvicorn worker processes serving the endpoint (the peer keeps its
        resources in memory and can only run as one process).
    :param client: the load client. ``httpx`` costs about 1 ms a request on a 2-core host,
        as much as the server under test; ``aiohttp`` costs less, so ratios show more of the
        servers' difference.
    """
    console = console or Console()
    started = time.perf_counter()
    with scratch_database(database_url) as url:
        db = Database(url)
        try:
            console.print(
                f"[bold]SCIM bench[/]: {db.dialect}, {users:,} users, peer scim2-server with "
                f"{peer_users:,} users, {seconds:g}s per scenario and server in {rounds} "
                f"alternating rounds, {concurrency} concurrent "
                f"{client} client(s), {workers} uvicorn worker(s)"
            )
            seeded = seed_identities(db, users)
            console.print(f"seeded {users:,} identities in {seeded:.1f}s")
            with db.transaction() as session:
                token = create_token(
                    session, f"bench-{uuid.uuid4().hex[:8]}", {"scim:read", "scim:write"}
                )
            user_ids = sample_ids(db, 2000)
        finally:
            db.dispose()
        peer_token = uuid.uuid4().hex
        with (
            serve_endpoint(url, workers) as ours_url,
            serve_peer(peer_token) as peer_url,
        ):
            with httpx.Client(base_url=peer_url, headers=auth_headers(peer_token), timeout=120) as peer:
                t0 = time.perf_counter()
                peer_ids = seed_peer(peer, peer_users)
            console.print(
                f"seeded the peer with {peer_users:,} users in {time.perf_counter() - t0:.1f}s"
            )
            ours = Target(ours_url, token)
            theirs = Target(peer_url, peer_token)
            results = _measure(
                ours,
                theirs,
                users=users,
                peer_users=peer_users,
                our_ids=user_ids,
                peer_ids=peer_ids,
                seconds=seconds,
                rounds=rounds,
                concurrency=concurrency,
                client=client,
            )
    for row in results:
        row.update(
            concurrency=concurrency,
            workers=workers,
            client=client,
            users=users,
            peer_users=peer_users,
        )
    _print(
        console,
        results,
        time.perf_counter() - started,
        f"{concurrency} {client} client(s), {workers} worker(s)",
    )
    return results


# -- measuring -----------------------------------------------------------------------------


def _scenarios(population: int, ids: list[str]) -> dict[str, Scenario]:
    tag = uuid.uuid4().hex[:8]

    def eq(_i: int) -> Call:
        name = user_name(random.randrange(population)).upper()  # caseExact=false
        return Call("GET", "/Users", params={"filter": f'userName eq "{name}"'})

    def sw(_i: int) -> Call:
        prefix = user_name(random.randrange(population))[: 4 + _SW_PREFIX_DIGITS]
        return Call("GET", "/Users", params={"filter": f'userName sw "{prefix}"'})

    def by_id(_i: int) -> Call:
        return Call("GET", f"/Users/{random.choice(ids)}")

    def post(i: int) -> Call:
        body = {
            "schemas": [_USER_SCHEMA],
            "userName": f"new-{tag}-{i}@bench.example.com",
            "name": {"givenName": "New", "familyName": f"User{i}"},
            "active": True,
        }
        return Call("POST", "/Users", body=body)

    return {"eq": eq, "sw": sw, "get": by_id, "post": post}


def _measure(
    ours: Target,
    peer: Target,
    *,
    users: int,
    peer_users: int,
    our_ids: list[str],
    peer_ids: list[str],
    seconds: float,
    rounds: int,
    concurrency: int,
    client: Client,
) -> list[dict[str, Any]]:
    labels = {
        "eq": 'filter=userName eq "..."',
        "sw": 'filter=userName sw "..." (10 matches)',
        "get": "GET /Users/{id}",
        "post": "POST /Users",
    }
    ours_scenarios = _scenarios(users, our_ids)
    peer_scenarios = _scenarios(peer_users, peer_ids)
    results = []
    for key, label in labels.items():
        ours_sample, peer_sample, round_ratios = interleaved(
            (ours, ours_scenarios[key]),
            (peer, peer_scenarios[key]),
            seconds=seconds,
            rounds=rounds,
            concurrency=concurrency,
            client=client,
        )
        mine, theirs = ours_sample.summary(), peer_sample.summary()
        ratio = mine["rps"] / theirs["rps"] if theirs["rps"] else float("inf")
        target = _TARGETS.get(key)
        met: bool | None = None
        note: str | None = None
        if target is not None:
            note, min_ratio, max_p99 = target
            met = ratio >= min_ratio and (max_p99 is None or mine["p99_ms"] < max_p99)
            if max_p99 is not None:  # say which half of the target holds
                ratio_ok, p99_ok = ratio >= min_ratio, mine["p99_ms"] < max_p99
                note = (f"{note} {'met' if ratio_ok else 'missed'}, p99 < {max_p99:g} ms "
                        f"{'met' if p99_ok else 'missed'}")
        results.append(
            {
                "scenario": key,
                "label": label,
                "ours": mine,
                "peer": theirs,
                "ratio": ratio,
                "round_ratios": round_ratios,
                "target": note,
                "met": met,
            }
        )
    return results


def _print(console: Console, results: list[dict[str, Any]], elapsed: float, setup: str) -> None:
    table = Table(title=f"SCIM endpoint vs scim2-server ({setup}, {elapsed:.0f}s)")
    for column in (
        "scenario",
        "ours req/s",
        "p50 ms",
        "p99 ms",
        "peer req/s",
        "p50 ms",
        "p99 ms",
        "ratio",
        "rounds",
        "target",
    ):
        table.add_column(column, justify="left" if column in ("scenario", "target") else "right")
    for row in results:
        ours, peer = row["ours"], row["peer"]
        verdict = ""
        if row["target"]:
            verdict = ("[green]met[/]: " if row["met"] else "[red]missed[/]: ") + row["target"]
        errors = f" [red]({ours['errors']} errors)[/]" if ours["errors"] else ""
        table.add_row(
            row["label"] + errors,
            f"{ours['rps']:.0f}",
            f"{ours['p50_ms']:.1f}",
            f"{ours['p99_ms']:.1f}",
            f"{peer['rps']:.1f}",
            f"{peer['p50_ms']:.1f}",
            f"{peer['p99_ms']:.1f}",
            f"{row['ratio']:.1f}x",
            f"{min(row['round_ratios']):.1f}-{max(row['round_ratios']):.1f}x",
            verdict,
        )
    console.print(table)
    console.print(
        "ratio: our requests/s over the peer's, both pooled over the alternating rounds; "
        "rounds: the lowest and highest ratio of one round."
    )


if __name__ == "__main__":  # pragma: no cover - manual runs
    run(
        users=int(os.environ.get("BENCH_USERS", "100000")),
        database_url=os.environ.get("BENCH_DATABASE_URL") or None,
        peer_users=int(os.environ.get("BENCH_PEER_USERS", "10000")),
        seconds=float(os.environ.get("BENCH_SECONDS", "5")),
        concurrency=int(os.environ.get("BENCH_CONCURRENCY", "1")),
        workers=int(os.environ.get("BENCH_WORKERS", "1")),
        client="httpx" if os.environ.get("BENCH_CLIENT") == "httpx" else "aiohttp",
        rounds=int(os.environ.get("BENCH_ROUNDS", "5")),
        console=Console(width=200),
    )
