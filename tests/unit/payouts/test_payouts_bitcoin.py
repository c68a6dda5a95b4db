"""The payout wallet on bitcoinlib_test: every transaction it signs is decoded and verified with embit.

Wallet databases are SQLite files in the test's tmp dir; coins come from bitcoinlib's offline test
network. Nothing here trusts the code that built a transaction: outputs, amounts, fee, txid, vsize
and every signature are recomputed from the raw bytes by embit.
"""

from __future__ import annotations

import pytest
from bitcoinlib.keys import HDKey
from bitcoinlib.mnemonic import Mnemonic

from services.payouts.bitcoin import PayoutWallet, SignedTransaction, transaction_facts, validate_address
from services.payouts.bitcoin.keys import AccountKeys
from services.payouts.bitcoin.transactions import RBF_SEQUENCE
from services.payouts.domain.batching import DUST_LIMITS, estimate_vsize
from shared.bitcoin_address import OutputType, get_network
from shared.errors import FailedPrecondition, InvalidArgument

COIN = 100_000_000


def payees(chain, count: int, *, kinds=("p2wpkh",), base: int = 10_000) -> list[tuple[str, int]]:
    out = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        out.append((chain.blt_addresses(i)[kind], base + i))
    return out


def check_paid_as_asked(chain, wallet: PayoutWallet, tx: SignedTransaction, asked, fee_rate: int):
    """Decode with embit and compare with what was asked; return the decoded transaction."""
    decoded = chain.verify(tx.raw_hex, chain.prevouts(wallet))
    assert decoded.txid == tx.txid
    assert decoded.vsize == tx.vsize
    assert decoded.fee == tx.fee  # fee = inputs - outputs, from the chain's point of view
    assert tx.fee >= fee_rate * decoded.vsize  # never below the asked rate
    for (address, amount), payee in zip(asked, tx.payees, strict=True):
        assert decoded.outputs[payee.vout] == (chain.script_of(address), amount)
    assert len(decoded.outputs) == len(asked) + (1 if tx.change_vout is not None else 0)
    if tx.change_vout is not None:
        assert tx.change_vout == len(asked)  # change comes last
        assert decoded.outputs[tx.change_vout] == (chain.script_of(tx.change_address), tx.change_amount)
        assert tx.change_amount >= DUST_LIMITS[OutputType.P2WPKH]
        assert validate_address(tx.change_address, "bitcoinlib_test") is OutputType.P2WPKH
    assert all(seq == RBF_SEQUENCE for seq in decoded.sequences)
    return decoded


def test_batch_of_every_output_type_is_paid_exactly(chain, wallet_factory) -> None:
    wallet = wallet_factory()
    asked = payees(chain, 15, kinds=("p2wpkh", "p2wsh", "p2tr", "p2pkh", "p2sh"))
    tx = wallet.build_batch(asked, fee_rate=3)
    decoded = check_paid_as_asked(chain, wallet, tx, asked, 3)
    assert len(decoded.outpoints) == 1
    assert tx.vsize <= estimate_vsize(1, [p.output_type for p in tx.payees] + [OutputType.P2WPKH])
    assert [p.output_type.value for p in tx.payees][:5] == ["p2wpkh", "p2wsh", "p2tr", "p2pkh", "p2sh"]


def test_batch_spending_several_coins_signs_every_input(chain, wallet_factory) -> None:
    wallet = wallet_factory(fund_addresses=2)  # four coins of 1 BTC
    asked = [(chain.blt_addresses(1)["p2wpkh"], 150_000_000), (chain.blt_addresses(2)["p2tr"], 120_000_000)]
    tx = wallet.build_batch(asked, fee_rate=5)
    decoded = check_paid_as_asked(chain, wallet, tx, asked, 5)
    assert len(decoded.outpoints) == 3
    assert tx.input_total == 3 * COIN == tx.payee_total + tx.fee + tx.change_amount


def test_thousand_payee_batch_costs_about_31_vbytes_per_payee(chain, wallet_factory) -> None:
    wallet = wallet_factory(fund_addresses=1)
    asked = payees(chain, 1_000, base=1_000)
    tx = wallet.build_batch(asked, fee_rate=1)
    check_paid_as_asked(chain, wallet, tx, asked, 1)
    assert tx.vsize / 1_000 <= 35


def test_payment_below_dust_is_refused_at_dust_accepted(chain, wallet_factory) -> None:
    wallet = wallet_factory(fund_addresses=1)
    for kind in ("p2wpkh", "p2pkh", "p2tr"):
        limit = DUST_LIMITS[OutputType(kind)]
        address = chain.blt_addresses(3)[kind]
        with pytest.raises(InvalidArgument, match="dust limit"):
            wallet.build_batch([(address, limit - 1)], fee_rate=1)
        tx = wallet.build_batch([(address, limit)], fee_rate=1)
        check_paid_as_asked(chain, wallet, tx, [(address, limit)], 1)


@pytest.mark.parametrize(
    ("address", "amount", "match"),
    [
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", 10_000, "is a mainnet address"),
        ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", 10_000, "is a testnet address"),
        ("blt1qnot-an-address", 10_000, "not a valid bitcoinlib_test address"),
        (None, 10_000, "bitcoinlib_test"),
        ("VALID", 10_000.0, "integer number of satoshis"),
        ("VALID", -5, "negative"),
        ("VALID", True, "integer number of satoshis"),
    ],
)
def test_bad_payments_are_refused_before_anything_is_built(chain, wallet_factory, address, amount, match) -> None:
    wallet = wallet_factory(fund_addresses=1)
    address = chain.blt_addresses(0)["p2wpkh"] if address == "VALID" else address
    before = wallet.coins()
    with pytest.raises(InvalidArgument, match=match):
        wallet.build_batch([(address, amount)], fee_rate=1)
    assert wallet.coins() == before


def test_bad_fee_rates_and_empty_batches_are_refused(chain, wallet_factory) -> None:
    wallet = wallet_factory(fund_addresses=1)
    asked = payees(chain, 1)
    for rate in (0, 1.5, -1):
        with pytest.raises(InvalidArgument):
            wallet.build_batch(asked, fee_rate=rate)
    with pytest.raises(InvalidArgument, match="at least one payment"):
        wallet.build_batch([], fee_rate=1)


def test_insufficient_funds(chain, wallet_factory) -> None:
    wallet = wallet_factory(fund_addresses=1)
    with pytest.raises(FailedPrecondition) as err:
        wallet.build_batch([(chain.blt_addresses(0)["p2wpkh"], 3 * COIN)], fee_rate=1)
    assert err.value.reason == "INSUFFICIENT_FUNDS"


def test_broadcast_records_spent_coins_and_change_once(chain, wallet_factory) -> None:
    wallet = wallet_factory(fund_addresses=1)
    start = wallet.balance()
    asked = payees(chain, 5)
    tx = wallet.build_batch(asked, fee_rate=2)
    assert wallet.balance() == start  # building reserves nothing
    assert wallet.broadcast(tx) == tx.txid
    assert wallet.balance() == start - tx.payee_total - tx.fee
    assert wallet.broadcast(tx) == tx.txid  # re-broadcast of the same bytes after a crash
    assert wallet.balance() == start - tx.payee_total - tx.fee
    spent = {(i.txid, i.vout) for i in tx.inputs}
    assert not spent & {(c.txid, c.vout) for c in wallet.coins(min_confirms=0)}
    assert (tx.txid, tx.change_vout) in {(c.txid, c.vout) for c in wallet.coins(min_confirms=0)}
    assert (tx.txid, tx.change_vout) not in {(c.txid, c.vout) for c in wallet.coins()}  # unconfirmed change
    wallet.mark_confirmed(tx.txid)
    assert wallet.confirmations(tx.txid) == 1
    assert (tx.txid, tx.change_vout) in {(c.txid, c.vout) for c in wallet.coins()}
    # the next batch may now spend the confirmed change, and it verifies against the recorded coin
    follow = wallet.build_batch([(chain.blt_addresses(9)["p2wpkh"], COIN - 10_000)], fee_rate=1)
    check_paid_as_asked(chain, wallet, follow, [(chain.blt_addresses(9)["p2wpkh"], COIN - 10_000)], 1)


def test_exclude_keeps_coins_of_signed_batches_out(chain, wallet_factory) -> None:
    wallet = wallet_factory(fund_addresses=1)
    first = wallet.build_batch(payees(chain, 2), fee_rate=1)
    reserved = {(i.txid, i.vout) for i in first.inputs}
    second = wallet.build_batch(payees(chain, 2), fee_rate=1, exclude=reserved)
    assert not reserved & {(i.txid, i.vout) for i in second.inputs}
    with pytest.raises(FailedPrecondition, match=r"sat spendable in \d+ coins"):
        wallet.build_batch(payees(chain, 2), fee_rate=1, exclude=reserved | {(i.txid, i.vout) for i in second.inputs})


def test_fee_bump_spends_the_same_inputs_and_pays_the_same_payees(chain, wallet_factory) -> None:
    wallet = wallet_factory(fund_addresses=1)
    asked = payees(chain, 20, kinds=("p2wpkh", "p2tr"))
    original = wallet.build_batch(asked, fee_rate=2)
    wallet.broadcast(original)
    replacement = wallet.bump_fee(original, fee_rate=6)
    first = check_paid_as_asked(chain, wallet, original, asked, 2)
    second = check_paid_as_asked(chain, wallet, replacement, asked, 6)
    assert second.outpoints == first.outpoints  # conflicts with the original: only one can ever confirm
    assert second.txid != first.txid
    assert replacement.payees == original.payees
    assert replacement.change_address == original.change_address
    assert replacement.change_amount == original.change_amount - (replacement.fee - original.fee)
    assert replacement.fee >= original.fee + replacement.vsize  # BIP125 rule 4
    wallet.broadcast(replacement)
    wallet.mark_confirmed(replacement.txid)
    with pytest.raises(FailedPrecondition) as err:
        wallet.broadcast(original)  # its coins are spent by the confirmed replacement
    assert err.value.reason == "INPUTS_SPENT"


def test_fee_bump_records_replace_the_earlier_version(chain, wallet_factory) -> None:
    wallet = wallet_factory(fund_addresses=1)
    start = wallet.balance()
    original = wallet.build_batch(payees(chain, 3), fee_rate=1)
    wallet.broadcast(original)
    replacement = wallet.bump_fee(original, fee_rate=4)
    wallet.broadcast(replacement)
    assert wallet.balance() == start - replacement.payee_total - replacement.fee  # the old change is gone


def test_fee_bump_refusals(chain, wallet_factory) -> None:
    wallet = wallet_factory(fund_addresses=1)
    tx = wallet.build_batch(payees(chain, 2), fee_rate=5)
    with pytest.raises(InvalidArgument, match="does not raise"):
        wallet.bump_fee(tx, fee_rate=5)
    with pytest.raises(FailedPrecondition, match="same inputs"):
        wallet.bump_fee(tx, fee_rate=2_000_000)  # 1 BTC of change cannot pay ~220 M sat


def test_signed_transaction_round_trips_through_storage(chain, wallet_factory) -> None:
    wallet = wallet_factory(fund_addresses=1)
    tx = wallet.build_batch(payees(chain, 3), fee_rate=2)
    stored = tx.as_dict()
    assert SignedTransaction.from_dict(stored) == tx
    assert transaction_facts(tx.raw_hex).txid == tx.txid
    tampered = dict(stored, txid="00" * 32)
    with pytest.raises(InvalidArgument, match="does not match its raw bytes"):
        SignedTransaction.from_dict(tampered)
    assert tx.raw_hex not in repr(tx)
    bumped = wallet.bump_fee(SignedTransaction.from_dict(stored), fee_rate=9)  # after a restart
    assert [(i.txid, i.vout) for i in bumped.inputs] == [(i.txid, i.vout) for i in tx.inputs]


# --- key material ---------------------------------------------------------------------------------------


def test_wallet_database_holds_no_private_key_and_secret_is_never_shown(tmp_path) -> None:
    secret = Mnemonic().generate()
    db = tmp_path / "secret.sqlite"
    wallet = PayoutWallet(secret=secret, db_uri=f"sqlite:///{db}")
    wallet.fund_test_wallet(1)
    wallet.close()
    content = db.read_bytes()
    assert secret.encode() not in content
    root = HDKey.from_passphrase(secret, network="bitcoinlib_test", witness_type="segwit")
    account = root.public_master(as_private=True)
    for key in (root, account, account.child_private(0).child_private(0)):
        assert key.private_hex.encode() not in content and key.private_byte not in content
        assert key.wif(is_private=True).encode() not in content
    assert secret not in repr(wallet) and "redacted" in repr(AccountKeys(secret, get_network("bitcoinlib_test")))
    with pytest.raises(TypeError):
        __import__("pickle").dumps(AccountKeys(secret, get_network("bitcoinlib_test")))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "correct horse battery staple",
        " ".join(["abandon"] * 12),  # twelve words with a bad BIP39 checksum
        "zz" * 32,
        "xprv-looking-but-not-a-key-0123456789abcdefghijklmnopqrstuvwxyz",
    ],
)
def test_bad_secret_is_refused_without_echoing_it(tmp_path, bad: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        PayoutWallet(secret=bad, db_uri=f"sqlite:///{tmp_path / 'bad.sqlite'}")
    assert err.value.reason == "BAD_WALLET_SECRET"
    if bad:
        assert bad not in str(err.value) and bad not in repr(err.value)
    assert err.value.__cause__ is None  # bitcoinlib's error (which may quote the key) is not chained
    assert err.value.__context__ is None or err.value.__suppress_context__


def test_public_key_cannot_be_the_secret(tmp_path) -> None:
    public = HDKey(network="bitcoinlib_test", witness_type="segwit").public().wif()
    with pytest.raises(InvalidArgument, match="public key"):
        PayoutWallet(secret=public, db_uri=f"sqlite:///{tmp_path / 'pub.sqlite'}")


def test_extended_private_key_and_hex_seed_are_accepted(chain, tmp_path) -> None:
    master = HDKey(network="bitcoinlib_test", witness_type="segwit")
    by_xprv = PayoutWallet(secret=master.wif(is_private=True), db_uri=f"sqlite:///{tmp_path / 'x.sqlite'}")
    by_xprv.fund_test_wallet(1)
    asked = payees(chain, 2)
    tx = by_xprv.build_batch(asked, fee_rate=1)
    check_paid_as_asked(chain, by_xprv, tx, asked, 1)
    by_seed = PayoutWallet(secret="ab" * 32, db_uri=f"sqlite:///{tmp_path / 's.sqlite'}")
    assert validate_address(by_seed.receive_address(), "bitcoinlib_test") is OutputType.P2WPKH


def test_reopening_needs_the_same_secret(tmp_path) -> None:
    secret = Mnemonic().generate()
    uri = f"sqlite:///{tmp_path / 'reopen.sqlite'}"
    first = PayoutWallet(secret=secret, db_uri=uri)
    first.fund_test_wallet(1)
    address = first.receive_address()
    balance = first.balance()
    first.close()
    again = PayoutWallet(secret=secret, db_uri=uri)
    assert again.receive_address() == address and again.balance() == balance
    again.close()
    with pytest.raises(FailedPrecondition, match="different secret") as err:
        PayoutWallet(secret=Mnemonic().generate(), db_uri=uri)
    assert secret not in err.value.message


def test_wallet_half_created_by_a_crash_is_created_again(tmp_path) -> None:
    """bitcoinlib creates a wallet in several commits; a process killed after the first leaves a wallet
    row without its main key (and so without any address or coin). Opening it must not fail forever."""
    from bitcoinlib.db import Db, DbKey, DbWallet

    secret = Mnemonic().generate()
    uri = f"sqlite:///{tmp_path / 'half.sqlite'}"
    whole = PayoutWallet(secret=secret, db_uri=uri)
    address = whole.receive_address()
    whole.close()
    session = Db(db_uri=uri).session
    wallet_id = session.query(DbWallet).filter_by(name="crowdquant-payouts").one().id
    session.query(DbWallet).filter_by(id=wallet_id).update({DbWallet.main_key_id: None})
    session.query(DbKey).filter_by(wallet_id=wallet_id).delete()
    session.commit()
    session.close()

    again = PayoutWallet(secret=secret, db_uri=uri)
    assert again.receive_address() == address
    again.fund_test_wallet(1)
    assert again.balance() > 0
    again.close()


def test_test_funding_and_confirmation_exist_only_on_bitcoinlib_test(tmp_path) -> None:
    wallet = PayoutWallet(secret=Mnemonic().generate(), db_uri=f"sqlite:///{tmp_path / 't.sqlite'}", network="testnet")
    assert validate_address(wallet.receive_address(), "testnet") is OutputType.P2WPKH
    with pytest.raises(FailedPrecondition, match="only exists on bitcoinlib_test"):
        wallet.fund_test_wallet()
    with pytest.raises(FailedPrecondition, match="simulated only"):
        wallet.mark_confirmed("00" * 32)
