-- Quarry core schema: the system of record the broker writes by group commit
-- (broker/db.c).  The broker is the only writer and allocates ids itself
-- (accounts, workers, jobs, ledger txn ids), so those keys are plain bigints,
-- not serials.  Append-only logs (job_events, ledger_entries) use bigserial.
--
-- Never edit this file once released: add a new NNN_name.sql instead.

CREATE TABLE accounts (
    id          bigint PRIMARY KEY CHECK (id > 0),
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    kind        text NOT NULL CHECK (kind IN ('client', 'operator', 'system')),
    -- Balances are the per-bucket sums of the account's ledger entries,
    -- maintained by the same commit that writes the entries (v_balances
    -- recomputes them from the ledger).  Only system accounts (the outside
    -- world that deposits come from, the fee sink) may go negative.
    available   bigint NOT NULL DEFAULT 0,
    reserved    bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'system' OR (available >= 0 AND reserved >= 0))
);

CREATE TABLE workers (
    id          bigint PRIMARY KEY CHECK (id > 0),
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    operator_id bigint NOT NULL REFERENCES accounts (id),
    devices     jsonb NOT NULL DEFAULT '[]',
    runtimes    text NOT NULL DEFAULT '',
    ask_price   bigint NOT NULL DEFAULT 0 CHECK (ask_price >= 0),
    slots       int NOT NULL DEFAULT 1 CHECK (slots >= 0),
    state       text NOT NULL DEFAULT 'offline'
                CHECK (state IN ('online', 'offline', 'draining', 'banned')),
    reputation  int NOT NULL DEFAULT 100,
    jobs_done   bigint NOT NULL DEFAULT 0 CHECK (jobs_done >= 0),
    last_seen   timestamptz NOT NULL DEFAULT now()
);

-- Job inputs and results, content-deduplicated by the broker: many jobs send
-- the same matrices (the same weights, the same batch), and one copy of the
-- bytes is what makes durable submission cheap.  Ids come from the broker.
CREATE TABLE blobs (
    id      bigint PRIMARY KEY CHECK (id > 0),
    data    bytea NOT NULL
);
-- Float matrices rarely compress: store out of line without trying.
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;

-- The jobs table is written at the highest rate of all (an insert and a
-- couple of updates per job), so it carries only the indexes reads need and
-- no foreign keys: the broker, the single writer, creates the account and the
-- input blob in the same or an earlier commit (v_integrity audits this).  No
-- index covers state, so a state change is a HOT update that touches no
-- index; fillfactor leaves room on the page for those new row versions.  The
-- restart reload of live jobs is a sequential scan, once per start.
CREATE TABLE jobs (
    id           bigint PRIMARY KEY CHECK (id > 0),
    client_id    bigint NOT NULL,
    kind         text NOT NULL CHECK (kind <> ''),
    -- The names of common/jobstate.c; never rename one.
    state        text NOT NULL CHECK (state IN ('submitted', 'queued', 'assigned', 'running',
                     'done', 'verified', 'settled', 'mirrored', 'rejected', 'failed',
                     'expired', 'cancelled')),
    m            int NOT NULL DEFAULT 0 CHECK (m >= 0),
    n            int NOT NULL DEFAULT 0 CHECK (n >= 0),
    k            int NOT NULL DEFAULT 0 CHECK (k >= 0),
    max_price    bigint NOT NULL CHECK (max_price >= 0),
    need_gpu     boolean NOT NULL DEFAULT false,
    min_mem_mb   bigint NOT NULL DEFAULT 0 CHECK (min_mem_mb >= 0),
    priority     int NOT NULL DEFAULT 0,
    max_attempts int NOT NULL DEFAULT 3 CHECK (max_attempts >= 0),
    attempts     int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    deadline     timestamptz,
    -- Last worker assigned.  No foreign key: the broker commits a worker's row
    -- before it can be assigned anything, and the check would cost a lookup
    -- on every hot-path update.
    worker_id    bigint,
    units        bigint NOT NULL DEFAULT 0 CHECK (units >= 0),
    price        bigint NOT NULL DEFAULT 0 CHECK (price >= 0),
    fee          bigint NOT NULL DEFAULT 0 CHECK (fee >= 0),
    detail       text NOT NULL DEFAULT '',
    idem_key     text CHECK (idem_key <> ''),
    -- The job's inputs (A then B for ai.gemm).
    input_blob   bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
) WITH (fillfactor = 50);
-- A retried SUBMIT with the same key finds the first job; jobs without a key
-- cost this index nothing.
CREATE UNIQUE INDEX jobs_idem ON jobs (client_id, idem_key) WHERE idem_key IS NOT NULL;
-- LIST: a client's jobs, newest first.
CREATE INDEX jobs_client ON jobs (client_id, id);

-- A job's verified result.  Written with the settlement, by the single
-- writer, so no foreign keys (v_integrity audits them).
CREATE TABLE job_results (
    job_id  bigint PRIMARY KEY,
    blob_id bigint NOT NULL
);

-- One row per state transition.  job_id carries no foreign key on purpose:
-- this is the hottest append-only table and the broker writes each event in
-- the same commit as the job row it belongs to.
CREATE TABLE job_events (
    id         bigserial PRIMARY KEY,
    job_id     bigint NOT NULL,
    state      text NOT NULL CHECK (state IN ('submitted', 'queued', 'assigned', 'running',
                   'done', 'verified', 'settled', 'mirrored', 'rejected', 'failed',
                   'expired', 'cancelled')),
    worker_id  bigint,
    detail     text NOT NULL DEFAULT '',
    at         timestamptz NOT NULL
);
CREATE INDEX job_events_job ON job_events (job_id);

-- Double-entry ledger: the entries of one txn_id sum to zero (checked by the
-- broker before every commit; v_ledger_check audits it), so the sum of all
-- entries is always zero.
--
-- account_id has no foreign key on purpose: the same commit that inserts the
-- entries moves accounts.available/reserved by their sums and fails unless
-- every account it names exists (broker/db.c checks the row count), which
-- is the same guarantee at no cost; the per-row FK check took about a third
-- of the commit time of small jobs.
CREATE TABLE ledger_entries (
    id          bigserial PRIMARY KEY,
    txn_id      bigint NOT NULL CHECK (txn_id > 0),
    account_id  bigint NOT NULL,
    bucket      text NOT NULL CHECK (bucket IN ('available', 'reserved')),
    job_id      bigint,
    kind        text NOT NULL CHECK (kind IN ('deposit', 'reserve', 'settle', 'payment', 'fee',
                    'release', 'withdraw', 'penalty')),
    amount      bigint NOT NULL,
    at          timestamptz NOT NULL
);
-- Audits go by transaction; an account's balance is kept on its accounts row.
CREATE INDEX ledger_entries_txn ON ledger_entries (txn_id);

-- Settlement happens exactly once per job: the primary key makes a second
-- one fail the whole commit.  The parties are copied from the job and worker
-- at settlement time so the record stands alone (the chain mirror hashes it).
CREATE TABLE settlements (
    job_id       bigint PRIMARY KEY,
    worker_id    bigint NOT NULL,
    operator_id  bigint NOT NULL,
    client_id    bigint NOT NULL,
    units        bigint NOT NULL CHECK (units >= 0),
    price        bigint NOT NULL CHECK (price >= 0),
    fee          bigint NOT NULL CHECK (fee >= 0),
    settled_at   timestamptz NOT NULL,
    batch_id     bigint          -- set by quarry-mirror once posted on chain
);
-- Throughput and latency views read the newest settlements.
CREATE INDEX settlements_at ON settlements (settled_at);
