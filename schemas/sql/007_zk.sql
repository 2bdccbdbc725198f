-- zk.groth16 jobs name their proving key by one SHA-256 (the .zkey in the
-- broker's artifact store) where ai.infer names two ("WEIGHTS:GRAPH"): the
-- model column now takes either form.  The check is replaced, not edited:
-- no row changes, so this is instant on any table size.
ALTER TABLE jobs DROP CONSTRAINT jobs_model_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_model_check
    CHECK (model ~ '^[0-9a-f]{64}(:[0-9a-f]{64})?$');
