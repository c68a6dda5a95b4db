"""The ledger's tables, triggers and grants in schema ``payouts``, as data (tests build a ledger from it).

The payouts migration that created the ledger holds a frozen copy of this text: a change here
changes no existing database, so it needs a new migration of its own.

Tables: ``ledger_accounts`` (code, type, limit flags, owner, metadata), ``ledger_balances`` (one row
per account: current balance and posting count, kept by trigger), ``ledger_entries`` (caller's UUID,
kind, memo, metadata, effective_at, recorded_at, reverses, pending_id, content_hash),
``ledger_postings`` (entry, idx, account, signed amount, and the entry's two times copied for the
as-of indexes), ``ledger_chain`` (seq, entry, hash), ``ledger_chain_head`` (one row: the last link,
whose row lock serialises appends) and ``ledger_pending`` (two-phase state PENDING -> POSTED | VOIDED).

The database, not only Python, keeps the ledger honest:

* ``ledger_postings`` inserts run a statement trigger that refuses postings for unknown or already
  committed entries (and times that differ from their entry's), then locks the touched balance rows
  in account-id order (``FOR UPDATE``: no deadlock between writers, no lost update), refuses a change
  that takes a ``non_negative`` / ``non_positive`` account past zero, and updates the balances.
  The ``ledger_balances`` CHECK repeats the limit rule as a last line of defence.
* A deferred constraint trigger on ``ledger_entries`` runs at COMMIT: it refuses an entry whose
  postings do not sum to zero or are fewer than two, then appends the entry to the hash chain
  (``ledger_chain``) under the chain lock. Taking that lock only at commit keeps it for the time of
  the commit itself rather than the whole transaction, which is what lets concurrent writers go fast.
* Statement triggers refuse UPDATE, DELETE and TRUNCATE on accounts, entries, postings and the chain,
  even for the owner, and DELETE and TRUNCATE on balances and pending rows; a pending row changes only
  PENDING -> POSTED | VOIDED, once, naming its own settling entry. The application role
  ``crowdquant_app`` has no UPDATE or DELETE grants on history, may not set ``recorded_at`` (column
  grants) and cannot write balances or the chain at all: the trigger functions that do are SECURITY
  DEFINER (with a pinned search_path).

Errors raised here carry SQLSTATEs of class ``LD`` (below) that ``pg.translate_error`` maps to domain
errors. Statements run once, in order, on an empty schema ``payouts``; ``LEDGER_DOWNGRADE`` removes
them but leaves the cluster-wide role, which other schemas may also grant to.
"""

from __future__ import annotations

APP_ROLE = "crowdquant_app"

SQLSTATE_LIMIT = "LDG01"
SQLSTATE_UNBALANCED = "LDG02"
SQLSTATE_APPEND_ONLY = "LDG03"
SQLSTATE_BAD_POSTING = "LDG04"
SQLSTATE_PENDING_STATE = "LDG06"
SQLSTATE_CALL_REFUSED = "LDG07"
"""Raised on purpose by the Python side to fail a transaction whose ledger call was refused midway."""

_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} NOLOGIN;
    END IF;
END
$$
"""

_ACCOUNTS = r"""
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
"""

_ACCOUNTS_OWNER_INDEX = "CREATE INDEX ledger_accounts_owner_idx ON payouts.ledger_accounts (owner) WHERE owner <> ''"

# fillfactor 50: hot accounts are updated by every transfer; spare room keeps those updates HOT.
_BALANCES = """
CREATE TABLE payouts.ledger_balances (
    account_id bigint PRIMARY KEY REFERENCES payouts.ledger_accounts (id),
    balance bigint NOT NULL DEFAULT 0,
    posting_count bigint NOT NULL DEFAULT 0,
    non_negative boolean NOT NULL,
    non_positive boolean NOT NULL,
    CONSTRAINT ledger_balances_within_limits
        CHECK ((NOT non_negative OR balance >= 0) AND (NOT non_positive OR balance <= 0))
) WITH (fillfactor = 50)
"""

_ENTRIES = r"""
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
"""

_ENTRIES_INDEXES = [
    """CREATE UNIQUE INDEX ledger_entries_reverses_key ON payouts.ledger_entries (reverses)
       WHERE reverses IS NOT NULL""",
    "CREATE INDEX ledger_entries_recorded_idx ON payouts.ledger_entries (recorded_at)",
    "CREATE INDEX ledger_entries_effective_idx ON payouts.ledger_entries (effective_at)",
]

# No foreign keys here on purpose: the statement trigger checks entries and accounts set-wise, where
# per-row FK checks would take a KEY SHARE lock on a hot account row for every posting.
_POSTINGS = """
CREATE TABLE payouts.ledger_postings (
    account_id bigint NOT NULL,
    amount bigint NOT NULL CHECK (amount <> 0),
    effective_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    entry_id uuid NOT NULL,
    idx smallint NOT NULL CHECK (idx >= 0),
    PRIMARY KEY (entry_id, idx)
)
"""

_POSTINGS_INDEXES = [
    """CREATE INDEX ledger_postings_account_effective_idx
       ON payouts.ledger_postings (account_id, effective_at) INCLUDE (amount)""",
    """CREATE INDEX ledger_postings_account_recorded_idx
       ON payouts.ledger_postings (account_id, recorded_at) INCLUDE (amount)""",
]

_CHAIN = """
CREATE TABLE payouts.ledger_chain (
    seq bigint PRIMARY KEY CHECK (seq >= 1),
    entry_id uuid NOT NULL UNIQUE,
    hash bytea NOT NULL CHECK (length(hash) = 32)
)
"""

# One row: the last link's sequence and hash. Each committing writer updates it, so its row lock is the
# chain's mutex and the update itself reads the latest head (after waiting), whatever the isolation
# level: a writer whose snapshot missed a newer head fails to serialise rather than fork the chain.
_CHAIN_HEAD = [
    """CREATE TABLE payouts.ledger_chain_head (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        seq bigint NOT NULL CHECK (seq >= 0),
        hash bytea NOT NULL CHECK (length(hash) = 32)
    )""",
    "INSERT INTO payouts.ledger_chain_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'))",
]

_PENDING = """
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
"""

_PENDING_INDEXES = [
    """CREATE INDEX ledger_pending_open_idx ON payouts.ledger_pending (reserve_entry_id)
       WHERE state = 'PENDING'""",
    "CREATE INDEX ledger_pending_debit_idx ON payouts.ledger_pending (debit_account_id)",
    "CREATE INDEX ledger_pending_holding_idx ON payouts.ledger_pending (holding_account_id)",
]

_DEFINER = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, payouts"

_REFUSE_CHANGE = f"""
CREATE FUNCTION payouts.ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = '{SQLSTATE_APPEND_ONLY}',
        MESSAGE = format('%s on payouts.%s is refused: the ledger is append-only; correct a mistake with a '
                         'reversing entry', TG_OP, TG_TABLE_NAME);
END
$$
"""

_OPEN_BALANCES = f"""
CREATE FUNCTION payouts.ledger_open_balances() RETURNS trigger {_DEFINER} AS $$
BEGIN
    INSERT INTO payouts.ledger_balances (account_id, non_negative, non_positive)
    SELECT id, non_negative, non_positive FROM new_accounts;
    RETURN NULL;
END
$$
"""

# Every lookup below is an index probe per posting or per account (LATERAL ... LIMIT 1, ``= ANY(array)``),
# whatever the planner guesses: PL/pgSQL keeps the plan made at a session's first call, and a join
# planned for a 10,000-posting batch would otherwise hash whole tables on every later single transfer.
_APPLY_POSTINGS = f"""
CREATE FUNCTION payouts.ledger_apply_postings() RETURNS trigger {_DEFINER} AS $$
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
        RAISE EXCEPTION USING ERRCODE = '{SQLSTATE_BAD_POSTING}',
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
        RAISE EXCEPTION USING ERRCODE = '{SQLSTATE_BAD_POSTING}',
            MESSAGE = format('posting %s of entry %s is refused: account id %s does not exist',
                             bad.idx, bad.entry_id, bad.account_id);
    END IF;
    IF offender IS NOT NULL THEN
        SELECT a.code, b.balance, b.non_negative, deltas[array_position(account_ids, a.id)] AS delta
          INTO bad
          FROM payouts.ledger_accounts a JOIN payouts.ledger_balances b ON b.account_id = a.id
         WHERE a.id = offender;
        RAISE EXCEPTION USING ERRCODE = '{SQLSTATE_LIMIT}',
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
"""

_COMMIT_ENTRY = f"""
CREATE FUNCTION payouts.ledger_commit_entry() RETURNS trigger {_DEFINER} AS $$
DECLARE
    ids uuid[];
    digests bytea[];
    recorded bigint[];
    unbalanced uuid;
    bad record;
    seqs bigint[] := '{{}}';
    hashes bytea[] := '{{}}';
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
        RAISE EXCEPTION USING ERRCODE = '{SQLSTATE_UNBALANCED}',
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
"""

# The write path as one function call. SECURITY INVOKER: it inserts with the caller's own grants, so the
# triggers and permissions above apply exactly as to hand-written INSERTs. Being PL/pgSQL, its statement
# keeps a generic plan for the session; sent as a plain parameterised statement it would be re-planned
# on every call (the array lengths make each custom plan look cheaper), which cost more than running it.
# Account codes are looked up one posting at a time through their unique index, so that generic plan
# never hashes the whole accounts table.
_APPEND = """
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
"""

_PENDING_INSERT = f"""
CREATE FUNCTION payouts.ledger_pending_insert() RETURNS trigger {_DEFINER} AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM payouts.ledger_entries e
                    WHERE e.id = NEW.reserve_entry_id AND e.kind = 'pending.reserve'
                      AND e.pending_id = NEW.id)
    THEN
        RAISE EXCEPTION USING ERRCODE = '{SQLSTATE_PENDING_STATE}',
            MESSAGE = format('pending %s must be created with its pending.reserve entry', NEW.id);
    END IF;
    IF NEW.state <> 'PENDING' OR NEW.resolved_by IS NOT NULL OR NEW.posted_amount IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = '{SQLSTATE_PENDING_STATE}',
            MESSAGE = format('pending %s must start in state PENDING', NEW.id);
    END IF;
    NEW.created_at := now();
    NEW.resolved_at := NULL;
    RETURN NEW;
END
$$
"""

_PENDING_UPDATE = f"""
CREATE FUNCTION payouts.ledger_pending_update() RETURNS trigger {_DEFINER} AS $$
BEGIN
    IF OLD.state <> 'PENDING' THEN
        RAISE EXCEPTION USING ERRCODE = '{SQLSTATE_PENDING_STATE}',
            MESSAGE = format('pending %s was already %s by entry %s; it resolves only once',
                             OLD.id, OLD.state, OLD.resolved_by);
    END IF;
    IF (NEW.id, NEW.reserve_entry_id, NEW.debit_account_id, NEW.credit_account_id, NEW.holding_account_id,
        NEW.amount, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.reserve_entry_id, OLD.debit_account_id, OLD.credit_account_id, OLD.holding_account_id,
        OLD.amount, OLD.created_at) THEN
        RAISE EXCEPTION USING ERRCODE = '{SQLSTATE_APPEND_ONLY}',
            MESSAGE = format('pending %s: only its state may change', OLD.id);
    END IF;
    IF NEW.state NOT IN ('POSTED', 'VOIDED') OR NOT EXISTS (
        SELECT 1 FROM payouts.ledger_entries e
         WHERE e.id = NEW.resolved_by AND e.pending_id = NEW.id
           AND e.kind = CASE NEW.state WHEN 'POSTED' THEN 'pending.post' ELSE 'pending.void' END)
    THEN
        RAISE EXCEPTION USING ERRCODE = '{SQLSTATE_PENDING_STATE}',
            MESSAGE = format('pending %s resolves only to POSTED or VOIDED by its own settling entry',
                             OLD.id);
    END IF;
    NEW.resolved_at := now();
    RETURN NEW;
END
$$
"""

_TRIGGERS = [
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
    *[
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON payouts.{table}
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()"""
        for table in (
            "ledger_accounts",
            "ledger_entries",
            "ledger_postings",
            "ledger_chain",
        )
    ],
    *[
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON payouts.{table}
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()"""
        for table in ("ledger_balances", "ledger_chain_head", "ledger_pending")
    ],
    *[
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON payouts.{table}
            FOR EACH STATEMENT EXECUTE FUNCTION payouts.ledger_refuse_change()"""
        for table in (
            "ledger_accounts",
            "ledger_balances",
            "ledger_entries",
            "ledger_postings",
            "ledger_chain",
            "ledger_chain_head",
            "ledger_pending",
        )
    ],
]

_GRANTS = [
    f"GRANT USAGE ON SCHEMA payouts TO {APP_ROLE}",
    "REVOKE ALL ON FUNCTION payouts.ledger_append FROM PUBLIC",
    f"GRANT EXECUTE ON FUNCTION payouts.ledger_append TO {APP_ROLE}",
    f"""GRANT SELECT, INSERT (code, type, currency, non_negative, non_positive, owner, metadata)
        ON payouts.ledger_accounts TO {APP_ROLE}""",
    f"GRANT SELECT ON payouts.ledger_balances, payouts.ledger_chain TO {APP_ROLE}",
    f"""GRANT SELECT, INSERT (id, effective_at, kind, memo, metadata, reverses, pending_id, content_hash)
        ON payouts.ledger_entries TO {APP_ROLE}""",
    f"""GRANT SELECT, INSERT (account_id, amount, effective_at, entry_id, idx)
        ON payouts.ledger_postings TO {APP_ROLE}""",
    f"""GRANT SELECT,
              INSERT (id, reserve_entry_id, debit_account_id, credit_account_id, holding_account_id, amount),
              UPDATE (state, resolved_by, posted_amount)
        ON payouts.ledger_pending TO {APP_ROLE}""",
]

LEDGER_UPGRADE: list[str] = [
    _ROLE,
    _ACCOUNTS,
    _ACCOUNTS_OWNER_INDEX,
    _BALANCES,
    _ENTRIES,
    *_ENTRIES_INDEXES,
    _POSTINGS,
    *_POSTINGS_INDEXES,
    _CHAIN,
    *_CHAIN_HEAD,
    _PENDING,
    *_PENDING_INDEXES,
    _REFUSE_CHANGE,
    _OPEN_BALANCES,
    _APPLY_POSTINGS,
    _COMMIT_ENTRY,
    _APPEND,
    _PENDING_INSERT,
    _PENDING_UPDATE,
    *_TRIGGERS,
    *_GRANTS,
]
"""Run in order by the payouts migration on an empty schema ``payouts``."""

LEDGER_DOWNGRADE: list[str] = [
    "DROP TABLE payouts.ledger_pending",
    "DROP TABLE payouts.ledger_chain_head",
    "DROP TABLE payouts.ledger_chain",
    "DROP TABLE payouts.ledger_postings",
    "DROP TABLE payouts.ledger_entries",
    "DROP TABLE payouts.ledger_balances",
    "DROP TABLE payouts.ledger_accounts",
    "DROP FUNCTION payouts.ledger_pending_update()",
    "DROP FUNCTION payouts.ledger_pending_insert()",
    "DROP FUNCTION payouts.ledger_append(uuid[], timestamptz[], text[], text[], text[], uuid[], uuid[], "
    "bytea[], "
    "uuid[], int2[], text[], int8[])",
    "DROP FUNCTION payouts.ledger_commit_entry()",
    "DROP FUNCTION payouts.ledger_apply_postings()",
    "DROP FUNCTION payouts.ledger_open_balances()",
    "DROP FUNCTION payouts.ledger_refuse_change()",
]
"""Reverses ``LEDGER_UPGRADE``; the ``crowdquant_app`` role stays (it is cluster-wide and shared)."""
