-- ai.infer jobs name their model: the SHA-256 of the safetensors weights and
-- of the JSON graph, as "WEIGHTS:GRAPH" (64 hex digits each).  The files
-- themselves live in the broker's content-addressed store (--store-dir), not
-- in PostgreSQL: models are large, immutable and shared by many jobs, and a
-- worker fetches them in chunks straight from the store.  NULL for job kinds
-- without a model.  Adding a nullable column rewrites nothing, so an old
-- database upgrades in place at once.
ALTER TABLE jobs ADD COLUMN model text CHECK (model ~ '^[0-9a-f]{64}:[0-9a-f]{64}$');
