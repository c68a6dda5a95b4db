"""The platform wallet's private keys, derived in memory from the configured secret.

The secret (a BIP39 mnemonic, a hex BIP32 seed, or an extended private key in bitcoinlib's format for
the network) never reaches the wallet database, a log line, an exception message or a ``repr``: the
bitcoinlib wallet is created watch-only from the account's public key, and signing keys are derived
here when a transaction is signed. Rotating the secret therefore means a new wallet name (a new key
tree), and a leaked database reveals addresses, not keys.
"""

from __future__ import annotations

import string

from bitcoinlib.keys import HDKey
from bitcoinlib.mnemonic import Mnemonic

from shared.bitcoin_address import Network
from shared.errors import InvalidArgument

WITNESS_TYPE = "segwit"
"""Native segwit (BIP84, P2WPKH): the cheapest inputs to spend, and txids that cannot be malleated."""


def _bad_secret(network: Network, why: str) -> InvalidArgument:
    return InvalidArgument(
        f"the payout wallet secret is not usable on {network.name}: {why}. Give a BIP39 mnemonic, a hex "
        "BIP32 seed, or an extended private key for this network.",
        reason="BAD_WALLET_SECRET",
        metadata={"field": "wallet_secret", "network": network.name},
    )


def _root_key(secret: str, network: Network) -> HDKey:
    text = " ".join(secret.split())
    words = text.split(" ")
    try:
        if len(words) >= 12:
            seed = Mnemonic().to_seed(text)  # validates the BIP39 checksum
            return HDKey.from_seed(seed, network=network.bitcoinlib_name, witness_type=WITNESS_TYPE)
        if len(text) in range(32, 129, 2) and all(c in string.hexdigits for c in text):
            return HDKey.from_seed(bytes.fromhex(text), network=network.bitcoinlib_name, witness_type=WITNESS_TYPE)
        return HDKey(text, network=network.bitcoinlib_name, witness_type=WITNESS_TYPE)
    except Exception:
        # bitcoinlib's messages may quote the key they could not parse: say what is wrong, not what it is.
        raise _bad_secret(network, "it is neither a valid mnemonic, seed nor extended private key") from None


class AccountKeys:
    """The BIP84 account key (m/84'/coin'/0') of the platform wallet, private part kept in memory only."""

    __slots__ = ("_account", "network")

    def __init__(self, secret: str, network: Network) -> None:
        if not isinstance(secret, str) or not secret.strip():
            raise _bad_secret(network, "it is empty")
        root = _root_key(secret, network)
        if not root.is_private:
            raise _bad_secret(network, "it is a public key, which cannot sign")
        if root.depth == 0:
            self._account = root.public_master(as_private=True, witness_type=WITNESS_TYPE)
        elif root.depth == 3:
            self._account = root  # already an account-level key (m/84'/coin'/account')
        else:
            raise _bad_secret(network, f"an extended key at depth {root.depth} (need a master or account key)")
        self.network = network

    def public_account_key(self) -> HDKey:
        """The account's extended public key: all a watch-only wallet needs to derive addresses."""
        return self._account.public()

    def signing_key(self, change: int, index: int) -> HDKey:
        """Private key of address ``change/index`` under the account (non-hardened, as BIP84 uses)."""
        return self._account.child_private(change).child_private(index)

    def __repr__(self) -> str:
        return f"AccountKeys(network={self.network.name!r}, secret=<redacted>)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("AccountKeys holds a private key and is not picklable")
