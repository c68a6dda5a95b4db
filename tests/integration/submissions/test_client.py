"""The participants' client and CLI against the real service: download, train, submit, verify."""

from __future__ import annotations

import asyncio
import os
import sys

import numpy as np
import pytest

from crowdquant.client import Client
from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from tests.integration.conftest import md
from tests.integration.submissions.conftest import SMALL, blt_address

T = "client"


@pytest.fixture(scope="module")
async def ready(subs, keys):
    await subs.CreateTournament(
        pb.CreateTournamentRequest(request_id="t-client", tournament_id=T, target_kind=common_pb2.TARGET_KIND_BINARY),
        metadata=md(keys.operator),
    )
    await subs.OpenRound(
        pb.OpenRoundRequest(request_id="open-c", tournament_id=T, generated=SMALL), metadata=md(keys.operator)
    )
    return True


async def test_client_downloads_trains_and_submits(services, keys, ready, tmp_path):
    client = Client(services["submissions"].address, keys.participant)
    try:
        model = await asyncio.to_thread(client.create_model, T, "linear", blt_address(5))
        paths = await asyncio.to_thread(client.download_data, T, tmp_path)
        assert [p.name for p in paths] == ["training_data.csv", "tournament_data.csv"]
        header = paths[1].read_text().splitlines()[0]
        assert header.startswith("id,era,data_type") or "id" in header
        fetched = await asyncio.to_thread(client.fetch_data, T)
        data = fetched.dataset
        train = data.split == 1
        x, y = data.features[train].astype(np.float64), data.targets[train]
        w = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y - 0.5, rcond=None)[0]
        tour = ~train
        preds = np.clip(0.5 + np.c_[data.features[tour], np.ones(tour.sum())] @ w, 0.01, 0.99)
        csv = tmp_path / "preds.csv"
        csv.write_text(
            "t_id,probability\r\n" + "".join(f"{i},{p:.6f}\r\n" for i, p in zip(data.ids[tour], preds, strict=True))
        )
        receipt = await asyncio.to_thread(client.submit, T, csv, model="linear")
        assert receipt.verified and receipt.version == 1 and receipt.model_id == model.model_id
        import pandas as pd

        frame = pd.DataFrame({"id": data.ids[tour], "prediction": preds[::-1]})
        second = await asyncio.to_thread(client.submit, T, frame, model=model.model_id)
        assert second.version == 2
        third = await asyncio.to_thread(client.submit, T, (data.ids[tour], preds * 0.5 + 0.25), model="linear")
        assert third.version == 3
        bad = tmp_path / "bad.csv"
        bad.write_text("id,prediction\nt1,0.5\nt2,oops\n")
        from shared.errors import InvalidArgument

        with pytest.raises(InvalidArgument, match="line 3"):
            await asyncio.to_thread(client.submit, T, bad, model="linear")
    finally:
        client.close()


async def run_cli(*args: str, key: str, addr: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDQUANT_")}
    env.update(CROWDQUANT_API_KEY=key, CROWDQUANT_SUBMISSIONS_ADDR=addr, CROWDQUANT_TOURNAMENT=T, COLUMNS="200")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crowdquant.cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_cli_download_submit_rounds_models(services, keys, ready, tmp_path):
    addr = services["submissions"].address
    client = Client(addr, keys.other)
    await asyncio.to_thread(client.create_model, T, "cli-model", blt_address(6))
    client.close()
    code, out, err = await run_cli("data", "download", str(tmp_path), key=keys.other, addr=addr)
    assert code == 0, err
    tournament_csv = (tmp_path / "tournament_data.csv").read_text().splitlines()
    ids = [line.split(",")[0] for line in tournament_csv[1:]]
    rng = np.random.default_rng(3)
    preds = tmp_path / "p.csv"
    preds.write_text(
        "id,prediction\n" + "".join(f"{i},{v:.5f}\n" for i, v in zip(ids, rng.uniform(0.2, 0.8, len(ids)), strict=True))
    )
    code, out, err = await run_cli("submit", str(preds), "--model", "cli-model", key=keys.other, addr=addr)
    assert code == 0, err
    assert "signature verified" in out and "version" in out
    code, out, _ = await run_cli("rounds", key=keys.other, addr=addr)
    assert code == 0 and "open" in out
    code, out, _ = await run_cli("models", key=keys.other, addr=addr)
    assert code == 0 and "cli-model" in out
    # errors: the server's message, no traceback
    code, out, err = await run_cli("submit", str(preds), "--model", "nope", key=keys.other, addr=addr)
    assert code != 0 and "Traceback" not in err and "nope" in err
    code, out, err = await run_cli("rounds", key="k_000000000000." + "A" * 43, addr=addr)
    assert code != 0 and "UNAUTHENTICATED" in err and "Traceback" not in err
