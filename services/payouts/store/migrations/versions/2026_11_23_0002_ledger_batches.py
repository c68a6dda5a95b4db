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

revision = "0002_ledger_batches"
down_revision = "0001_base"
branch_labels = None
depends_on = None

APP_ROLE = "crowdquant_app"

# The ledger as services/payouts/ledger/ddl.py rendered it when this revision was written, frozen:
# later changes to the ledger are new revisions, never edits of this text.
LEDGER_UPGRADE = [
    """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crowdquant_app') THEN
        CREATE ROLE crowdquant_app NOLOGIN;
    END IF;
END
$$
""",
    """
CREATE TABLE payouts.ledger_accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9_.:/@-]{0,127}$'),
    type text NOT NULL CHECK (type IN ('asset', 'liability', 'equity', 'income', 'expense')),
    currency text NOT NULL DEFAULT 'BTC' CHECK (currency = 'BTC'),
    non_negative boolean NOT NULL DEFAULT false,
    non_positive boolean NOT NULL DEFAULT false,
    owner text NOT NULL DEFAULT '',
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT (non_negative AND non_positive))
)
""",
    "CREATE INDEX ledger_accounts_owner_idx ON payouts.ledger_accounts (owner) WHERE owner <> ''",
    """
CREATE TABLE payouts.ledger_balances (
    account_id bigint PRIMARY KEY REFERENCES payouts.ledger_accounts (id),
    balance bigint NOT NULL DEFAULT 0,
    posting_count bigint NOT NULL DEFAULT 0,
    non_negative boolean NOT NULL,
    non_positive boolean NOT NULL,
    CONSTRAINT ledger_balances_within_limits
        CHECK ((NOT non_negative OR balance >= 0) AND (NOT non_positive OR balance <= 0))
) WITH (fillfactor = 50)
""",
    """
CREATE TABLE payouts.ledger_entries (
    id uuid PRIMARY KEY,
    effective_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,63}$'),
    memo text NOT NULL DEFAULT '' CHECK (length(memo) <= 1000),
    metadata jsonb NOT NULL DEFAULT '{}',
    reverses uuid REFERENCES payouts.ledger_entries (id),
    pending_id uuid,
    content_hash bytea NOT NULL CHECK (length(content_hash) = 32)
)
""",
    """CREATE UNIQUE INDEX ledger_entries_reverses_key ON payouts.ledger_entries (reverses)
       WHERE reverses IS NOT NULL""",
    "CREATE INDEX ledger_entries_recorded_idx ON payouts.ledger_entries (recorded_at)",
    "CREATE INDEX ledger_entries_effective_idx ON payouts.ledger_entries (effective_at)",
    """
CREATE TABLE payouts.ledger_postings (
    account_id bigint NOT NULL,
    amount bigint NOT NULL CHECK (amount <> 0),
    effective_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    entry_id uuid NOT NULL,
    idx smallint NOT NULL CHECK (idx >= 0),
    PRIMARY KEY (entry_id, idx)
)
""",
    """CREATE INDEX ledger_postings_account_effective_idx
       ON payouts.ledger_postings (account_id, effective_at) INCLUDE (amount)""",
    """CREATE INDEX ledger_postings_account_recorded_idx
       ON payouts.ledger_postings (account_id, recorded_at) INCLUDE (amount)""",
    """
CREATE TABLE payouts.ledger_chain (
    seq bigint PRIMARY KEY CHECK (seq >= 1),
    entry_id uuid NOT NULL UNIQUE,
    hash bytea NOT NULL CHECK (length(hash) = 32)
)
""",
    """CREATE TABLE payouts.ledger_chain_head (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        seq bigint NOT NULL CHECK (seq >= 0),
        hash bytea NOT NULL CHECK (length(hash) = 32)
    )""",
    "INSERT INTO payouts.ledger_chain_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'))",
    """
CREATE TABLE payouts.ledger_pending (
    id uuid PRIMARY KEY,
    reserve_entry_id uuid NOT NULL UNIQUE REFERENCES payouts.ledger_entries (id),
    debit_account_id bigint NOT NULL REFERENCES payouts.ledger_accounts (id),
    credit_account_id bigint NOT NULL REFERENCES payouts.ledger_accounts (id),
    holding_account_id bigint NOT NULL REFERENCES payouts.ledger_accounts (id),
    amount bigint NOT NULL CHECK (amount > 0),
    state text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'POSTED', 'VOIDED')),
    resolved_by uuid UNIQUE REFERENCES payouts.ledger_entries (id),
    posted_amount bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    CHECK ((state = 'PENDING') = (resolved_by IS NULL)),
    CHECK (posted_amount IS NULL OR (posted_amount >= 0 AND posted_amount <= amount))
)
""",
    """CREATE INDEX ledger_pending_open_idx ON payouts.ledger_pending (reserve_entry_id)
       WHERE state = 'PENDING'""",
    "CREATE INDEX ledger_pending_debit_idx ON payouts.ledger_pending (debit_account_id)",
    "CREATE INDEX ledger_pending_holding_idx ON payouts.ledger_pending (holding_account_id)",
    """
CREATE FUNCTION payouts.ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'LDG03',
        MESSAGE = format('%s on payouts.%s is refused: the ledger is append-only; correct a mistake with a '
                         'reversing entry', TG_OP, TG_TABLE_NAME);
END
$$
""",
    """
CREATE FUNCTION payouts.ledger_open_balances() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, payouts AS $$
BEGIN
    INSERT INTO payouts.ledger_balances (account_id, non_negative, non_positive)
    SELECT id, non_negative, non_positive FROM new_accounts;
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION payouts.ledger_apply_postings() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, payouts AS $$
DECLARE
    bad record;
    account_ids bigint[];
    deltas numeric[];
    counts bigint[];
    offender bigint;
    wanted bigint;
BEGIN
    -- Postings belong to an entry written in this transaction (not yet chained), with its times.
    SELECT p.entry_id, p.idx,
           CASE WHEN e.id IS NULL THEN 'its entry does not exist in this transaction'
                WHEN (SELECT 1 FROM payouts.ledger_chain c WHERE c.entry_id = p.entry_id LIMIT 1) IS NOT NULL
                    THEN 'its entry is already committed and cannot change'
                WHEN p.effective_at <> e.effective_at THEN 'its effective_at differs from its entry'
                ELSE 'its recorded_at differs from its entry' END AS reason
      INTO bad
      FROM new_postings p
      LEFT JOIN LATERAL (SELECT x.id, x.effective_at, x.recorded_at FROM payouts.ledger_entries x
                          WHERE x.id = p.entry_id LIMIT 1) e ON true
     WHERE e.id IS NULL OR p.effective_at <> e.effective_at OR p.recorded_at <> e.recorded_at
        OR (SELECT 1 FROM payouts.ledger_chain c WHERE c.entry_id = p.entry_id LIMIT 1) IS NOT NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LDG04',
            MESSAGE = format('posting %s of entry %s is refused: %s', bad.idx, bad.entry_id, bad.reason);
    END IF;

    -- Lock the touched balances in account order (so concurrent writers never deadlock) and find the
    -- first account the change would take past its limit. Each balance row is read by its own index
    -- probe as it is locked; one another writer changed is re-read after that commit, so the check
    -- sees the latest balance. The aggregate reads, so locks, every row.
    SELECT array_agg(l.account_id), array_agg(l.delta), array_agg(l.n),
           min(l.account_id) FILTER (WHERE l.breaks_limit) AS offender,
           (SELECT count(DISTINCT account_id) FROM new_postings) AS wanted
      INTO account_ids, deltas, counts, offender, wanted
      FROM (SELECT d.account_id, d.delta, d.n,
                   (b.non_negative AND b.balance + d.delta < 0)
                   OR (b.non_positive AND b.balance + d.delta > 0) AS breaks_limit
              FROM (SELECT account_id, sum(amount) AS delta, count(*) AS n
                      FROM new_postings GROUP BY account_id ORDER BY account_id) d
             CROSS JOIN LATERAL (SELECT x.balance, x.non_negative, x.non_positive
                                   FROM payouts.ledger_balances x
                                  WHERE x.account_id = d.account_id FOR UPDATE) b) l;
    IF coalesce(cardinality(account_ids), 0) <> wanted THEN
        SELECT p.entry_id, p.idx, p.account_id INTO bad FROM new_postings p
         WHERE NOT EXISTS (SELECT 1 FROM payouts.ledger_balances b WHERE b.account_id = p.account_id)
         LIMIT 1;
        RAISE EXCEPTION USING ERRCODE = 'LDG04',
            MESSAGE = format('posting %s of entry %s is refused: account id %s does not exist',
                             bad.idx, bad.entry_id, bad.account_id);
    END IF;
    IF offender IS NOT NULL THEN
        SELECT a.code, b.balance, b.non_negative, deltas[array_position(account_ids, a.id)] AS delta
          INTO bad
          FROM payouts.ledger_accounts a JOIN payouts.ledger_balances b ON b.account_id = a.id
         WHERE a.id = offender;
        RAISE EXCEPTION USING ERRCODE = 'LDG01',
            MESSAGE = format('account %s may not go %s: balance %s sat, change %s sat, short by %s sat',
                             bad.code, CASE WHEN bad.non_negative THEN 'below zero' ELSE 'above zero' END,
                             bad.balance, bad.delta, abs(bad.balance + bad.delta)),
            DETAIL = json_build_object(
                'account', bad.code,
                'limit', CASE WHEN bad.non_negative THEN 'non_negative' ELSE 'non_positive' END,
                'balance', bad.balance, 'change', bad.delta, 'shortfall', abs(bad.balance + bad.delta))::text;
    END IF;

    UPDATE payouts.ledger_balances b
       SET balance = b.balance + d.delta, posting_count = b.posting_count + d.n
      FROM unnest(account_ids, deltas, counts) AS d(account_id, delta, n)
     WHERE b.account_id = d.account_id AND b.account_id = ANY(account_ids);
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION payouts.ledger_commit_entry() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, payouts AS $$
DECLARE
    ids uuid[];
    digests bytea[];
    recorded bigint[];
    unbalanced uuid;
    bad record;
    seqs bigint[] := '{}';
    hashes bytea[] := '{}';
    tail_seq bigint;
    tail_hash bytea;
BEGIN
    IF current_setting('payouts.ledger_batch', true) = 'on' THEN
        -- A batch (ledger_append sets the flag): the first of the transaction's entries to get here
        -- appends them all, in the order written, and the others find theirs done. They are the
        -- unchained entries sharing NEW's recorded_at: the transaction's start, which the application
        -- cannot set. One lock, one pass, instead of a round of queries per entry.
        IF EXISTS (SELECT 1 FROM payouts.ledger_chain WHERE entry_id = NEW.id) THEN
            RETURN NULL;
        END IF;
        SELECT array_agg(t.id), array_agg(t.content_hash), array_agg(t.recorded_us),
               (array_agg(t.id) FILTER (WHERE t.n < 2 OR t.total <> 0))[1]
          INTO ids, digests, recorded, unbalanced
          FROM (SELECT e.id, e.content_hash,
                       (extract(epoch FROM e.recorded_at) * 1000000)::bigint AS recorded_us,
                       s.n, s.total
                  FROM payouts.ledger_entries e
                 CROSS JOIN LATERAL (SELECT count(*) AS n, coalesce(sum(p.amount), 0) AS total
                                       FROM payouts.ledger_postings p WHERE p.entry_id = e.id) s
                 WHERE e.recorded_at = NEW.recorded_at
                   AND (SELECT 1 FROM payouts.ledger_chain c WHERE c.entry_id = e.id) IS NULL
                 ORDER BY e.ctid) t;
    ELSE
        SELECT CASE WHEN count(*) < 2 OR coalesce(sum(amount), 0) <> 0 THEN NEW.id END INTO unbalanced
          FROM payouts.ledger_postings WHERE entry_id = NEW.id;
        ids := ARRAY[NEW.id];
        digests := ARRAY[NEW.content_hash];
        recorded := ARRAY[(extract(epoch FROM NEW.recorded_at) * 1000000)::bigint];
    END IF;
    IF unbalanced IS NOT NULL THEN
        SELECT e.id, count(p.*) AS n, coalesce(sum(p.amount), 0) AS total INTO bad
          FROM payouts.ledger_entries e LEFT JOIN payouts.ledger_postings p ON p.entry_id = e.id
         WHERE e.id = unbalanced GROUP BY e.id;
        RAISE EXCEPTION USING ERRCODE = 'LDG02',
            MESSAGE = format('entry %s does not balance: %s posting(s) summing to %s sat; an entry needs at '
                             'least 2 postings summing to 0', bad.id, bad.n, bad.total),
            DETAIL = json_build_object('entry_id', bad.id, 'postings', bad.n, 'sum', bad.total)::text;
    END IF;

    -- From here to the end of COMMIT this transaction holds the head row: appends are serialised in
    -- commit order, and each starts from the head the previous one left.
    IF cardinality(ids) = 1 THEN
        UPDATE payouts.ledger_chain_head
           SET seq = seq + 1, hash = sha256(hash || int8send(seq + 1) || digests[1] || int8send(recorded[1]))
        RETURNING seq, hash INTO tail_seq, tail_hash;
        INSERT INTO payouts.ledger_chain (seq, entry_id, hash) VALUES (tail_seq, ids[1], tail_hash);
        RETURN NULL;
    END IF;
    SELECT seq, hash INTO tail_seq, tail_hash FROM payouts.ledger_chain_head FOR UPDATE;
    FOR i IN 1 .. cardinality(ids) LOOP
        tail_seq := tail_seq + 1;
        tail_hash := sha256(tail_hash || int8send(tail_seq) || digests[i] || int8send(recorded[i]));
        seqs := seqs || tail_seq;
        hashes := hashes || tail_hash;
    END LOOP;
    UPDATE payouts.ledger_chain_head SET seq = tail_seq, hash = tail_hash;
    INSERT INTO payouts.ledger_chain (seq, entry_id, hash) SELECT * FROM unnest(seqs, ids, hashes);
    RETURN NULL;
END
$$
""",
    """
CREATE FUNCTION payouts.ledger_append(
    ids uuid[], effective timestamptz[], kinds text[], memos text[], metadata text[], reverses uuid[],
    pending uuid[], hashes bytea[], leg_entries uuid[], leg_idx int2[], leg_codes text[], leg_amounts int8[]
) RETURNS TABLE (id uuid, recorded_at timestamptz, legs bigint)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF cardinality(ids) > 1 THEN
        PERFORM set_config('payouts.ledger_batch', 'on', true);  -- see ledger_commit_entry
    END IF;
    RETURN QUERY
    WITH input AS (
        SELECT * FROM unnest(ids, effective, kinds, memos, metadata, reverses, pending, hashes)
               AS t(id, effective_at, kind, memo, metadata, reverses, pending_id, content_hash)
    ), inserted AS (
        INSERT INTO payouts.ledger_entries AS e
               (id, effective_at, kind, memo, metadata, reverses, pending_id, content_hash)
        SELECT i.id, i.effective_at, i.kind, i.memo, i.metadata::jsonb, i.reverses, i.pending_id,
               i.content_hash
          FROM input i
        ON CONFLICT ON CONSTRAINT ledger_entries_pkey DO NOTHING
        RETURNING e.id, e.recorded_at
    ), written AS (
        INSERT INTO payouts.ledger_postings (account_id, amount, effective_at, entry_id, idx)
        SELECT l.account_id, l.amount, i.effective_at, l.entry_id, l.idx
          FROM (SELECT p.*, (SELECT a.id FROM payouts.ledger_accounts a WHERE a.code = p.code) AS account_id
                  FROM unnest(leg_entries, leg_idx, leg_codes, leg_amounts)
                       AS p(entry_id, idx, code, amount)) l
          JOIN input i ON i.id = l.entry_id
         WHERE l.account_id IS NOT NULL  -- an unknown code drops its posting; the caller sees the count short
           AND l.entry_id IN (SELECT n.id FROM inserted n)
        RETURNING 1
    )
    SELECT n.id, n.recorded_at, (SELECT count(*) FROM written) FROM inserted n;
END
$$
""",
    """
CREATE FUNCTION payouts.ledger_pending_insert() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, payouts AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM payouts.ledger_entries e
                    WHERE e.id = NEW.reserve_entry_id AND e.kind = 'pending.reserve'
                      AND e.pending_id = NEW.id)
    THEN
        RAISE EXCEPTION USING ERRCODE = 'LDG06',
            MESSAGE = format('pending %s must be created with its pending.reserve entry', NEW.id);
    END IF;
    IF NEW.state <> 'PENDING' OR NEW.resolved_by IS NOT NULL OR NEW.posted_amount IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LDG06',
            MESSAGE = format('pending %s must start in state PENDING', NEW.id);
    END IF;
    NEW.created_at := now();
    NEW.resolved_at := NULL;
    RETURN NEW;
END
$$
""",
    """
CREATE FUNCTION payouts.ledger_pending_update() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, payouts AS $$
BEGIN
    IF OLD.state <> 'PENDING' THEN
        RAISE EXCEPTION USING ERRCODE = 'LDG06',
            MESSAGE = format('pending %s was already %s by entry %s; it resolves only once',
                             OLD.id, OLD.state, OLD.resolved_by);
    END IF;
    IF (NEW.id, NEW.reserve_entry_id, NEW.debit_account_id, NEW.credit_account_id, NEW.holding_account_id,
        NEW.amount, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.reserve_entry_id, OLD.debit_account_id, OLD.credit_account_id, OLD.holding_account_id,
        OLD.amount, OLD.created_at) THEN
        RAISE EXCEPTION USING ERRCODE = 'LDG03',
            MESSAGE = format('pending %s: only its state may change', OLD.id);
    END IF;
    IF NEW.state NOT IN ('POSTED', 'VOIDED') OR NOT EXISTS (
        SELECT 1 FROM payouts.ledger_entries e
         WHERE e.id = NEW.resolved_by AND e.pending_id = NEW.id
           AND e.kind = CASE NEW.state WHEN 'POSTED' THEN 'pending.post' ELSE 'pending.void' END)
    THEN
        RAISE EXCEPTION USING ERRCODE = 'LDG06',
            MESSAGE = format('pending %s resolves only to POSTED or VOIDED by its own settling entry',
                             OLD.id);
    END IF;
    NEW.resolved_at := now();
    RETURN NEW;
END
$$
""",
    """CREATE TRIGGER ledger_accounts_open AFTER INSERT ON payouts.ledger_accounts
       REFERENCING NEW TABLE AS new_accounts FOR EACH STATEMENT
       EXECUTE FUNCTION payouts.ledger_open_balances()""",
    """CREATE TRIGGER ledger_postings_apply AFTER INSERT ON payouts.ledger_postings
       REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT
       EXECUTE FUNCTION payouts.ledger_apply_postings()""",
    """CREATE CONSTRAINT TRIGGER ledger_entries_commit AFTER INSERT ON payouts.ledger_entries
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION payouts.ledger_commit_entry()""",
    """CREATE TRIGGER ledger_pending_insert BEFORE INSERT ON payouts.ledger_pending
       FOR EACH ROW EXECUTE FUNCTION payouts.ledger_pending_insert()""",
    """CREATE TRIGGER ledger_pending_update BEFORE UPDATE ON payouts.ledger_pending
       FOR EACH ROW EXECUTE FUNCTION payouts.ledger_pending_update()""",
    """CREATE TRIGGER ledger_accounts_append_only BEFORE UPDATE OR DELETE ON payouts.ledger_accounts
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON payouts.ledger_entries
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON payouts.ledger_postings
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_chain_append_only BEFORE UPDATE OR DELETE ON payouts.ledger_chain
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_balances_no_delete BEFORE DELETE ON payouts.ledger_balances
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_chain_head_no_delete BEFORE DELETE ON payouts.ledger_chain_head
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_pending_no_delete BEFORE DELETE ON payouts.ledger_pending
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON payouts.ledger_accounts
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_balances_no_truncate BEFORE TRUNCATE ON payouts.ledger_balances
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON payouts.ledger_entries
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON payouts.ledger_postings
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_chain_no_truncate BEFORE TRUNCATE ON payouts.ledger_chain
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_chain_head_no_truncate BEFORE TRUNCATE ON payouts.ledger_chain_head
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    """CREATE TRIGGER ledger_pending_no_truncate BEFORE TRUNCATE ON payouts.ledger_pending
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()""",
    "GRANT USAGE ON SCHEMA payouts TO crowdquant_app",
    "REVOKE ALL ON FUNCTION payouts.ledger_append FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION payouts.ledger_append TO crowdquant_app",
    """GRANT SELECT, INSERT (code, type, currency, non_negative, non_positive, owner, metadata)
        ON payouts.ledger_accounts TO crowdquant_app""",
    "GRANT SELECT ON payouts.ledger_balances, payouts.ledger_chain TO crowdquant_app",
    """GRANT SELECT, INSERT (id, effective_at, kind, memo, metadata, reverses, pending_id, content_hash)
        ON payouts.ledger_entries TO crowdquant_app""",
    """GRANT SELECT, INSERT (account_id, amount, effective_at, entry_id, idx)
        ON payouts.ledger_postings TO crowdquant_app""",
    """GRANT SELECT,
              INSERT (id, reserve_entry_id, debit_account_id, credit_account_id, holding_account_id, amount),
              UPDATE (state, resolved_by, posted_amount)
        ON payouts.ledger_pending TO crowdquant_app""",
]
LEDGER_DOWNGRADE = [
    "DROP TABLE payouts.ledger_pending",
    "DROP TABLE payouts.ledger_chain_head",
    "DROP TABLE payouts.ledger_chain",
    "DROP TABLE payouts.ledger_postings",
    "DROP TABLE payouts.ledger_entries",
    "DROP TABLE payouts.ledger_balances",
    "DROP TABLE payouts.ledger_accounts",
    "DROP FUNCTION payouts.ledger_pending_update()",
    "DROP FUNCTION payouts.ledger_pending_insert()",
    "DROP FUNCTION payouts.ledger_append(uuid[], timestamptz[], text[], text[], text[], uuid[], uuid[], bytea[], uuid[], int2[], text[], int8[])",
    "DROP FUNCTION payouts.ledger_commit_entry()",
    "DROP FUNCTION payouts.ledger_apply_postings()",
    "DROP FUNCTION payouts.ledger_open_balances()",
    "DROP FUNCTION payouts.ledger_refuse_change()",
]


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
