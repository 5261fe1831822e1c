-- Sending: connections to Infobip accounts, sender accounts, sends with their
-- recipients and the batches that dispatch them, and the addresses later
-- sends skip. A NULL time is "not yet" (done_time, lease_expiry,
-- last_event_time).

-- webhook_secret_digest is NULL when a connection has none, so that UNIQUE,
-- under which NULLs are distinct, does not make two such connections
-- collide. The unique index is also how the webhook finds a connection.
CREATE TABLE connections (
    id                    text        PRIMARY KEY,
    display_name          text        NOT NULL,
    api_key_ciphertext    bytea,
    api_key_hint          text        NOT NULL,
    base_url              text        NOT NULL,
    application_id        text        NOT NULL,
    entity_id             text        NOT NULL,
    webhook_secret_digest bytea       UNIQUE,
    rate_limit            integer     NOT NULL,
    create_time           timestamptz NOT NULL,
    update_time           timestamptz NOT NULL
);

-- The foreign key is what answers ErrInUse and ErrNotFound: a DELETE of a
-- connection that a replica is giving a sender at that moment cannot slip
-- between a check and the delete, as it could with a check first.
CREATE TABLE senders (
    id            text        PRIMARY KEY,
    connection_id text        NOT NULL REFERENCES connections (id),
    from_address  text        NOT NULL,
    from_name     text        NOT NULL,
    reply_to      text        NOT NULL,
    create_time   timestamptz NOT NULL
);

-- Senders of one connection in id order; also what the foreign key check
-- of a connection's deletion looks up.
CREATE INDEX senders_connection ON senders (connection_id, id);

-- A send keeps its sender and connection ids as history, without foreign
-- keys: deleting a sender account must not need its sends gone.
CREATE TABLE sends (
    id              text        PRIMARY KEY,
    sender_id       text        NOT NULL,
    connection_id   text        NOT NULL,
    campaign_id     text        NOT NULL,
    idempotency_key text        NOT NULL, -- '' when none
    subject         text        NOT NULL,
    recipient_count integer     NOT NULL,
    create_time     timestamptz NOT NULL,
    done_time       timestamptz,
    content         bytea
);

-- The arbiter of CreateSend's INSERT ... ON CONFLICT: of two replicas
-- creating a send with one key at once, the second waits for the first to
-- commit and then finds its send.
CREATE UNIQUE INDEX sends_idempotency ON sends (idempotency_key) WHERE idempotency_key <> '';

-- ListSends, newest first with ties by id: scanned backwards.
CREATE INDEX sends_created ON sends (create_time, id);

-- Up to 100,000 recipients per send. Every secondary index ends in seq so
-- that each serves its listing in request order without a sort.
--
-- No foreign key to sends, unlike send_batches: PostgreSQL checks one with a
-- trigger per row, which locks the send's row again for each recipient, and
-- made the COPY of a 100,000-recipient send take 1.7 times as long
-- (BenchmarkCreateSend100k). Recipients are only ever written by the
-- transaction that inserts their send, and sends are never deleted.
CREATE TABLE send_recipients (
    send_id         text        NOT NULL,
    seq             integer     NOT NULL,
    profile_id      text        NOT NULL,
    email           text        NOT NULL,
    state           smallint    NOT NULL,
    batch_seq       integer     NOT NULL, -- -1: in no batch
    bulk_id         text        NOT NULL,
    message_id      text        NOT NULL DEFAULT '',
    reason          text        NOT NULL DEFAULT '',
    last_event      text        NOT NULL DEFAULT '',
    last_event_time timestamptz,
    placeholders    jsonb,                -- NULL when empty
    PRIMARY KEY (send_id, seq)
);

-- Webhook lookups by Infobip's message id. Partial: recipients get a message
-- id only once Infobip accepted them, and the others need no entry.
CREATE INDEX send_recipients_message ON send_recipients (message_id) WHERE message_id <> '';

CREATE INDEX send_recipients_email ON send_recipients (send_id, email, seq);

-- Counts by state, "is anything still pending", and listings by state.
CREATE INDEX send_recipients_state ON send_recipients (send_id, state, seq);

-- A claimed batch's recipients. Without state, so that completing a batch
-- does not move its recipients' entries here.
CREATE INDEX send_recipients_batch ON send_recipients (send_id, batch_seq, seq);

CREATE TABLE send_batches (
    send_id           text        NOT NULL REFERENCES sends (id),
    seq               integer     NOT NULL,
    bulk_id           text        NOT NULL,
    state             smallint    NOT NULL,
    attempts          integer     NOT NULL,
    next_attempt_time timestamptz NOT NULL,
    lease_owner       text        NOT NULL DEFAULT '',
    lease_expiry      timestamptz,
    last_error        text        NOT NULL DEFAULT '',
    PRIMARY KEY (send_id, seq)
);

CREATE UNIQUE INDEX send_batches_bulk ON send_batches (bulk_id) WHERE bulk_id <> '';

-- Claiming: two partial indexes, one per way a batch becomes due, so that
-- done batches, which pile up forever, are in neither and a claim reads only
-- the batches it may take. 1 = pending, 3 = ambiguous, 2 = in flight.
CREATE INDEX send_batches_due ON send_batches (next_attempt_time, send_id, seq) WHERE state IN (1, 3);
CREATE INDEX send_batches_leased ON send_batches (lease_expiry, send_id, seq) WHERE state = 2;

-- One row per suppressed address, looked up by address only.
CREATE TABLE suppressions (
    email       text        PRIMARY KEY,
    profile_id  text        NOT NULL,
    event_name  text        NOT NULL,
    event_id    bigint      NOT NULL,
    reason      text        NOT NULL,
    create_time timestamptz NOT NULL
);
