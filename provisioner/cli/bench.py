"""``provisioner bench ...``: the benchmarks that print figures (each imports its module lazily,
so ``provisioner --help`` stays fast)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from provisioner.cli.common import console, fail, run

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")


@bench_app.command("lifecycle")
def bench_lifecycle(runs: int = 50, leavers: int = 1000, scale: float = 25.0,
                    intake_events: int = 2000,
                    postgres_url: Annotated[Optional[str], typer.Option(
                        envvar="PROVISIONER_BENCH_POSTGRES_URL",
                        help="also measure intake on this PostgreSQL server")] = None) -> None:
    """Time-to-revoke, Graph calls against the minimum, write budget use, intake rates."""
    from provisioner.bench.lifecycle import run_all

    raise typer.Exit(run(run_all(runs=runs, leavers=leavers, scale=scale, intake_events=intake_events,
                                 postgres_url=postgres_url)))


@bench_app.command("scim")
def bench_scim(users: int = 100_000, peer_users: int = 10_000, seconds: float = 5.0, concurrency: int = 1,
               rounds: Annotated[int, typer.Option(
                   help="alternate between the endpoint and the peer this many times per scenario")] = 5,
               postgres_url: Annotated[Optional[str], typer.Option(
                   envvar="PROVISIONER_BENCH_POSTGRES_URL",
                   help="also measure on a scratch database on this PostgreSQL server")] = None) -> None:
    """The SCIM endpoint against scim2-server (the peer) in the same run: eq, sw, GET by id, POST."""
    from provisioner.bench.scim_endpoint import run as run_scim

    for url in [None] + ([postgres_url] if postgres_url else []):
        run_scim(users=users, database_url=url, peer_users=peer_users, seconds=seconds,
                 concurrency=concurrency, rounds=rounds, console=console)


@bench_app.command("hr-bulk")
def bench_hr_bulk(records: Annotated[int, typer.Option(help="records per run (requests of 50)")] = 10_000,
                  concurrency: Annotated[int, typer.Option(help="clients posting at once in the second run")] = 8,
                  postgres_url: Annotated[Optional[str], typer.Option(
                      envvar="PROVISIONER_BENCH_POSTGRES_URL",
                      help="also measure on a scratch database on this PostgreSQL server")] = None) -> None:
    """POST /hr/bulkUpload intake: records/s, one client and several, against Entra's 40 requests/s x 50."""
    from provisioner.bench.hr_bulk import run as run_hr_bulk

    if records < 50 or concurrency < 1:
        fail("--records must be at least 50 and --concurrency at least 1")
    for url in [None] + ([postgres_url] if postgres_url else []):
        run_hr_bulk(records=records, concurrency=concurrency, database_url=url, console=console)


@bench_app.command("scim-targets")
def bench_scim_targets(joiners: int = 1000, groups: int = 5,
                       worker_batch_size: Annotated[Optional[int], typer.Option(
                           help="operations a worker claims per round (default: the setting's, 200)")] = None,
                       postgres_url: Annotated[Optional[str], typer.Option(
                           envvar="PROVISIONER_BENCH_POSTGRES_URL",
                           help="also measure on a scratch database on this PostgreSQL server")] = None) -> None:
    """Joiners into a SCIM app (scim2-server), Bulk on and off: operations/s, requests against the minimum."""
    from provisioner.bench.scim_targets import run_all as run_scim_targets

    extra = {"worker_batch_size": worker_batch_size} if worker_batch_size else {}
    run(run_scim_targets(joiners=joiners, groups=groups, postgres_url=postgres_url, settings=extra,
                         console=console))


@bench_app.command("revocation-backlog")
def bench_revocation_backlog(joiners: int = 2000, leavers: int = 10, interval: float = 1.0,
                             scim_delay: Annotated[float, typer.Option(
                                 help="seconds added to every request to the SCIM app")] = 0.05,
                             scim_op_cost: Annotated[float, typer.Option(
                                 help="seconds added per operation of a Bulk request to the SCIM app")] = 0.03,
                             entra_writes_per_second: float = 100.0,
                             hires_in_processor: Annotated[bool, typer.Option(
                                 help="send the terminates while the processor is still applying the "
                                      "joiners' hires (not only their operations in the queue)")] = False,
                             postgres_url: Annotated[Optional[str], typer.Option(
                                 envvar="PROVISIONER_BENCH_POSTGRES_URL",
                                 help="also measure on a scratch database on this PostgreSQL server")] = None) -> None:
    """Immediate terminates during a joiner backlog: 202 -> verified revocation in every target."""
    from provisioner.bench.revocation_backlog import run_all as run_revocation_backlog

    run(run_revocation_backlog(joiners=joiners, leavers=leavers, postgres_url=postgres_url, interval=interval,
                               scim_delay=scim_delay, scim_op_cost=scim_op_cost,
                               entra_writes_per_second=entra_writes_per_second,
                               hires_in_processor=hires_in_processor, console=console))


@bench_app.command("kill-soak")
def bench_kill_soak(trials: int = 10, people: int = 200,
                    workers: Annotated[int, typer.Option(help="worker processes")] = 2,
                    kill_api: Annotated[bool, typer.Option(help="also kill the API mid-batch every third trial")] = True,
                    seed: Annotated[Optional[int], typer.Option(help="random seed (default: a new one, printed)")] = None,
                    lease_seconds: Annotated[float, typer.Option(help="the workers' lease")] = 15.0,
                    drain_timeout: float = 600.0,
                    postgres_url: Annotated[Optional[str], typer.Option(
                        envvar="PROVISIONER_BENCH_POSTGRES_URL",
                        help="run on a scratch database on this PostgreSQL server (default: SQLite)")] = None) -> None:
    """SIGKILL workers (and the API) mid-run, then read the Graph sandbox back against the policies:
    trials, lost, duplicated, wrong. Exit 1 if anything is lost, duplicated or wrong."""
    from provisioner.bench.kill_soak import run as run_kill_soak

    if trials < 1 or people < 1 or workers < 1:
        fail("--trials, --people and --workers must be at least 1")
    raise typer.Exit(run(run_kill_soak(trials=trials, people=people, workers=workers, kill_api=kill_api,
                                       seed=seed, lease_seconds=lease_seconds, drain_timeout=drain_timeout,
                                       postgres_url=postgres_url, console=console)))


@bench_app.command("scale")
def bench_scale(people: int = 20_000,
                groups_per_person: Annotated[int, typer.Option(help="Entra groups per person (1 is all staff)")] = 8,
                scale: Annotated[float, typer.Option(help="the Graph sandbox's throttle scale (25: 500 writes/s)")] = 25.0,
                skip: Annotated[Optional[list[str]], typer.Option(
                    help="figures to leave out: load (with rollout, reconcile), rollout, reconcile, planning, "
                         "throughput, help; repeat or separate with commas")] = None,
                timeout: Annotated[float, typer.Option(help="seconds each phase may take")] = 1800.0,
                throughput_people: Annotated[Optional[int], typer.Option(
                    help="hires in figure 8's backlog (default: 5,000 or --people if fewer)")] = None,
                postgres_url: Annotated[Optional[str], typer.Option(
                    envvar="PROVISIONER_BENCH_POSTGRES_URL",
                    help="run on scratch databases on this PostgreSQL server (default: SQLite)")] = None) -> None:
    """Every figure of the company-scale targets in one run (real processes, the Graph sandbox at
    500 writes/s): load time, Graph writes and calls against the minimum, planning rate, policy
    rollout, reconcile, peak RSS, two workers vs one, --help. Exit 1 if anything is missing."""
    from provisioner.bench.scale import Options
    from provisioner.bench.scale import run as run_scale

    if people < 1 or groups_per_person < 1:
        fail("--people and --groups-per-person must be at least 1")
    names = tuple(n.strip() for item in (skip or []) for n in item.split(",") if n.strip())
    raise typer.Exit(run_scale(Options(people=people, groups_per_person=groups_per_person, postgres_url=postgres_url,
                                       scale=scale, skip=names, timeout=timeout,
                                       throughput_people=throughput_people), console))
