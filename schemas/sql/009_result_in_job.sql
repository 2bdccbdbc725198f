-- A job's verified result blob moves from its own table into the job row.
--
-- job_results held one (job_id, blob_id) row per settled job: a heap row,
-- a primary-key B-tree entry and a COPY per commit, on the path every
-- settlement takes.  The settled transition already rewrites the job row
-- (a HOT update: result_blob is not indexed), so carrying the blob id in
-- that same update costs nothing more.
ALTER TABLE jobs ADD COLUMN result_blob bigint;
UPDATE jobs j SET result_blob = r.blob_id FROM job_results r WHERE r.job_id = j.id;

-- Same columns, now auditing the job rows' result references.
CREATE OR REPLACE VIEW v_integrity AS
SELECT (SELECT count(*) FROM jobs j WHERE NOT EXISTS
            (SELECT 1 FROM accounts a WHERE a.id = j.client_id)) AS jobs_without_client,
       (SELECT count(*) FROM jobs j WHERE NOT EXISTS
            (SELECT 1 FROM blobs b WHERE b.id = j.input_blob)) AS jobs_without_input,
       (SELECT count(*) FROM jobs j WHERE j.result_blob IS NOT NULL AND NOT EXISTS
            (SELECT 1 FROM blobs b WHERE b.id = j.result_blob)) AS dangling_results,
       (SELECT count(*) FROM settlements s WHERE NOT EXISTS
            (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.state IN ('settled', 'mirrored')))
           AS settlements_without_settled_job,
       (SELECT count(*) FROM ledger_entries l WHERE NOT EXISTS
            (SELECT 1 FROM accounts a WHERE a.id = l.account_id)) AS entries_without_account;

DROP TABLE job_results;
