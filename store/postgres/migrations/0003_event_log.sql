-- The event log: every event gets a position, in the order events became
-- visible, which WatchEvents and the NATS publisher follow (see
-- store/events.go). Ids cannot be positions here: they are drawn from a
-- sequence before commit, so replicas commit them out of order. Ingest
-- writes each new event's id to event_outbox in the statement that stores
-- the event; the sequencer, one replica at a time under its lease, moves
-- the committed outbox entries to event_log with the next positions.

CREATE TABLE event_outbox (
    event_id bigint PRIMARY KEY
);

-- name is copied from the event so that a watcher filtering by name reads
-- its own range of event_log_name instead of every position.
CREATE TABLE event_log (
    position bigint PRIMARY KEY,
    event_id bigint NOT NULL,
    name     text   NOT NULL
);

CREATE INDEX event_log_name ON event_log (name, position);

-- One row per lease (the sequencer's, each publisher's). The sequencer's
-- transaction locks its lease row, so that sequencers, even one whose lease
-- was taken over while it worked, never interleave.
CREATE TABLE event_leases (
    name   text        PRIMARY KEY,
    owner  text        NOT NULL,
    expiry timestamptz NOT NULL
);

-- How far each publisher has got.
CREATE TABLE event_cursors (
    name     text   PRIMARY KEY,
    position bigint NOT NULL
);

-- Events committed before this migration take the first positions, in id
-- order. A replica still running an older binary writes no outbox entries:
-- events it stores after this point get no position, so upgrade every
-- replica before relying on the log.
INSERT INTO event_log (position, event_id, name)
SELECT row_number() OVER (ORDER BY id), id, name FROM profile_events;
