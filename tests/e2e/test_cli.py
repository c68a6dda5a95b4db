"""The ``crowdquant`` command as a user runs it: real processes, real database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDQUANT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "crowdquant.cli.main", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CROWDQUANT_SUBMISSIONS_PORT", "abc"),
        ("CROWDQUANT_LOG_LEVEL", "loud"),
        ("CROWDQUANT_PAYOUTS_ADDR", "nowhere"),
        ("DATABASE_URL", "mysql://user@host/db"),
    ],
)
def test_bad_configuration_is_one_clear_line(variable, value):
    result = run(["serve", "submissions"], {variable: value})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_keys_create_prints_the_key_once_and_never_logs_it(database_url):
    result = run(["keys", "create", "--role", "operator", "--description", "ci"], {"DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("k_") and "." in key
    assert result.stdout.count(key) == 1
    assert key not in result.stderr
    bad = run(["keys", "create", "--role", "wizard"], {"DATABASE_URL": database_url})
    assert bad.returncode == 2 and "--role" in bad.stderr
    nameless = run(["keys", "create", "--role", "service"], {"DATABASE_URL": database_url})
    assert nameless.returncode != 0 and "service_name is required" in nameless.stderr
    assert "Traceback" not in nameless.stderr
    scoring = run(["keys", "create", "--role", "service", "--service", "scoring"], {"DATABASE_URL": database_url})
    assert scoring.returncode == 0 and scoring.stdout.strip().splitlines()[-1].startswith("k_"), scoring.stderr


def test_unknown_service_is_refused():
    result = run(["serve", "nonsense"])
    assert result.returncode == 2 and "unknown service" in result.stderr


def test_demo_starts_four_healthy_services(database_url, tmp_path):
    result = run(["demo", "--once"], {"DATABASE_URL": database_url, "CROWDQUANT_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 of 4 services healthy" in result.stdout
    for name in ("submissions", "scoring", "leaderboard", "payouts"):
        assert name in result.stdout
        log = (tmp_path / "logs" / f"{name}.log").read_text()
        assert '"event": "listening"' in log and '"event": "stopped"' in log
