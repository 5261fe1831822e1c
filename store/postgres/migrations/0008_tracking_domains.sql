-- Issue 10: tracking reports, sending domains with their events and
-- bounce-rate counts, the from-domain of each send, and events that are not
-- made from a delivery report.
--
-- Events now come from delivery reports, tracking reports, domain events
-- and accepted recipients (message.send, which has no report at all).
-- profile_events never had a foreign key to delivery_reports here (see
-- 0001), so nothing is relaxed; ids stay unique across every source because
-- each new row of tracking_events and domain_events, and each message.send
-- event, draws its id from delivery_reports_id_seq, as delivery reports do.
-- An event made from a report or a domain event takes that row's id: the
-- 1:1 link still costs no index.

-- Tracking reports as Infobip sent them to a send's trackingUrl (opens,
-- clicks, complaints, late bounces, unsubscribes), classified. Each has
-- Infobip's eventId: INSERT ... ON CONFLICT on it is what makes retries,
-- and two replicas given one report at once, store it and make its event
-- once. They are kept apart from delivery_reports, whose key is another:
-- neither kind pays for the other's key index, and the delivery ingest
-- stays as it was.
CREATE TABLE tracking_events (
    id                bigint      PRIMARY KEY DEFAULT nextval('delivery_reports_id_seq'),
    event_id          text        NOT NULL,
    notification_type text        NOT NULL,
    message_id        text        NOT NULL,
    connection_id     text        NOT NULL,
    profile_id        text        NOT NULL,
    email             text        NOT NULL,
    outcome           smallint    NOT NULL,
    event_name        text        NOT NULL,
    rule              text        NOT NULL,
    receive_time      timestamptz NOT NULL,
    payload           bytea,
    CONSTRAINT tracking_events_key UNIQUE (event_id)
);

-- Listing by outcome, newest first, as delivery_reports_outcome.
CREATE INDEX tracking_events_outcome ON tracking_events (outcome, id);

-- One row per sending domain: the domain of every sender account's from
-- address and of every domain event. A few rows, read by primary key (and
-- by every claim of batches, see claimSQL). until_time is NULL when the
-- state does not end by itself.
CREATE TABLE sending_domains (
    domain               text             PRIMARY KEY,
    state                smallint         NOT NULL, -- store.DomainState
    until_time           timestamptz,
    reason               text             NOT NULL,
    reported_bounce_rate double precision NOT NULL,
    reported_threshold   double precision NOT NULL,
    reported_scope       text             NOT NULL,
    update_time          timestamptz      NOT NULL
);

-- Infobip's platform events and ibmail's own actions on a domain. Infobip's
-- are deduplicated by their eventId, the arbiter of the ingest's INSERT ...
-- ON CONFLICT; ibmail's have none ('') and are never duplicates, hence the
-- partial unique index.
CREATE TABLE domain_events (
    id            bigint           PRIMARY KEY DEFAULT nextval('delivery_reports_id_seq'),
    event_id      text             NOT NULL,
    domain        text             NOT NULL,
    type          text             NOT NULL,
    time          timestamptz      NOT NULL,
    receive_time  timestamptz      NOT NULL,
    bounce_rate   double precision NOT NULL,
    threshold     double precision NOT NULL,
    scope         text             NOT NULL,
    connection_id text             NOT NULL,
    payload       bytea
);
CREATE UNIQUE INDEX domain_events_event_id ON domain_events (event_id) WHERE event_id <> '';

-- A domain's events newest first.
CREATE INDEX domain_events_domain ON domain_events (domain, id);

-- How many stored reports counted towards each domain's bounce rate, per
-- five minutes (store.DomainCountBucket) of receive time: what the hourly
-- and daily rates are summed from, without an index on the reports' receive
-- time. Led by the bucket, so that new counts land at the end and a window
-- is one range.
--
-- shard spreads one domain's bucket over rows: every ingest of a domain's
-- reports updates its counts, and a row updated by one transaction stays
-- locked until it commits, so with a single row per bucket the ingests of
-- all replicas would commit one after the other, each waiting for the
-- previous one's WAL flush. Each ingest writes the row of its backend's
-- shard (pg_backend_pid() % 16): a backend runs one transaction at a time,
-- and two backends seldom share a shard. Readers sum the shards.
CREATE TABLE domain_report_counts (
    bucket  timestamptz NOT NULL,
    domain  text        NOT NULL,
    shard   smallint    NOT NULL,
    reports bigint      NOT NULL,
    bounces bigint      NOT NULL,
    PRIMARY KEY (bucket, domain, shard)
);

-- The sending domain of each send (store.AddressDomain of its sender's
-- from address), which holds its batches while the domain is blocked or
-- paused. A constant default adds the column without rewriting the table.
-- Sends stored before get it from their sender account, as AddressDomain
-- computes it: what follows the last '@', trimmed, without a closing '>',
-- lower case. A send whose sender account is gone keeps '', which no domain
-- holds.
ALTER TABLE sends ADD COLUMN from_domain text NOT NULL DEFAULT '';

CREATE TEMP TABLE sender_domains_0008 ON COMMIT DROP AS
SELECT id, lower(btrim(regexp_replace(btrim(substring(from_address FROM '@([^@]*)$'), E' \t\n\r\f\v'), '>$', ''),
                       E' \t\n\r\f\v')) AS domain
FROM senders
WHERE strpos(from_address, '@') > 0;

UPDATE sends s SET from_domain = d.domain
FROM sender_domains_0008 d
WHERE d.id = s.sender_id AND d.domain <> '';

-- Every sender account's domain is a sending domain, active until an event
-- says otherwise.
INSERT INTO sending_domains (domain, state, until_time, reason, reported_bounce_rate, reported_threshold,
                             reported_scope, update_time)
SELECT DISTINCT domain, 1, NULL::timestamptz, '', 0, 0, '', now()
FROM sender_domains_0008 WHERE domain <> '';
