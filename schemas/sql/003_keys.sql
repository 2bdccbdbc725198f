-- CurveZMQ identities: each public key (40-character Z85) belongs to one
-- account with a role.  The broker admits a client or worker only with a key
-- listed here (unless it runs in open-registration or insecure mode); admins
-- bind keys with `quarry admin add-client|add-operator|add-admin KEY ACCOUNT`.
CREATE TABLE curve_keys (
    key         text PRIMARY KEY CHECK (length(key) = 40),
    account_id  bigint NOT NULL REFERENCES accounts (id),
    role        text NOT NULL CHECK (role IN ('client', 'operator', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX curve_keys_account ON curve_keys (account_id);
