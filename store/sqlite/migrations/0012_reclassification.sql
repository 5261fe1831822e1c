-- Issue 12: reclassification of stored reports under the rules in force,
-- run as long-running operations. Times are unix microseconds, as in 0001.

-- One row per long-running operation. spec and progress are the server's
-- encodings of what the operation does and how far it has got (the
-- cursor, the counts, the sample of changes), which the store never reads:
-- progress is written in the transaction of the step it describes, so a
-- restarted job goes on exactly after the last step it committed. The
-- replica working on an operation holds the lease "operation/{id}" (see
-- event_leases). request_id is the caller's AIP-155 id; '' when none was
-- given, hence the partial unique index; request_digest fingerprints the
-- request, so that a retry is told from another request reusing the id.
CREATE TABLE operations (
    id               INTEGER PRIMARY KEY,
    kind             TEXT    NOT NULL,
    request_id       TEXT    NOT NULL,
    request_digest   BLOB    NOT NULL,
    spec             BLOB    NOT NULL,
    progress         BLOB    NOT NULL,
    done             INTEGER NOT NULL DEFAULT 0,
    error_code       INTEGER NOT NULL DEFAULT 0,
    error_message    TEXT    NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_by       TEXT    NOT NULL,
    create_time      INTEGER NOT NULL,
    update_time      INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX operations_request_id ON operations (request_id) WHERE request_id <> '';
-- Workers look for unfinished operations on every poll.
CREATE INDEX operations_unfinished ON operations (id) WHERE done = 0;

-- An event a reclassification found no longer applies. The event stays in
-- profile_events; this row takes it out of activity lists and segments
-- (unless asked for) and, through its own id, which is drawn from the ids
-- every event shares (see nextIDSQL) and written to event_outbox, gives
-- the retraction a position in the event log of its own. event_rules_version
-- is the version that had made the event, kept because the report's row
-- moves on to the new one.
CREATE TABLE event_retractions (
    id                  INTEGER PRIMARY KEY,
    event_id            INTEGER NOT NULL UNIQUE,
    retract_time        INTEGER NOT NULL,
    operation           TEXT    NOT NULL,
    rules_version       INTEGER NOT NULL,
    event_rules_version INTEGER NOT NULL,
    replaced_by         INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Events a reclassification made. Such an event cannot take its report's
-- id, which the event it replaced keeps, so the link is written here.
CREATE TABLE reclassified_events (
    event_id      INTEGER PRIMARY KEY,
    report_id     INTEGER NOT NULL,
    rules_version INTEGER NOT NULL
) STRICT;

-- The report's current event when a reclassification gave it a new one
-- (0: the event with the report's own id, when its outcome is an event).
ALTER TABLE delivery_reports ADD COLUMN current_event_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tracking_events ADD COLUMN current_event_id INTEGER NOT NULL DEFAULT 0;

-- Whether a log entry retracts its event rather than adds it.
ALTER TABLE event_log ADD COLUMN retraction INTEGER NOT NULL DEFAULT 0;
