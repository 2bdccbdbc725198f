-- quarry-mirror (broker/mirror, docs/mirror.md): settled jobs posted to the
-- QuarrySettlement contract as Merkle roots of batches.  The broker never
-- reads or writes these tables; the mirror writes only them and
-- settlements.batch_id.
--
-- Never edit this file once released: add a new NNN_name.sql instead.

-- The Ethereum address of an account, set by an admin with
-- `quarry-mirror address ACCOUNT 0xADDR`.  A settlement is mirrored once
-- both its client and its operator have one; until then it waits (the
-- mirror logs which accounts hold it up).
CREATE TABLE account_addresses (
    account_id  bigint PRIMARY KEY,
    address     bytea NOT NULL CHECK (length(address) = 20),
    set_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per batch, numbered like the contract's batch ids (0, 1, 2...).
-- The row, its records and its first signed transaction are committed
-- together BEFORE anything is sent, so a restarted mirror re-sends (or
-- re-prices) that transaction instead of building a second batch over the
-- same settlements.
--   signed     persisted, maybe not yet accepted by a node
--   sent       a node accepted a transaction of the batch
--   mined      a receipt with status 1: tx_hash, block, gas_used are set
--   confirmed  block is at least `confirmations` deep
CREATE TABLE mirror_batches (
    id           bigint PRIMARY KEY CHECK (id >= 0),
    chain_id     bigint NOT NULL,
    contract     bytea NOT NULL CHECK (length(contract) = 20),
    root         bytea NOT NULL CHECK (length(root) = 32),
    count        int NOT NULL CHECK (count > 0),
    nonce        bigint NOT NULL CHECK (nonce >= 0),
    state        text NOT NULL CHECK (state IN ('signed', 'sent', 'mined', 'confirmed')),
    -- the transaction the node mined (mined, confirmed), else the newest sent
    tx_hash      bytea NOT NULL CHECK (length(tx_hash) = 32),
    block_number bigint,
    gas_used     bigint,
    gas_price    numeric(78, 0),   -- effective wei per gas, from the receipt
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    mined_at     timestamptz,
    confirmed_at timestamptz
);
CREATE INDEX mirror_batches_open ON mirror_batches (id) WHERE state <> 'confirmed';

-- Every signed transaction of a batch: the first, fee bumps (same nonce,
-- higher fees) and re-signs after a lost nonce.  Any of them may be the one
-- a node mines, so the mirror looks for a receipt of each.
CREATE TABLE mirror_txs (
    tx_hash     bytea PRIMARY KEY CHECK (length(tx_hash) = 32),
    batch_id    bigint NOT NULL REFERENCES mirror_batches (id),
    nonce       bigint NOT NULL,
    max_fee     numeric(78, 0) NOT NULL,
    tip         numeric(78, 0) NOT NULL,
    gas_limit   bigint NOT NULL,
    raw         bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mirror_txs_batch ON mirror_txs (batch_id);

-- The leaves of each batch, frozen when the batch is built: the addresses
-- and the amount (wei) hashed into the leaf, and its position.  Proofs are
-- rebuilt from these rows, so a later change of an account's address or of
-- the wei-per-unit rate never changes a posted leaf.
CREATE TABLE mirror_records (
    job_id      bigint PRIMARY KEY,
    batch_id    bigint NOT NULL REFERENCES mirror_batches (id),
    leaf_index  int NOT NULL CHECK (leaf_index >= 0),
    client      bytea NOT NULL CHECK (length(client) = 20),
    operator    bytea NOT NULL CHECK (length(operator) = 20),
    amount      numeric(78, 0) NOT NULL CHECK (amount >= 0),
    UNIQUE (batch_id, leaf_index)
);
-- `quarry claim`: an operator's records, in job order.
CREATE INDEX mirror_records_operator ON mirror_records (operator, job_id);

-- The mirror's work list: settlements not yet in a batch.  Partial, so it
-- holds only the backlog and the broker's settlement insert pays one small
-- index entry that the mirror removes again.
CREATE INDEX settlements_unbatched ON settlements (job_id) WHERE batch_id IS NULL;
