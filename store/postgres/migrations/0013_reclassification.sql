-- Issue 12: reclassification of stored reports under the rules in force,
-- run as long-running operations.

-- One row per long-running operation. spec and progress are the server's
-- encodings of what the operation does and how far it has got (the
-- cursor, the counts, the sample of changes), which the store never reads:
-- progress is written in the transaction of the step it describes, so a
-- restarted job goes on exactly after the last step it committed. The
-- replica working on an operation holds the lease "operation/{id}" (see
-- event_leases), and each step locks that lease row, so two replicas never
-- interleave steps. request_id is the caller's AIP-155 id; '' when none
-- was given, hence the partial unique index; request_digest fingerprints the
-- request, so that a retry is told from another request reusing the id.
CREATE TABLE operations (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL,
    request_id       text        NOT NULL,
    request_digest   bytea       NOT NULL,
    spec             bytea       NOT NULL,
    progress         bytea       NOT NULL,
    done             boolean     NOT NULL DEFAULT false,
    error_code       integer     NOT NULL DEFAULT 0,
    error_message    text        NOT NULL DEFAULT '',
    cancel_requested boolean     NOT NULL DEFAULT false,
    created_by       text        NOT NULL,
    create_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL
);
CREATE UNIQUE INDEX operations_request_id ON operations (request_id) WHERE request_id <> '';
-- Workers look for unfinished operations on every poll.
CREATE INDEX operations_unfinished ON operations (id) WHERE NOT done;

-- An event a reclassification found no longer applies. The event stays in
-- profile_events; this row takes it out of activity lists and segments
-- (unless asked for) and, through its own id, drawn from
-- delivery_reports_id_seq as every event's and written to event_outbox,
-- gives the retraction a position in the event log of its own.
-- event_rules_version is the version that had made the event, kept because
-- the report's row moves on to the new one.
CREATE TABLE event_retractions (
    id                  bigint      PRIMARY KEY,
    event_id            bigint      NOT NULL UNIQUE,
    retract_time        timestamptz NOT NULL,
    operation           text        NOT NULL,
    rules_version       bigint      NOT NULL,
    event_rules_version bigint      NOT NULL,
    replaced_by         bigint      NOT NULL DEFAULT 0
);

-- Events a reclassification made. Such an event cannot take its report's
-- id, which the event it replaced keeps, so the link is written here.
CREATE TABLE reclassified_events (
    event_id      bigint PRIMARY KEY,
    report_id     bigint NOT NULL,
    rules_version bigint NOT NULL
);

-- The report's current event when a reclassification gave it a new one
-- (0: the event with the report's own id, when its outcome is an event).
-- Constant defaults: no table rewrite.
ALTER TABLE delivery_reports ADD COLUMN current_event_id bigint NOT NULL DEFAULT 0;
ALTER TABLE tracking_events ADD COLUMN current_event_id bigint NOT NULL DEFAULT 0;

-- Whether a log entry retracts its event rather than adds it.
ALTER TABLE event_log ADD COLUMN retraction boolean NOT NULL DEFAULT false;
