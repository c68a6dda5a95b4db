"""Payout address validation: BIP173/BIP350 and base58check vectors, networks told apart, embit agrees."""

from __future__ import annotations

import pytest

from shared.bitcoin_address import OutputType, decode_address, get_network, validate_address
from shared.errors import InvalidArgument

VALID = [
    (
        "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
        "mainnet",
        OutputType.P2WPKH,
        "0014751e76e8199196d454941c45d1b3a323f1433bd6",
    ),
    (
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "testnet",
        OutputType.P2WSH,
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
    ),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "mainnet",
        OutputType.P2TR,
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    ),
    (
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
        "testnet",
        OutputType.P2TR,
        "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
        "mainnet",
        OutputType.P2PKH,
        "76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac",
    ),
    (
        "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        "mainnet",
        OutputType.P2SH,
        "a914b472a266d0bd89c13706a4132ccfb16f7c3b9fcb87",
    ),
    ("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "testnet", OutputType.P2PKH, None),
    ("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "regtest", OutputType.P2PKH, None),
    ("2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc", "testnet", OutputType.P2SH, None),
]


@pytest.mark.parametrize(("address", "network", "kind", "script"), VALID)
def test_valid_vectors(address: str, network: str, kind: OutputType, script: str | None) -> None:
    decoded = decode_address(address, network)
    assert decoded.output_type is kind
    assert validate_address(address, network) is kind
    if script is not None:
        assert decoded.script_pubkey.hex() == script


INVALID_BECH32 = [
    "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",  # unknown hrp
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",  # v1 with bech32 checksum
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",  # v16 with bech32 checksum
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",  # v0 with bech32m checksum
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",  # 'o' is not bech32
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",  # witness version 17
    "bc1pw5dgrnzv",  # program of 1 byte
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",  # program of 41 bytes
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",  # v0 program of 16 bytes
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",  # mixed case
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",  # more than 4 padding bits
    "bc1gmk9yu",  # empty data
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",  # one character mistyped
    "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs",  # v2: valid bech32m but not a standard payout output
]
INVALID_BASE58 = [
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb",  # checksum
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfN0",  # '0' is not base58
    "1111111111",  # too short
    "",
    "   ",
    "x" * 200,
]


@pytest.mark.parametrize("address", INVALID_BECH32 + INVALID_BASE58)
def test_malformed_addresses_are_invalid_argument_naming_the_network(address: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_address(address, "mainnet")
    assert "mainnet" in err.value.message
    assert err.value.metadata["network"] == "mainnet" and err.value.metadata["field"] == "address"
    assert len(err.value.message) < 400  # a long input is truncated, not echoed whole


@pytest.mark.parametrize(
    ("address", "network", "owner"),
    [
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "bitcoinlib_test", "mainnet"),
        ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "mainnet", "testnet"),
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "testnet", "mainnet"),
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "bitcoinlib_test", "mainnet"),
        ("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "mainnet", "regtest/testnet"),
    ],
)
def test_wrong_network_is_called_out(address: str, network: str, owner: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_address(address, network)
    assert f"is a {owner} address" in err.value.message
    assert network in err.value.message


def test_mainnet_addresses_are_not_regtest_ones() -> None:
    # bitcoinlib 0.7 gives regtest the mainnet version bytes; Bitcoin Core does not, and neither do we.
    with pytest.raises(InvalidArgument, match="is a mainnet address"):
        validate_address("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "regtest")
    with pytest.raises(InvalidArgument, match="is a mainnet address"):
        validate_address("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "regtest")


def test_every_output_type_on_bitcoinlib_test_matches_embit(chain) -> None:
    for seed in range(25):
        for kind, address in chain.blt_addresses(seed).items():
            decoded = decode_address(address, "bitcoinlib_test")
            assert decoded.output_type == kind
            assert decoded.script_pubkey == chain.script_of(address)
            with pytest.raises(InvalidArgument, match="bitcoinlib_test"):
                validate_address(address, "testnet")


def test_unknown_network() -> None:
    with pytest.raises(InvalidArgument, match="unknown Bitcoin network 'dogecoin'"):
        validate_address("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "dogecoin")
    assert get_network("bitcoin").name == "mainnet"
    assert get_network("mainnet").bitcoinlib_name == "bitcoin"


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        validate_address(None, "mainnet")  # type: ignore[arg-type]
