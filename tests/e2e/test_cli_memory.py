"""The CLI's local check streams the file: a 100,000-character id is refused using <= 100 MB.

Before, the check built a fixed-width array as wide as the longest line, so this 3.6 MB file
(36,072 rows, one id of 100,000 characters) grew the CLI to 18.8 GB until the kernel killed it.
The CLI runs as a child of a small wrapper that reports the child's peak RSS (ru_maxrss); the
figure is a memory threshold, not a timing. No server is needed: the file is refused before
anything is sent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LIMIT_MB = 100
WRAPPER = (
    "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "print(p.returncode); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
    "print(p.stdout + p.stderr)"
)


def test_cli_refuses_a_100000_character_id_within_100_mb(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv"
    with path.open("w") as f:
        f.write("id,prediction\n")
        for i in range(36_072):
            f.write(("x" * 100_000 if i == 1234 else f"n{i:06d}") + ",0.5\n")
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            WRAPPER,
            sys.executable,
            "-m",
            "crowdquant.cli.main",
            "submit",
            str(path),
            "--model",
            "m_x",
            "--tournament",
            "t",
            "--addr",
            "127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    code, peak_kb, output = run.stdout.split("\n", 2)
    print(f"CLI peak RSS refusing the file: {int(peak_kb) / 1024:.1f} MB")
    assert code != "0"
    assert "line 1236" in output and "longer than" in output
    assert int(peak_kb) / 1024 <= LIMIT_MB
