-- Admin views over the core tables (docs/database.md shows how to use them).
-- The broker's dashboard (qr_db_dash) reads some of them; psql users read all.

-- Jobs waiting, running and being verified, per kind.
CREATE VIEW v_queue_depth AS
SELECT kind,
       count(*) FILTER (WHERE state IN ('submitted', 'queued'))                 AS queued,
       count(*) FILTER (WHERE state IN ('assigned', 'running'))                 AS running,
       count(*) FILTER (WHERE state IN ('done', 'verified'))                    AS verifying
  FROM jobs
 WHERE state IN ('submitted', 'queued', 'assigned', 'running', 'done', 'verified')
 GROUP BY kind;

-- Busy slots per worker (jobs assigned or running on it) against its slots.
CREATE VIEW v_worker_utilisation AS
SELECT w.id, w.name, a.name AS operator, w.state, w.slots,
       coalesce(b.busy, 0) AS busy,
       CASE WHEN w.slots > 0 THEN coalesce(b.busy, 0)::float8 / w.slots ELSE 0 END AS utilisation,
       w.reputation, w.jobs_done, w.last_seen
  FROM workers w
  JOIN accounts a ON a.id = w.operator_id
  LEFT JOIN (SELECT worker_id, count(*) AS busy
               FROM jobs
              WHERE state IN ('assigned', 'running')
              GROUP BY worker_id) b ON b.worker_id = w.id;

-- Settlements in the last minute.
CREATE VIEW v_throughput AS
SELECT count(*) AS settled_last_minute,
       count(*)::float8 / 60 AS jobs_per_s
  FROM settlements
 WHERE settled_at > now() - interval '1 minute';

-- Submit-to-settle latency over the last 1000 settled jobs.
CREATE VIEW v_latency AS
SELECT count(*) AS samples,
       coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), 0) AS p50_ms,
       coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), 0) AS p99_ms
  FROM (SELECT extract(epoch FROM s.settled_at - j.created_at)::float8 * 1000 AS ms
          FROM (SELECT job_id, settled_at FROM settlements
                 ORDER BY settled_at DESC LIMIT 1000) s
          JOIN jobs j ON j.id = s.job_id) l;

-- What each operator earned from settled jobs (the price; the fee is ours).
CREATE VIEW v_operator_earnings AS
SELECT a.name AS operator, count(*) AS jobs, sum(s.price - s.fee)::bigint AS earned
  FROM settlements s
  JOIN accounts a ON a.id = s.operator_id
 GROUP BY a.name;

-- Balances recomputed from the ledger, next to the columns the broker keeps;
-- consistent is false if the two ever disagree.
CREATE VIEW v_balances AS
SELECT a.id, a.name AS account, a.kind,
       coalesce(l.available, 0) AS available,
       coalesce(l.reserved, 0) AS reserved,
       coalesce(l.available, 0) = a.available AND coalesce(l.reserved, 0) = a.reserved AS consistent
  FROM accounts a
  LEFT JOIN (SELECT account_id,
                    sum(amount) FILTER (WHERE bucket = 'available')::bigint AS available,
                    sum(amount) FILTER (WHERE bucket = 'reserved')::bigint AS reserved
               FROM ledger_entries
              GROUP BY account_id) l ON l.account_id = a.id;

-- Full ledger audit: total must be 0 and unbalanced_txns empty.  Scans the
-- whole ledger; for a cheap running figure see qr_db_dash (accounts sums).
CREATE VIEW v_ledger_check AS
SELECT (SELECT coalesce(sum(amount), 0)::bigint FROM ledger_entries) AS total,
       (SELECT count(*) FROM ledger_entries) AS entries,
       (SELECT coalesce(array_agg(txn_id ORDER BY txn_id), '{}')
          FROM (SELECT txn_id FROM ledger_entries
                 GROUP BY txn_id HAVING sum(amount) <> 0) u) AS unbalanced_txns;

-- References the hot tables keep without foreign keys (see 001_core.sql),
-- audited: every count is zero in a sound database.
CREATE VIEW v_integrity AS
SELECT (SELECT count(*) FROM jobs j WHERE NOT EXISTS
            (SELECT 1 FROM accounts a WHERE a.id = j.client_id)) AS jobs_without_client,
       (SELECT count(*) FROM jobs j WHERE NOT EXISTS
            (SELECT 1 FROM blobs b WHERE b.id = j.input_blob)) AS jobs_without_input,
       (SELECT count(*) FROM job_results r WHERE NOT EXISTS
            (SELECT 1 FROM jobs j WHERE j.id = r.job_id)
            OR NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = r.blob_id)) AS dangling_results,
       (SELECT count(*) FROM settlements s WHERE NOT EXISTS
            (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.state IN ('settled', 'mirrored')))
           AS settlements_without_settled_job,
       (SELECT count(*) FROM ledger_entries l WHERE NOT EXISTS
            (SELECT 1 FROM accounts a WHERE a.id = l.account_id)) AS entries_without_account;
