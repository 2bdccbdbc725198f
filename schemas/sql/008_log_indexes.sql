-- The append-only logs get block-range (BRIN) indexes instead of B-trees.
--
-- job_events and ledger_entries are written in commit order, so job_id,
-- txn_id and id grow with the table's physical order: a BRIN index keeps
-- one summary per 128 pages and costs next to nothing per inserted row,
-- where each B-tree cost a leaf insertion and its WAL record.  Together the
-- two logs take twelve rows per settled job, and their B-trees were about a
-- fifth of the database's time per job (docs/benchmarks.md, "core loop").
-- Lookups by job or transaction read the few page ranges that hold it.
--
-- id stays (a sequence, so events of one job keep their order), without a
-- unique index: nothing references it and the sequence cannot repeat.
ALTER TABLE job_events DROP CONSTRAINT job_events_pkey;
DROP INDEX job_events_job;
CREATE INDEX job_events_job ON job_events USING brin (job_id);

ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_pkey;
DROP INDEX ledger_entries_txn;
CREATE INDEX ledger_entries_txn ON ledger_entries USING brin (txn_id);

-- settled_at grows with the table too.
DROP INDEX settlements_at;
CREATE INDEX settlements_at ON settlements USING brin (settled_at);

