-- The event log: every event gets a position, in the order events became
-- visible, which WatchEvents and the NATS publisher follow (see
-- store/events.go). Ingest writes each new event's id to event_outbox in
-- the transaction that stores the event; the sequencer moves outbox entries
-- to event_log. Times are unix microseconds, as in 0001.

-- The rowid is the event id: ids only grow, so inserts append to the
-- table's last page and the sequencer reads them in order.
CREATE TABLE event_outbox (
    event_id INTEGER PRIMARY KEY
) STRICT;

-- name is copied from the event so that a watcher filtering by name reads
-- its own range of event_log_name instead of every position.
CREATE TABLE event_log (
    position INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL,
    name     TEXT    NOT NULL
) STRICT;

CREATE INDEX event_log_name ON event_log (name, position);

-- One row per lease (the sequencer's, each publisher's).
CREATE TABLE event_leases (
    name   TEXT    PRIMARY KEY,
    owner  TEXT    NOT NULL,
    expiry INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- How far each publisher has got.
CREATE TABLE event_cursors (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Events stored before this migration take the first positions, in id
-- order, which in this engine is the order they were committed.
INSERT INTO event_log (position, event_id, name)
SELECT ROW_NUMBER() OVER (ORDER BY id), id, name FROM profile_events;
