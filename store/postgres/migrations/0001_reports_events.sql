-- Delivery reports as Infobip sent them, classified. Infobip sends no report
-- id and retries, so retries collapse on the unique key instead of being
-- stored twice; INSERT ... ON CONFLICT DO NOTHING on that key is also what
-- makes two replicas ingesting one report at once store it, and make its
-- event, exactly once.
--
-- The unique key leads with done_at, as in the SQLite engine: Infobip's
-- "2026-03-01T11:00:00.000+0000" sorts by time and reports arrive soon after
-- it, so new entries land on the right-hand pages of the index, which stay
-- in shared buffers, instead of one random page per report.
CREATE TABLE delivery_reports (
    id            bigint      GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME delivery_reports_id_seq) PRIMARY KEY,
    message_id    text        NOT NULL,
    status_id     integer     NOT NULL,
    error_id      integer     NOT NULL,
    done_at       text        NOT NULL,
    connection_id text        NOT NULL,
    profile_id    text        NOT NULL,
    email         text        NOT NULL,
    outcome       smallint    NOT NULL,
    event_name    text        NOT NULL,
    rule          text        NOT NULL,
    receive_time  timestamptz NOT NULL,
    payload       bytea,
    CONSTRAINT delivery_reports_key UNIQUE (done_at, message_id, status_id, error_id)
);

-- Listing by outcome, newest first: "outcome = $1 AND id < $2 ORDER BY id
-- DESC" is one backward range. PostgreSQL index entries do not end in the
-- primary key by themselves, hence id spelt out.
CREATE INDEX delivery_reports_outcome ON delivery_reports (outcome, id);

-- An event is made from one report and takes that report's id as its own,
-- so the 1:1 link costs no index. There is deliberately no foreign key to
-- delivery_reports: both rows are written by one statement of the ingest,
-- and a foreign key would add a trigger per event that locks the report row
-- it has just inserted (FOR KEY SHARE), a second write of that row.
CREATE TABLE profile_events (
    id         bigint      PRIMARY KEY,
    name       text        NOT NULL,
    time       timestamptz NOT NULL,
    profile_id text        NOT NULL,
    email      text        NOT NULL,
    params     jsonb                  -- NULL when empty
);

-- Activity list: one profile's events by time, ties by id; scanned
-- backwards it yields time DESC, id DESC. name last lets a name filter, and
-- segmentation in profile order, run on the index alone. The only index
-- with random inserts (by profile); see profile_events_window.
CREATE INDEX profile_events_activity ON profile_events (profile_id, time, id, name);

-- Segmentation of a window with few events: by name, then time, so that new
-- events append to the end of each name's range.
CREATE INDEX profile_events_window ON profile_events (name, time, profile_id);

CREATE TABLE rejected_payloads (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    receive_time timestamptz NOT NULL,
    content_type text        NOT NULL,
    reason       text        NOT NULL,
    body         bytea
);
