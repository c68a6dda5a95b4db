"""The chart of accounts: which ledger account holds which money, with its type and limit.

Participant accounts are liabilities of the platform (credit balances: the platform owes them), so
their limit is ``non_positive``: a debit beyond what is owed is refused by the database. Per model the
stake, the payable balance and the amount in flight have their own accounts, because a payout goes to
the model's payout address and a burn hits one model's stake.

    participant:{p}:available          liability  deposits not staked
    participant:{p}:staked:{m}         liability  the model's stake
    participant:{p}:payable:{m}        liability  earned, waiting for a batch (dust rolls over here)
    participant:{p}:pending:{m}        liability  reserved by a batch in flight (two-phase holding)
    platform:deposits                  asset      participants' deposits held in custody
    platform:rewards                   expense    pool rewards and stake gains paid
    platform:burned                    income     stake burns
    platform:fees                      expense    network fees of payout transactions
    platform:wallet:{network}          asset      coins of the payout wallet (reconciled with its UTXOs)
    platform:funding:{network}         equity     coins put into the payout wallet

Sign convention of the ledger: positive = debit, negative = credit; balance = debits - credits.
"""

from __future__ import annotations

import re

from services.payouts.ledger import AccountSpec, AccountType
from shared.errors import InvalidArgument

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")

DEPOSITS = "platform:deposits"
REWARDS = "platform:rewards"
BURNED = "platform:burned"
FEES = "platform:fees"


def require_id(value: str, field: str) -> str:
    """Participant and model ids become part of account codes: they must be short lowercase slugs."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidArgument(f"{field} {value!r} is not a valid id (e.g. 'p_0123abcd')", metadata={"field": field})
    return value


def owner(participant_id: str) -> str:
    return f"participants/{participant_id}"


def available(participant_id: str) -> str:
    return f"participant:{participant_id}:available"


def staked(participant_id: str, model_id: str) -> str:
    return f"participant:{participant_id}:staked:{model_id}"


def payable(participant_id: str, model_id: str) -> str:
    return f"participant:{participant_id}:payable:{model_id}"


def pending(participant_id: str, model_id: str) -> str:
    return f"participant:{participant_id}:pending:{model_id}"


def wallet(network: str) -> str:
    return f"platform:wallet:{network}"


def funding(network: str) -> str:
    return f"platform:funding:{network}"


def participant_specs(participant_id: str, models: dict[str, str] | None = None) -> list[AccountSpec]:
    """The participant's accounts and those of ``models`` (model id -> tournament id), as the ledger has them.

    The tournament goes into the per-model accounts' metadata (it never changes for a model), so a stake
    can be traced to the rounds that lock it without asking submissions.
    """
    who = owner(participant_id)
    specs = [AccountSpec(available(participant_id), AccountType.LIABILITY, non_positive=True, owner=who)]
    for model_id, tournament_id in sorted((models or {}).items()):
        meta = {"model_id": model_id, "tournament_id": tournament_id}
        for code in (
            staked(participant_id, model_id),
            payable(participant_id, model_id),
            pending(participant_id, model_id),
        ):
            specs.append(AccountSpec(code, AccountType.LIABILITY, non_positive=True, owner=who, metadata=meta))
    return specs


def platform_specs(networks: tuple[str, ...] = ()) -> list[AccountSpec]:
    specs = [
        AccountSpec(DEPOSITS, AccountType.ASSET, non_negative=True),
        AccountSpec(REWARDS, AccountType.EXPENSE, non_negative=True),
        AccountSpec(BURNED, AccountType.INCOME, non_positive=True),
        AccountSpec(FEES, AccountType.EXPENSE, non_negative=True),
    ]
    for network in networks:
        specs += [
            AccountSpec(wallet(network), AccountType.ASSET, non_negative=True),
            AccountSpec(funding(network), AccountType.EQUITY, non_positive=True),
        ]
    return specs
