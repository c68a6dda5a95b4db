"""Bitcoin payout addresses: which network they belong to, what output they make, what script they lock to.

The one address check of crowdquant: submissions validates a model's payout address with it, and
payouts prices and builds each output from it. embit decodes base58check and bech32/bech32m (BIP173,
BIP350); this module says which network and output type that is, with errors that name both. It does
not import bitcoinlib (which touches the file system on import), and the network table is written out
on purpose: bitcoinlib 0.7's ``regtest`` uses the mainnet base58 version bytes (0x00/0x05), which
would let a mainnet address pass as a regtest one; Bitcoin Core uses 0x6f/0xc4 for regtest.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from embit import base58, bech32

from shared.errors import InvalidArgument


class OutputType(StrEnum):
    """The standard output kinds a payee can ask to be paid to. Each has its own size and dust limit."""

    P2WPKH = "p2wpkh"
    P2WSH = "p2wsh"
    P2TR = "p2tr"
    P2PKH = "p2pkh"
    P2SH = "p2sh"


@dataclass(frozen=True)
class Network:
    """Address parameters of one Bitcoin network, and its name in bitcoinlib."""

    name: str
    bitcoinlib_name: str
    p2pkh_version: int
    p2sh_version: int
    hrp: str


NETWORKS: dict[str, Network] = {
    "bitcoinlib_test": Network("bitcoinlib_test", "bitcoinlib_test", 0x90, 0x95, "blt"),
    "mainnet": Network("mainnet", "bitcoin", 0x00, 0x05, "bc"),
    "testnet": Network("testnet", "testnet", 0x6F, 0xC4, "tb"),
    "regtest": Network("regtest", "regtest", 0x6F, 0xC4, "bcrt"),
}
_ALIASES = {"bitcoin": "mainnet"}
DEFAULT_NETWORK = "bitcoinlib_test"


def get_network(name: str) -> Network:
    """Look a network up by our name (``bitcoin`` is accepted for ``mainnet``, as bitcoinlib calls it)."""
    key = _ALIASES.get(name, name)
    try:
        return NETWORKS[key]
    except KeyError:
        known = ", ".join(NETWORKS)
        raise InvalidArgument(
            f"unknown Bitcoin network {name!r}; use one of {known}", metadata={"field": "network"}
        ) from None


@dataclass(frozen=True)
class Destination:
    """A validated address: what it pays to, on which network."""

    address: str
    network: str
    output_type: OutputType
    script_pubkey: bytes


class _Malformed(ValueError):
    """Internal: why an address does not decode; turned into InvalidArgument with the network named."""


def _base58check_decode(text: str) -> bytes:
    if len(text) > 60:
        raise _Malformed("too long")
    bad = next((c for c in text if c not in base58.B58_DIGITS), None)
    if bad is not None:
        raise _Malformed(f"character {bad!r} is not base58")
    try:
        payload = base58.decode_check(text)
    except ValueError:
        raise _Malformed("bad checksum (a character was mistyped)") from None
    return payload


def _why_not_bech32(text: str) -> str:
    """Why embit refused ``text`` as bech32, in the caller's terms."""
    if any(ord(c) < 33 or ord(c) > 126 for c in text) or (text.lower() != text and text.upper() != text):
        return "mixed case or invalid characters"
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text) or len(text) > 90:
        return "bad length"
    bad = next((c for c in text[pos + 1 :] if c not in bech32.CHARSET), None)
    if bad is not None:
        return f"character {bad!r} is not bech32"
    return "bad checksum (a character was mistyped)"


def _segwit_decode(text: str) -> tuple[str, int, bytes]:
    """BIP173/BIP350 decoding: (hrp, witness version, program); bech32 for v0, bech32m for v1+."""
    encoding, hrp, data = bech32.bech32_decode(text)
    if encoding is None:
        raise _Malformed(_why_not_bech32(text))
    if not data:
        raise _Malformed("no witness version")
    version = data[0]
    program = bech32.convertbits(data[1:], 5, 8, False)
    if program is None:
        raise _Malformed("invalid padding")
    if version > 16 or not 2 <= len(program) <= 40:
        raise _Malformed("invalid witness program")
    if (version == 0) != (encoding == bech32.Encoding.BECH32):
        raise _Malformed("wrong checksum variant for its witness version (bech32 for v0, bech32m for v1+)")
    return hrp, version, bytes(program)


def _describe(text: str) -> str:
    return repr(text if len(text) <= 100 else text[:97] + "...")


def decode_address(address: str, network: str = DEFAULT_NETWORK) -> Destination:
    """Decode ``address`` for ``network`` or raise InvalidArgument saying why, with the network named.

    An address of another known network is called out as such ("a testnet address"), because that is
    the usual mistake and paying it would lose the money.
    """
    net = get_network(network)
    if not isinstance(address, str) or not address.strip():
        raise InvalidArgument(
            f"payout address must be a non-empty {net.name} address",
            metadata={"field": "address", "network": net.name},
        )
    text = address.strip()
    meta = {"field": "address", "network": net.name}
    hrp_guess = text[: text.rfind("1")].lower() if "1" in text else ""
    known_hrps = {n.hrp: n.name for n in NETWORKS.values()}
    try:
        if hrp_guess in known_hrps:
            hrp, version, program = _segwit_decode(text)
            if hrp != net.hrp:
                raise InvalidArgument(
                    f"address {_describe(text)} is a {known_hrps[hrp]} address; this tournament pays on "
                    f"{net.name} (addresses starting {net.hrp}1)",
                    metadata=meta,
                )
            if version == 0 and len(program) == 20:
                kind = OutputType.P2WPKH
            elif version == 0 and len(program) == 32:
                kind = OutputType.P2WSH
            elif version == 1 and len(program) == 32:
                kind = OutputType.P2TR
            else:
                raise _Malformed(
                    f"witness version {version} with a {len(program)}-byte program is not a "
                    "standard payout output (use P2WPKH, P2WSH or P2TR)"
                )
            script = bytes([0x50 + version if version else 0, len(program)]) + program
            return Destination(text.lower(), net.name, kind, script)
        payload = _base58check_decode(text)
    except _Malformed as exc:
        raise InvalidArgument(
            f"address {_describe(text)} is not a valid {net.name} address: {exc}", metadata=meta
        ) from None
    if len(payload) != 21:
        raise InvalidArgument(
            f"address {_describe(text)} is not a valid {net.name} address: wrong length", metadata=meta
        )
    version_byte, digest = payload[0], payload[1:]
    if version_byte == net.p2pkh_version:
        return Destination(text, net.name, OutputType.P2PKH, b"\x76\xa9\x14" + digest + b"\x88\xac")
    if version_byte == net.p2sh_version:
        return Destination(text, net.name, OutputType.P2SH, b"\xa9\x14" + digest + b"\x87")
    owners = sorted({n.name for n in NETWORKS.values() if version_byte in (n.p2pkh_version, n.p2sh_version)})
    if owners:
        raise InvalidArgument(
            f"address {_describe(text)} is a {'/'.join(owners)} address; this tournament pays on {net.name}",
            metadata=meta,
        )
    raise InvalidArgument(
        f"address {_describe(text)} is not a valid {net.name} address: unknown version byte 0x{version_byte:02x}",
        metadata=meta,
    )


def validate_address(address: str, network: str = DEFAULT_NETWORK) -> OutputType:
    """Check a payout address for ``network`` and return its output type (which fixes its dust limit)."""
    return decode_address(address, network).output_type
