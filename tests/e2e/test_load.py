"""A shortened load run (the long one is ``bench/load.py``): real processes, concurrent uploaders
and anonymous readers; afterwards every receipt matches the stored bytes and nothing is lost."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "load.py"


async def test_short_load_loses_nothing():
    spec = importlib.util.spec_from_file_location("crowdquant_bench_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = await module.run(uploaders=12, readers=2, seconds=12, max_per_model=4)
    assert result["uploads"] >= 12
    assert result["errors"] == {} and result["read_errors"] == 0
    assert result["lost"] == 0 and result["hash_mismatches"] == 0
    assert result["stored"] == result["uploads"]
