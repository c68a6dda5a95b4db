"""How numbers read on the web page: scores with four decimals, amounts in sat or BTC.

Amounts are integers of satoshis; BTC is shown with exact decimal arithmetic, never floats.
"""

from __future__ import annotations

from decimal import Decimal

LABELS = {"corr": "CORR", "mmc": "MMC", "logloss": "Logloss", "auc": "AUC"}
SAT_PER_BTC = Decimal(100_000_000)


def metric_label(name: str | None) -> str:
    return LABELS.get(name or "", (name or "").upper())


def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def sats(amount: int) -> str:
    """1,234 sat below 0.01 BTC; 0.0123 BTC above (exact, trailing zeros trimmed to 4 places)."""
    if abs(amount) < 1_000_000:
        return f"{amount:,} sat"
    btc = (Decimal(amount) / SAT_PER_BTC).quantize(Decimal("0.0001"))
    return f"{btc} BTC"


def signed_sats(amount: int) -> str:
    return ("+" if amount > 0 else "") + sats(amount)


def count(amount: int, signed: bool = False) -> str:
    """A whole number of satoshis for a table column whose header names the unit."""
    return ("+" if signed and amount > 0 else "") + f"{amount:,}"


def compact(value: float) -> str:
    """Short axis labels: 950, 15k, 1.2M."""
    sign = "-" if value < 0 else "+" if value > 0 else ""
    size = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            text = f"{size / limit:.1f}".removesuffix(".0")
            return f"{sign}{text}{suffix}"
    return f"{sign}{size:.0f}"


def when(rfc3339: str | None) -> str:
    """'2026-11-23 14:05 UTC' from an RFC 3339 UTC time."""
    if not rfc3339:
        return ""
    return rfc3339[:10] + " " + rfc3339[11:16] + " UTC"


def zero_payout(code: str) -> str:
    """A zero payout's reason code in words: NOT_ORIGINAL -> "not original"."""
    return code.lower().replace("_", " ")
