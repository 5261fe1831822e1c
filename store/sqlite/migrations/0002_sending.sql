-- Sending: connections to Infobip accounts, sender accounts, sends with
-- their recipients and the batches that dispatch them, and the addresses
-- later sends skip. Times are unix microseconds, as in 0001; a NULL time is
-- "not yet" (done_time, lease_expiry, last_event_time).

-- webhook_secret_digest is NULL when a connection has none, so that UNIQUE,
-- which ignores NULLs, does not make two such connections collide. The
-- unique index is also how the webhook finds a connection by its digest.
CREATE TABLE connections (
    id                    TEXT    PRIMARY KEY,
    display_name          TEXT    NOT NULL,
    api_key_ciphertext    BLOB,
    api_key_hint          TEXT    NOT NULL,
    base_url              TEXT    NOT NULL,
    application_id        TEXT    NOT NULL,
    entity_id             TEXT    NOT NULL,
    webhook_secret_digest BLOB    UNIQUE,
    rate_limit            INTEGER NOT NULL,
    create_time           INTEGER NOT NULL,
    update_time           INTEGER NOT NULL
) STRICT;

-- The foreign key makes a connection that sender accounts use impossible to
-- delete even if the engine's own ErrInUse check were bypassed.
CREATE TABLE senders (
    id            TEXT    PRIMARY KEY,
    connection_id TEXT    NOT NULL REFERENCES connections (id),
    from_address  TEXT    NOT NULL,
    from_name     TEXT    NOT NULL,
    reply_to      TEXT    NOT NULL,
    create_time   INTEGER NOT NULL
) STRICT;

-- Senders of one connection in id order; also what the foreign key check
-- of a connection's deletion looks up.
CREATE INDEX senders_connection ON senders (connection_id, id);

-- A send keeps its sender and connection ids as history, without foreign
-- keys: deleting a sender account must not need its sends gone. content is
-- last: it may be large and listings should not pay for it.
CREATE TABLE sends (
    id              TEXT    PRIMARY KEY,
    sender_id       TEXT    NOT NULL,
    connection_id   TEXT    NOT NULL,
    campaign_id     TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL, -- '' when none
    subject         TEXT    NOT NULL,
    recipient_count INTEGER NOT NULL,
    create_time     INTEGER NOT NULL,
    done_time       INTEGER,
    content         BLOB
) STRICT;

CREATE UNIQUE INDEX sends_idempotency ON sends (idempotency_key) WHERE idempotency_key <> '';

-- ListSends, newest first with ties by id: scanned backwards.
CREATE INDEX sends_created ON sends (create_time, id);

-- Recipients are clustered by send and position (WITHOUT ROWID): a send's
-- recipients, and a batch's, are neighbours on disk, and the secondary
-- indexes end in (send_id, seq) on their own, so each serves its listing in
-- request order without a sort. Up to 100,000 rows per send.
CREATE TABLE send_recipients (
    send_id         TEXT    NOT NULL REFERENCES sends (id),
    seq             INTEGER NOT NULL,
    profile_id      TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    state           INTEGER NOT NULL,
    batch_seq       INTEGER NOT NULL, -- -1: in no batch
    bulk_id         TEXT    NOT NULL,
    message_id      TEXT    NOT NULL DEFAULT '',
    reason          TEXT    NOT NULL DEFAULT '',
    last_event      TEXT    NOT NULL DEFAULT '',
    last_event_time INTEGER,
    placeholders    TEXT,             -- JSON object, NULL when empty
    PRIMARY KEY (send_id, seq)
) STRICT, WITHOUT ROWID;

-- Webhook lookups by Infobip's message id. Partial: recipients get a message
-- id only once Infobip accepted them, and the others need no entry.
CREATE INDEX send_recipients_message ON send_recipients (message_id) WHERE message_id <> '';

CREATE INDEX send_recipients_email ON send_recipients (send_id, email);

-- Counts by state, "is anything still pending", and listings by state.
CREATE INDEX send_recipients_state ON send_recipients (send_id, state);

-- A claimed batch's recipients. Without state, so that completing a batch
-- does not move its recipients' entries here.
CREATE INDEX send_recipients_batch ON send_recipients (send_id, batch_seq);

CREATE TABLE send_batches (
    send_id           TEXT    NOT NULL REFERENCES sends (id),
    seq               INTEGER NOT NULL,
    bulk_id           TEXT    NOT NULL,
    state             INTEGER NOT NULL,
    attempts          INTEGER NOT NULL,
    next_attempt_time INTEGER NOT NULL,
    lease_owner       TEXT    NOT NULL DEFAULT '',
    lease_expiry      INTEGER,
    last_error        TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (send_id, seq)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX send_batches_bulk ON send_batches (bulk_id) WHERE bulk_id <> '';

-- Claiming: two partial indexes, one per way a batch becomes due, so that
-- done batches, which pile up forever, are in neither and a claim reads
-- only the batches it may take. 1 = pending, 3 = ambiguous, 2 = in flight.
CREATE INDEX send_batches_due ON send_batches (next_attempt_time) WHERE state IN (1, 3);
CREATE INDEX send_batches_leased ON send_batches (lease_expiry) WHERE state = 2;

-- One row per suppressed address, small and looked up by address only.
CREATE TABLE suppressions (
    email       TEXT    PRIMARY KEY,
    profile_id  TEXT    NOT NULL,
    event_name  TEXT    NOT NULL,
    event_id    INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    create_time INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
