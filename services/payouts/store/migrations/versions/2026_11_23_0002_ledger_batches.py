"""The ledger, allocations, payout batches and the wallet record; grants for the application role.

The service runs as ``crowdquant_app`` (``ServiceSpec.app_role``): the ledger's own grants let it
insert entries but never update or delete them; the payouts tables below it may read, insert and
update (a batch moves through its states), never delete. A trigger keeps batch states on the
PLANNED -> SIGNED -> BROADCAST -> CONFIRMED | FAILED -> VOIDED path even against a buggy client, and
refuses to change a stored signed transaction except by a fee bump of a BROADCAST batch.
Schema ``payouts_wallet`` is where bitcoinlib keeps the payout wallet (its own tables, created by it).

Revision ID: 0002_ledger_batches
Revises: 0001_base
Create Date: 2026-11-23
"""

from alembic import op

from services.payouts.ledger.ddl import APP_ROLE, LEDGER_DOWNGRADE, LEDGER_UPGRADE

revision = "0002_ledger_batches"
down_revision = "0001_base"
branch_labels = None
depends_on = None

TABLES = [
    """
    CREATE TABLE payouts.allocations (
        allocation_id  uuid PRIMARY KEY,
        tournament_id  text NOT NULL,
        round_number   integer NOT NULL CHECK (round_number >= 1),
        policy         text NOT NULL CHECK (policy IN ('pool', 'stake')),
        parameters     bytea NOT NULL,
        payout_factor  text NOT NULL,
        total          bigint NOT NULL,
        entry_id       uuid,
        created_at     timestamptz NOT NULL DEFAULT now(),
        paid_batch_ids text[],
        paid_at        timestamptz,
        UNIQUE (tournament_id, round_number, policy)
    )""",
    """
    CREATE TABLE payouts.allocation_lines (
        allocation_id  uuid NOT NULL REFERENCES payouts.allocations,
        model_id       text NOT NULL,
        participant_id text NOT NULL,
        display_name   text NOT NULL DEFAULT '',
        contribution   double precision,
        corr           double precision,
        mmc            double precision,
        loo            double precision,
        stake          bigint NOT NULL CHECK (stake >= 0),
        amount         bigint NOT NULL,
        eligible       boolean NOT NULL,
        reason         text NOT NULL DEFAULT '',
        PRIMARY KEY (allocation_id, model_id)
    )""",
    "CREATE INDEX allocation_lines_paid_idx ON payouts.allocation_lines (model_id) WHERE amount > 0",
    "CREATE INDEX allocation_lines_participant_idx ON payouts.allocation_lines (participant_id)",
    """
    CREATE TABLE payouts.batches (
        batch_id          uuid PRIMARY KEY,
        seq               bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        subject           text NOT NULL,
        request_id        text NOT NULL,
        position          integer NOT NULL,
        network           text NOT NULL,
        state             text NOT NULL CHECK (state IN ('PLANNED', 'SIGNED', 'BROADCAST', 'CONFIRMED', 'FAILED',
                                                         'VOIDED')),
        fee_rate          bigint NOT NULL CHECK (fee_rate >= 1),
        confirm_requested boolean NOT NULL DEFAULT false,
        total_output      bigint NOT NULL CHECK (total_output > 0),
        txid              text,
        raw_tx_hex        text,
        tx                jsonb,
        fee               bigint,
        vsize             integer,
        change            bigint,
        failure_reason    text NOT NULL DEFAULT '',
        created_at        timestamptz NOT NULL DEFAULT now(),
        signed_at         timestamptz,
        broadcast_at      timestamptz,
        confirmed_at      timestamptz,
        voided_at         timestamptz,
        UNIQUE (subject, request_id, position),
        CHECK ((raw_tx_hex IS NULL) = (txid IS NULL)),
        CHECK (state NOT IN ('SIGNED', 'BROADCAST', 'CONFIRMED') OR raw_tx_hex IS NOT NULL)
    )""",
    "CREATE INDEX batches_open_idx ON payouts.batches (seq) WHERE state NOT IN ('CONFIRMED', 'VOIDED')",
    """
    CREATE TABLE payouts.batch_outputs (
        batch_id         uuid NOT NULL REFERENCES payouts.batches,
        position         integer NOT NULL CHECK (position >= 0),
        model_id         text NOT NULL,
        participant_id   text NOT NULL,
        tournament_id    text NOT NULL,
        address          text NOT NULL,
        output_type      text NOT NULL,
        amount           bigint NOT NULL CHECK (amount > 0),
        vout             integer,
        pending_id       uuid NOT NULL UNIQUE,
        reserve_entry_id uuid NOT NULL UNIQUE,
        PRIMARY KEY (batch_id, position),
        UNIQUE (batch_id, model_id)
    )""",
    "CREATE INDEX batch_outputs_participant_idx ON payouts.batch_outputs (participant_id)",
    """
    CREATE TABLE payouts.payout_links (
        batch_id      uuid NOT NULL REFERENCES payouts.batches,
        model_id      text NOT NULL,
        allocation_id uuid NOT NULL REFERENCES payouts.allocations,
        PRIMARY KEY (batch_id, model_id, allocation_id)
    )""",
    "CREATE INDEX payout_links_line_idx ON payouts.payout_links (allocation_id, model_id)",
    """
    CREATE TABLE payouts.batch_transactions (
        txid         text PRIMARY KEY,
        batch_id     uuid NOT NULL REFERENCES payouts.batches,
        raw_tx_hex   text NOT NULL,
        tx           jsonb NOT NULL,
        fee          bigint NOT NULL,
        vsize        integer NOT NULL,
        fee_rate     bigint NOT NULL,
        replaced_by  text,
        created_at   timestamptz NOT NULL DEFAULT now(),
        broadcast_at timestamptz
    )""",
    "CREATE INDEX batch_transactions_batch_idx ON payouts.batch_transactions (batch_id, created_at)",
    """
    CREATE TABLE payouts.wallets (
        network         text PRIMARY KEY,
        wallet_name     text NOT NULL,
        storage         text NOT NULL,
        receive_address text NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now()
    )""",
]

STATE_GUARD = [
    r"""
    CREATE FUNCTION payouts.batches_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        allowed text[];
    BEGIN
        IF NEW.batch_id <> OLD.batch_id OR NEW.network <> OLD.network OR NEW.total_output <> OLD.total_output
           OR NEW.subject <> OLD.subject OR NEW.request_id <> OLD.request_id THEN
            RAISE EXCEPTION 'batch %: identity, network and amounts never change', OLD.batch_id;
        END IF;
        IF NEW.state <> OLD.state THEN
            allowed := CASE OLD.state
                WHEN 'PLANNED' THEN ARRAY['SIGNED', 'FAILED']
                WHEN 'SIGNED' THEN ARRAY['BROADCAST', 'FAILED']
                WHEN 'BROADCAST' THEN ARRAY['CONFIRMED', 'FAILED']
                WHEN 'FAILED' THEN ARRAY['VOIDED']
                ELSE ARRAY[]::text[] END;
            IF NOT NEW.state = ANY(allowed) THEN
                RAISE EXCEPTION 'batch % is %: it cannot move to %', OLD.batch_id, OLD.state, NEW.state;
            END IF;
        END IF;
        IF OLD.raw_tx_hex IS NOT NULL AND NEW.raw_tx_hex IS DISTINCT FROM OLD.raw_tx_hex
           AND NOT (OLD.state = 'BROADCAST' AND NEW.state = 'BROADCAST') THEN
            RAISE EXCEPTION 'batch %: a stored signed transaction is only replaced by a fee bump of a BROADCAST batch',
                OLD.batch_id;
        END IF;
        RETURN NEW;
    END
    $$""",
    """CREATE TRIGGER batches_guard BEFORE UPDATE ON payouts.batches
       FOR EACH ROW EXECUTE FUNCTION payouts.batches_guard()""",
]

OWN_TABLES = (
    "allocations",
    "allocation_lines",
    "batches",
    "batch_outputs",
    "payout_links",
    "batch_transactions",
    "wallets",
    "idempotency_keys",
)

GRANTS = [
    # The role the service acts as must be one its login may SET ROLE to (a superuser already may).
    f"""DO $$
    BEGIN
        IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
            EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
        END IF;
    END
    $$""",
    *[f"GRANT SELECT, INSERT, UPDATE ON payouts.{table} TO {APP_ROLE}" for table in OWN_TABLES],
    "CREATE SCHEMA IF NOT EXISTS payouts_wallet",
]


def upgrade() -> None:
    for statement in [*LEDGER_UPGRADE, *TABLES, *STATE_GUARD, *GRANTS]:
        op.execute(statement)


def downgrade() -> None:
    for table in reversed(OWN_TABLES[:-1]):
        op.execute(f"DROP TABLE payouts.{table}")
    op.execute("DROP FUNCTION payouts.batches_guard()")
    op.execute(f"REVOKE ALL ON payouts.idempotency_keys FROM {APP_ROLE}")
    for statement in LEDGER_DOWNGRADE:
        op.execute(statement)
