"""The demo tournament: every service as its own process, ~50 participants, a few full rounds.

Each round: open with generated data; every participant downloads it through the client, trains
and uploads; then the operator pipeline closes, resolves, scores, publishes, allocates and pays
in Bitcoin batches. At the end: the ledger's trial balance, its hash chain, reconciliation.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crowdquant.cli.bootstrap import create_key, create_service_keys
from crowdquant.cli.cluster import Cluster
from crowdquant.client import Client
from crowdquant.common.v1 import common_pb2
from crowdquant.demo import participants as cast
from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as lb_pb
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.pipeline import Addresses, Pipeline
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from services.registry import SERVICES
from shared import embedded_pg
from shared.auth import Role
from shared.config import CommonSettings
from shared.db import to_plain_url
from shared.logging import configure_logging

TOURNAMENT = "demo"
POOL_SATOSHIS = 5_000_000  # 0.05 BTC per round
PROBES = 12


@dataclass
class Player:
    profile: cast.Profile
    participant_id: str
    key: str
    model_id: str = ""


def fresh_database(server_url: str, name: str) -> str:
    async def make() -> None:
        conn = await asyncpg.connect(to_plain_url(embedded_pg.with_database(server_url, "postgres")))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(make())
    return embedded_pg.with_database(server_url, name)


def address(seed: bytes) -> str:
    from bitcoinlib.keys import HDKey

    return HDKey(seed, network="bitcoinlib_test", witness_type="segwit").address()


def reason_words(reason: common_pb2.PayoutReason) -> str:
    """NOT_ORIGINAL -> "not original": the short form shown beside a 0 payout."""
    return common_pb2.ZeroPayoutReason.Name(reason.code).removeprefix("ZERO_PAYOUT_REASON_").lower().replace("_", " ")


def fmt(value: float, digits: int = 5) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "-"


class Demo:
    def __init__(
        self, console: Console, *, rounds: int, participants: int, small: bool, database_url: str, data_dir: Path
    ) -> None:
        self.console = console
        self.rounds = rounds
        self.n = participants
        self.small = small
        self.url = database_url
        self.data_dir = data_dir
        self.players: list[Player] = []
        self.cluster: Cluster | None = None
        self.pipeline: Pipeline | None = None

    def spec(self, round_number: int) -> sub_pb.GeneratedDatasetSpec:
        if self.small:
            # 6 validation and 4 live eras of 500 rows: live rows alone decide the resolved board
            return sub_pb.GeneratedDatasetSpec(
                seed=round_number,
                n_train=6000,
                n_validation=3000,
                n_live=2000,
                n_features=10,
                n_training_eras=20,
                n_tournament_eras=10,
                signal_strength=0.4,
            )
        return sub_pb.GeneratedDatasetSpec(seed=round_number)

    # --- set-up ----------------------------------------------------------------------------

    def start(self) -> None:
        settings = CommonSettings()
        service_keys = asyncio.run(create_service_keys(settings, "demo", url=self.url))
        self.operator = asyncio.run(create_key(settings, Role.OPERATOR, "", "demo operator", [], url=self.url))
        self.cluster = Cluster(
            database_url=self.url,
            service_keys=service_keys,
            log_dir=self.data_dir / "logs",
            with_gateway=True,
            env={"CROWDQUANT_DATA_DIR": str(self.data_dir.resolve())},
        )
        with self.console.status("starting the services"):
            self.cluster.start_all()
            status = asyncio.run(self.cluster.wait_healthy())
        table = Table(title="services (each its own process)")
        for column in ("service", "address", "health"):
            table.add_column(column)
        for name in SERVICES:
            table.add_row(name, self.cluster.addr(name), status[name])
        if self.cluster.gateway_port:
            table.add_row("gateway", f"http://127.0.0.1:{self.cluster.gateway_port}/", "HTTP")
        self.console.print(table)
        healthy = sum(s == "SERVING" for s in status.values())
        self.console.print(f"{healthy} of {len(SERVICES)} services healthy; logs in {self.cluster.log_dir}")
        bad = [n for n, s in status.items() if s != "SERVING"]
        if bad:
            raise RuntimeError(f"services not healthy: {', '.join(bad)}; see {self.cluster.log_dir}")
        self.addresses = Addresses(**{name: self.cluster.addr(name) for name in SERVICES})
        self.pipeline = Pipeline(self.addresses, self.operator)

    def setup_tournament(self) -> None:
        p = self.pipeline
        assert p is not None
        p.call(
            p.submissions.CreateTournament,
            sub_pb.CreateTournamentRequest(
                request_id="demo-tournament",
                tournament_id=TOURNAMENT,
                display_name="crowdquant demo",
                target_kind=common_pb2.TARGET_KIND_BINARY,
                network=common_pb2.BITCOIN_NETWORK_BITCOINLIB_TEST,
                rules=sub_pb.TournamentRules(
                    upload=sub_pb.UploadRules(max_uploads_per_model_per_round=PROBES + 3, min_std=-1),
                    payout=sub_pb.PayoutRules(
                        policy=common_pb2.PAYOUT_POLICY_POOL,
                        pool=common_pb2.PoolParameters(pool_satoshis=POOL_SATOSHIS),
                        require_originality=True,
                    ),
                ),
            ),
        )
        identity = id_grpc.IdentityServiceStub(p.channels["submissions"])
        profiles = cast.profiles(self.n)
        with self._progress("creating participants and models", len(profiles)) as (progress, task):
            for i, profile in enumerate(profiles):
                participant = p.call(
                    identity.CreateParticipant,
                    id_pb.CreateParticipantRequest(request_id=f"demo-p-{i}", display_name=profile.name),
                ).participant
                key = p.call(
                    identity.CreateApiKey,
                    id_pb.CreateApiKeyRequest(
                        request_id=f"demo-k-{i}",
                        participant_id=participant.participant_id,
                        role=common_pb2.ROLE_PARTICIPANT,
                        description="demo",
                    ),
                ).secret
                player = Player(profile, participant.participant_id, key)
                with Client(self.addresses.submissions, key) as client:
                    payout = address(bytes([i % 250 + 1]) * 32)
                    player.model_id = client.create_model(
                        TOURNAMENT, profile.name, payout, request_id=f"demo-m-{i}"
                    ).model_id
                self.players.append(player)
                progress.update(task, advance=1)
        self._stake()

    def _stake(self) -> None:
        """Good participants deposit and stake, so the meta model is stake-weighted for real."""
        p = self.pipeline
        assert p is not None
        for i, player in enumerate(self.players):
            if player.profile.kind not in ("good", "prober"):
                continue
            amount = 100_000 * (1 + i % 5)
            p.call(
                p.payouts.RecordDeposit,
                po_pb.RecordDepositRequest(
                    request_id=f"demo-deposit-{i}",
                    participant_id=player.participant_id,
                    amount_satoshis=amount,
                    memo="demo funding",
                ),
            )
            p.call(
                p.payouts.SetStake,
                po_pb.SetStakeRequest(
                    request_id=f"demo-stake-{i}", model_id=player.model_id, amount_satoshis=amount // 2
                ),
                key=player.key,
            )

    # --- a round ---------------------------------------------------------------------------

    def _progress(self, label: str, total: int):  # type: ignore[no-untyped-def]
        progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )

        class _Ctx:
            def __enter__(self_inner):
                progress.start()
                return progress, progress.add_task(label, total=total)

            def __exit__(self_inner, *exc):
                progress.stop()

        return _Ctx()

    def participate(self, player: Player, number: int, copied: dict[str, Any]) -> int:
        """One participant's round: download, train (or copy), upload; returns its upload count."""
        with Client(self.addresses.submissions, player.key) as client:
            data = client.fetch_data(TOURNAMENT, number).dataset
            profile = player.profile
            if profile.kind == "copy":
                ids, values = copied["source"]
                values = cast.near_copy(values, profile.seed + number)
            else:
                ids, values = cast.predict(profile, data, number)
            uploads = 0
            if profile.kind == "prober":
                for variant in cast.perturbations(values, PROBES, profile.seed + number):
                    client.submit(TOURNAMENT, (ids, variant), model=player.model_id, round_number=number)
                    uploads += 1
            client.submit(TOURNAMENT, (ids, values), model=player.model_id, round_number=number)
            if player is self.copied_player():
                copied["source"] = (ids, values)
            return uploads + 1

    def copied_player(self) -> Player | None:
        """Whom the copycats copy: the first honest linear model (deterministic, for reproducible rounds)."""
        return next((pl for pl in self.players if pl.profile.kind == "good"), None)

    def play_round(self, number: int, *, run_pipeline: bool = True) -> None:
        p = self.pipeline
        assert p is not None
        self.console.rule(f"[bold]round {number}")
        opened = p.open(TOURNAMENT, self.spec(number))
        ref = opened.round
        self.console.print(
            f"opened round {ref.round_number}: {opened.training_rows:,} training, "
            f"{opened.validation_rows:,} validation, {opened.live_rows:,} live rows; "
            f"commitment {opened.commitment_sha256[:16]}…"
        )
        copied: dict[str, Any] = {}
        # copycats go last: they copy someone who already uploaded (and the originality check sees it)
        first = [pl for pl in self.players if pl.profile.kind != "copy"]
        later = [pl for pl in self.players if pl.profile.kind == "copy"]
        uploads = 0
        with (
            self._progress("participants download, train, upload", len(self.players)) as (progress, task),
            ThreadPoolExecutor(max_workers=4) as pool,
        ):
            for group in (first, later):
                for done in pool.map(lambda pl: self.participate(pl, ref.round_number, copied), group):
                    uploads += done
                    progress.update(task, advance=1)
        self.console.print(f"{uploads} uploads accepted")
        if not run_pipeline:
            return
        steps = ["close", "resolve", "score", "publish", "allocate", "pay"]
        with self._progress("pipeline: close, resolve, score, publish, allocate, pay", len(steps)) as (prog, task):
            outcome = p.run(ref)
            prog.update(task, completed=len(steps))
        self.report_round(ref, outcome)

    def report_round(self, ref: common_pb2.RoundRef, outcome: Any) -> None:
        p = self.pipeline
        assert p is not None
        board = p.call(p.leaderboard.GetRoundLeaderboard, lb_pb.GetRoundLeaderboardRequest(round=ref, page_size=10))
        lines = {x.model.model_id: x for x in outcome.allocation.lines} if outcome.allocation is not None else {}
        meta = p.call(p.scoring.GetMetaModel, sc_pb.GetMetaModelRequest(round=ref)).meta_model
        # resolved scores come from the live eras alone (validation rows only fed the open round's Ladder board)
        table = Table(
            title=f"round {ref.round_number} leaderboard on {len(meta.corr.eras)} live eras, top 10 by "
            f"{common_pb2.Metric.Name(board.metric).removeprefix('METRIC_').lower()}"
        )
        for column in ("rank", "model", "value", "95% interval", "tied", "payout (sat)", "why 0"):
            table.add_column(column, justify="left" if column in ("model", "why 0") else "right")
        for e in board.entries:
            tied = "≈" if e.tied_with_previous or e.tied_with_next else ""
            interval = f"{fmt(e.ci_low)} … {fmt(e.ci_high)}"
            line = lines.get(e.model_id)
            reason = (
                line.zero_payout
                if line is not None and line.HasField("zero_payout")
                else (e.zero_payout if e.HasField("zero_payout") else None)
            )
            amount = line.amount_satoshis if line is not None else e.payout_satoshis
            table.add_row(
                str(e.rank),
                e.model_display_name,
                fmt(e.value),
                interval,
                tied,
                f"{amount:,}",
                reason_words(reason) if reason is not None else "",
            )
        self.console.print(table)
        policy = common_pb2.MetaModelPolicy.Name(meta.policy).removeprefix("META_MODEL_POLICY_").lower()
        own = [
            f"{name} {fmt(getattr(meta, field).overall if name != 'CORR' else meta.corr.mean)}"
            for name, field in (("CORR", "corr"), ("AUC", "auc"), ("logloss", "logloss"))
            if meta.HasField(field)
        ]
        self.console.print(f"meta model ({policy}): {', '.join(own)}")
        if outcome.allocation is not None:
            a = outcome.allocation
            flagged = [line for line in a.lines if not line.eligible]
            paid = sum(1 for x in a.lines if x.amount_satoshis > 0)
            self.console.print(f"allocation: {a.total_satoshis:,} sat to {paid} models; {len(flagged)} not eligible")
            examples: dict[int, tuple[int, str]] = {}
            for x in a.lines:
                if x.HasField("zero_payout"):
                    count, detail = examples.get(x.zero_payout.code, (0, x.zero_payout.detail))
                    examples[x.zero_payout.code] = (count + 1, detail)
            for code, (count, detail) in sorted(examples.items(), key=lambda kv: -kv[1][0]):
                words = reason_words(common_pb2.PayoutReason(code=code))
                self.console.print(f"  paid 0 — {words}: {count} model(s), e.g. {detail}")
        for batch in outcome.batches:
            state = po_pb.Batch.State.Name(batch.state).removeprefix("STATE_")
            self.console.print(
                f"batch {batch.batch_id}: txid {batch.txid} — {len(batch.outputs)} payees, "
                f"{batch.total_output_satoshis:,} sat, fee {batch.fee_satoshis:,} sat, {state}"
            )
        self.console.print(f"round state: {outcome.state}")

    # --- the end ---------------------------------------------------------------------------

    def audit(self) -> bool:
        p = self.pipeline
        assert p is not None
        self.console.rule("[bold]audit")
        trial = p.trial_balance()
        self.console.print(
            f"trial balance: debits {trial.total_debit_satoshis:,} = credits "
            f"{trial.total_credit_satoshis:,} sat over {len(trial.lines)} accounts: "
            f"{'balanced' if trial.balanced else 'NOT BALANCED'}"
        )
        chain = p.verify_chain()
        self.console.print(
            f"hash chain: {chain.entries_checked:,} entries, "
            f"{'verified' if chain.ok else 'BROKEN at ' + chain.first_bad_entry_id}"
        )
        rec = p.reconcile()
        self.console.print(
            f"reconciliation: {rec.outputs_checked} payee outputs checked, wallet ledger "
            f"{rec.wallet_ledger_satoshis:,} = UTXOs {rec.wallet_utxo_satoshis:,} sat: "
            f"{'clean' if rec.clean else f'{len(rec.differences)} differences'}"
        )
        return bool(trial.balanced and chain.ok and rec.clean)

    def stop(self) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
        if self.cluster is not None:
            self.cluster.stop()


def run_demo(*, rounds: int, participants: int, keep: bool, once: bool, small: bool = False) -> bool:
    console = Console()
    settings = CommonSettings()
    configure_logging("demo", "warning", "console")
    started = time.monotonic()
    with console.status("starting the embedded PostgreSQL"):
        if settings.database_url is not None:
            url = to_plain_url(settings.database_url.get_secret_value())
        else:
            url = fresh_database(embedded_pg.start(settings.data_dir), f"crowdquant_demo_{secrets.token_hex(3)}")
    demo = Demo(
        console,
        rounds=rounds,
        participants=participants,
        small=small,
        database_url=url,
        data_dir=Path(settings.data_dir),
    )
    ok = False
    try:
        demo.start()
        if once:
            return True
        demo.setup_tournament()
        for number in range(1, rounds + 1):
            demo.play_round(number)
        ok = demo.audit()
        console.rule()
        if demo.cluster and demo.cluster.gateway_port:
            console.print(f"public leaderboard: http://127.0.0.1:{demo.cluster.gateway_port}/")
        console.print(f"demo {'finished' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
        if keep:
            console.print("everything keeps running; press Ctrl-C to stop")
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
            try:
                signal.pause()
            except KeyboardInterrupt:
                console.print("stopping")
        return ok
    finally:
        demo.stop()
