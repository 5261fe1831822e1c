-- Issue 10: tracking reports, sending domains with their events and
-- bounce-rate counts, the from-domain of each send, and events that are not
-- made from a delivery report. Times are unix microseconds, as in 0001.

-- Events now come from delivery reports, tracking reports, domain events
-- and accepted recipients (message.send, which has no report at all), so
-- profile_events.id can no longer reference delivery_reports. SQLite cannot
-- drop a foreign key: the table is rebuilt without it, with the columns and
-- indexes of 0001 (see there for why each index is as it is). Ids stay
-- unique across every source because the engine gives each new row of
-- delivery_reports, tracking_events, domain_events and profile_events the
-- next id above the highest of all four (see nextIDSQL in writer.go), and
-- an event made from a report or a domain event takes that row's id: the
-- 1:1 link still costs no index.
CREATE TABLE profile_events_0008 (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    time       INTEGER NOT NULL, -- unix microseconds
    profile_id TEXT    NOT NULL, -- '' for a domain's event, which no segment lists
    email      TEXT    NOT NULL,
    params     TEXT             -- JSON object, NULL when empty
) STRICT;
INSERT INTO profile_events_0008 (id, name, time, profile_id, email, params)
SELECT id, name, time, profile_id, email, params FROM profile_events ORDER BY id;
DROP TABLE profile_events;
ALTER TABLE profile_events_0008 RENAME TO profile_events;
CREATE INDEX profile_events_activity ON profile_events (profile_id, time, id, name);
CREATE INDEX profile_events_window ON profile_events (name, time, profile_id);

-- Tracking reports as Infobip sent them to a send's trackingUrl (opens,
-- clicks, complaints, late bounces, unsubscribes), classified. Each has
-- Infobip's eventId, on which retries collapse. They are kept apart from
-- delivery_reports, whose key is another: neither kind pays for the
-- other's key index, and the delivery ingest stays as it was. payload is
-- last, as in delivery_reports.
--
-- event_id is random, so its index takes inserts all over its range (as
-- the activity index does); a tracking report has nothing time-ordered its
-- retries would share to lead the key with.
CREATE TABLE tracking_events (
    id                INTEGER PRIMARY KEY,
    event_id          TEXT    NOT NULL UNIQUE,
    notification_type TEXT    NOT NULL,
    message_id        TEXT    NOT NULL,
    connection_id     TEXT    NOT NULL,
    profile_id        TEXT    NOT NULL,
    email             TEXT    NOT NULL,
    outcome           INTEGER NOT NULL,
    event_name        TEXT    NOT NULL,
    rule              TEXT    NOT NULL,
    receive_time      INTEGER NOT NULL, -- unix microseconds
    payload           BLOB
) STRICT;

-- Listing by outcome, newest first, as delivery_reports_outcome.
CREATE INDEX tracking_events_outcome ON tracking_events (outcome);

-- One row per sending domain: the domain of every sender account's from
-- address and of every domain event. A few rows, read by primary key (and
-- by every claim of batches, see claimSQL), hence WITHOUT ROWID.
-- until_time is NULL when the state does not end by itself.
CREATE TABLE sending_domains (
    domain               TEXT    PRIMARY KEY,
    state                INTEGER NOT NULL, -- store.DomainState
    until_time           INTEGER,
    reason               TEXT    NOT NULL,
    reported_bounce_rate REAL    NOT NULL,
    reported_threshold   REAL    NOT NULL,
    reported_scope       TEXT    NOT NULL,
    update_time          INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Infobip's platform events and ibmail's own actions on a domain. Infobip's
-- are deduplicated by their eventId; ibmail's have none ('') and are never
-- duplicates, hence the partial unique index.
CREATE TABLE domain_events (
    id            INTEGER PRIMARY KEY,
    event_id      TEXT    NOT NULL,
    domain        TEXT    NOT NULL,
    type          TEXT    NOT NULL,
    time          INTEGER NOT NULL,
    receive_time  INTEGER NOT NULL,
    bounce_rate   REAL    NOT NULL,
    threshold     REAL    NOT NULL,
    scope         TEXT    NOT NULL,
    connection_id TEXT    NOT NULL,
    payload       BLOB
) STRICT;
CREATE UNIQUE INDEX domain_events_event_id ON domain_events (event_id) WHERE event_id <> '';

-- A domain's events newest first: the rowid ends the index.
CREATE INDEX domain_events_domain ON domain_events (domain);

-- How many stored reports counted towards each domain's bounce rate, per
-- five minutes (store.DomainCountBucket) of receive time: what the hourly
-- and daily rates are summed from, without an index on the reports' receive
-- time. Led by the bucket, so that new counts land at the end and a window
-- is one range. One row per domain and bucket: the writer adds up a
-- transaction's reports first.
CREATE TABLE domain_report_counts (
    bucket  INTEGER NOT NULL, -- start of the bucket, unix microseconds
    domain  TEXT    NOT NULL,
    reports INTEGER NOT NULL,
    bounces INTEGER NOT NULL,
    PRIMARY KEY (bucket, domain)
) STRICT, WITHOUT ROWID;

-- The sending domain of each send (store.AddressDomain of its sender's
-- from address), which holds its batches while the domain is blocked or
-- paused. Sends stored before get it from their sender account, as
-- AddressDomain computes it: what follows the last '@', trimmed, without a
-- closing '>', lower case. A send whose sender account is gone keeps '',
-- which no domain holds.
ALTER TABLE sends ADD COLUMN from_domain TEXT NOT NULL DEFAULT '';

CREATE TEMP TABLE sender_domains_0008 AS
WITH after_at AS (
    SELECT id, trim(substr(from_address, length(rtrim(from_address, replace(from_address, '@', ''))) + 1),
                    char(32, 9, 10, 11, 12, 13)) AS d
    FROM senders WHERE instr(from_address, '@') > 0
)
SELECT id, lower(trim(CASE WHEN d LIKE '%>' THEN substr(d, 1, length(d) - 1) ELSE d END,
                      char(32, 9, 10, 11, 12, 13))) AS domain
FROM after_at;

UPDATE sends SET from_domain = s.domain
FROM sender_domains_0008 s
WHERE s.id = sends.sender_id AND s.domain <> '';

-- Every sender account's domain is a sending domain, active until an event
-- says otherwise.
INSERT INTO sending_domains (domain, state, until_time, reason, reported_bounce_rate, reported_threshold,
                             reported_scope, update_time)
SELECT DISTINCT domain, 1, NULL, '', 0, 0, '', CAST(unixepoch('subsec') * 1000000 AS INTEGER)
FROM sender_domains_0008 WHERE domain <> '';

DROP TABLE sender_domains_0008;
