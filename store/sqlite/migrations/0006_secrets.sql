-- The check value of the encryption key the stored secrets are sealed
-- under (an HMAC of a fixed label under the key, never the key), so that a
-- server started with another key refuses to start instead of sealing with
-- it. One row; check_value is NULL until a server adopts its key.
CREATE TABLE encryption_key_check (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    check_value BLOB,
    update_time INTEGER NOT NULL
) STRICT;
INSERT INTO encryption_key_check (id, check_value, update_time) VALUES (1, NULL, 0);

-- Secrets shared by every replica of the store, such as the server-wide
-- webhook secret, sealed; the previous value is kept while a rotation's
-- grace lasts. Times are unix microseconds.
CREATE TABLE server_secrets (
    name                 TEXT    PRIMARY KEY,
    sealed               BLOB    NOT NULL,
    previous_sealed      BLOB,
    previous_expire_time INTEGER,
    update_time          INTEGER NOT NULL
) STRICT;

-- A connection's webhook secret before its last rotation, accepted until
-- the expiry; NULL when there is none. The unique index is how the webhook
-- finds it.
ALTER TABLE connections ADD COLUMN previous_webhook_secret_digest BLOB;
ALTER TABLE connections ADD COLUMN previous_webhook_secret_expire_time INTEGER;
CREATE UNIQUE INDEX connections_previous_webhook_secret_digest ON connections (previous_webhook_secret_digest);
