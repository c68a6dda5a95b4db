"""Payout addresses checked with bitcoinlib for a tournament's network.

Used by submissions (a model's payout address) and payouts (each output's type and dust limit).
bitcoinlib decodes the address; we then insist that it belongs to the tournament's network,
because bitcoinlib reports a foreign address's own network instead of refusing it.
"""

from __future__ import annotations

from shared.errors import InvalidArgument

# Our network names -> bitcoinlib's.
BITCOINLIB_NETWORKS = {"bitcoinlib_test": "bitcoinlib_test", "testnet": "testnet", "regtest": "regtest",
                       "mainnet": "bitcoin"}


def validate_address(address: str, network: str) -> str:
    """The script type (``p2wpkh``, ``p2pkh``, ``p2tr``...) of ``address`` on ``network``.

    INVALID_ARGUMENT for a malformed address or one of another network, naming both networks.
    """
    from bitcoinlib.encoding import EncodingError
    from bitcoinlib.keys import deserialize_address

    expected = BITCOINLIB_NETWORKS.get(network)
    if expected is None:
        raise InvalidArgument(f"unknown Bitcoin network {network!r}; use one of {', '.join(BITCOINLIB_NETWORKS)}")
    if not isinstance(address, str) or not 14 <= len(address) <= 90 or not address.isascii():
        raise InvalidArgument(f"{address!r} is not a Bitcoin address")
    try:
        info = deserialize_address(address)
    except (EncodingError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise InvalidArgument(f"{address!r} is not a valid Bitcoin address ({str(exc)[:80]})") from None
    networks = set(info.get("networks") or [info.get("network")])
    # bitcoinlib's regtest shares mainnet's base58 prefixes; Bitcoin Core's regtest uses testnet's.
    if expected == "regtest" and info.get("encoding") == "base58":
        expected = "testnet"
    if expected not in networks:
        raise InvalidArgument(f"{address!r} is an address of {info.get('network')}, not of {network}")
    script_type = info.get("script_type")
    if script_type not in {"p2wpkh", "p2wsh", "p2tr", "p2pkh", "p2sh"}:
        raise InvalidArgument(f"{address!r} has an unsupported output type {script_type!r}")
    return str(script_type)
