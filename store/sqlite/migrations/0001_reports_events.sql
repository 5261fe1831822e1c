-- Delivery reports as Infobip sent them, classified. The key columns are
-- Infobip's own (it sends no report id and retries), so retries collapse on
-- the unique key instead of being stored twice. payload is the last column
-- because SQLite reads a row's columns in order and listings by key or
-- outcome should not pay for it.
--
-- The unique key leads with done_at on purpose: Infobip writes it as
-- "2026-03-01T11:00:00.000+0000", which sorts by time, and reports arrive
-- soon after it, so new entries land in the few most recent pages of the
-- index. Led by the random message id, every insert would dirty its own
-- page, and each commit would rewrite one 4 KiB page per report.
CREATE TABLE delivery_reports (
    id            INTEGER PRIMARY KEY,
    message_id    TEXT    NOT NULL,
    status_id     INTEGER NOT NULL,
    error_id      INTEGER NOT NULL,
    done_at       TEXT    NOT NULL,
    connection_id TEXT    NOT NULL,
    profile_id    TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    outcome       INTEGER NOT NULL,
    event_name    TEXT    NOT NULL,
    rule          TEXT    NOT NULL,
    receive_time  INTEGER NOT NULL, -- unix microseconds
    payload       BLOB,
    UNIQUE (done_at, message_id, status_id, error_id)
) STRICT;

-- Listing by outcome, newest first: the rowid is the index's implicit last
-- column, so "outcome = ? AND id < ? ORDER BY id DESC" is one range.
CREATE INDEX delivery_reports_outcome ON delivery_reports (outcome);

-- An event is made from one report and takes that report's id as its own:
-- the 1:1 link then costs no index, which matters because every ingested
-- event pays for each index it has. A later source of events that is not a
-- report gets its own table, or a migration that relaxes this.
CREATE TABLE profile_events (
    id         INTEGER PRIMARY KEY REFERENCES delivery_reports (id),
    name       TEXT    NOT NULL,
    time       INTEGER NOT NULL, -- unix microseconds
    profile_id TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    params     TEXT             -- JSON object, NULL when empty
) STRICT;

-- Activity list: one profile's events by time, ties by id. Ascending on
-- purpose: scanned backwards it yields time DESC, id DESC, whereas a DESC
-- column would pair time DESC with id ASC and force a sort. name makes it
-- covering for a name filter and for segmentation in profile order. It is
-- the one index with random inserts (by profile), hence the only one of its
-- kind: see profile_events_window.
CREATE INDEX profile_events_activity ON profile_events (profile_id, time, id, name);

-- Segmentation of a window with few events: by name, then time, so that
-- new events append to the end of each name's range instead of landing all
-- over the index (see SearchProfiles for when it is used).
CREATE INDEX profile_events_window ON profile_events (name, time, profile_id);

CREATE TABLE rejected_payloads (
    id           INTEGER PRIMARY KEY,
    receive_time INTEGER NOT NULL, -- unix microseconds
    content_type TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    body         BLOB
) STRICT;
