-- The check value of the encryption key the stored secrets are sealed
-- under (an HMAC of a fixed label under the key, never the key), so that a
-- server started with another key refuses to start instead of sealing with
-- it. One row, locked by a rotation and by every guarded write of a sealed
-- value; check_value is NULL until a server adopts its key.
CREATE TABLE encryption_key_check (
    id          integer     PRIMARY KEY CHECK (id = 1),
    check_value bytea,
    update_time timestamptz NOT NULL DEFAULT now()
);
INSERT INTO encryption_key_check (id) VALUES (1);

-- Secrets shared by every replica of the store, such as the server-wide
-- webhook secret, sealed; the previous value is kept while a rotation's
-- grace lasts.
CREATE TABLE server_secrets (
    name                 text        PRIMARY KEY,
    sealed               bytea       NOT NULL,
    previous_sealed      bytea,
    previous_expire_time timestamptz,
    update_time          timestamptz NOT NULL
);

-- A connection's webhook secret before its last rotation, accepted until
-- the expiry; NULL when there is none. The unique index is how the webhook
-- finds it.
ALTER TABLE connections ADD COLUMN previous_webhook_secret_digest bytea UNIQUE;
ALTER TABLE connections ADD COLUMN previous_webhook_secret_expire_time timestamptz;
