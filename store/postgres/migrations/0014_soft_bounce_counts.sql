-- Issue 12: the soft-bounce limit. One row per address with soft bounces
-- counting towards the limit: those within the policy's window since the
-- address's last delivery, at most the limit's number, oldest first. A
-- delivery deletes the row, and so does reaching the limit (the address
-- is then suppressed, naming these events); a bounce older than the
-- window is dropped when the address is next counted. An address that
-- never soft-bounces has no row, so a delivery costs a primary-key lookup.
-- The "C" collation makes the key's order Go's byte order, in which every
-- writer locks the rows (as migration 0009 does for report keys).
CREATE TABLE soft_bounce_counts (
    email        text COLLATE "C" PRIMARY KEY, -- lower-cased, as suppressions.email
    event_ids    bigint[]      NOT NULL,      -- the newsletter.softbounce events' ids
    bounce_times timestamptz[] NOT NULL       -- when each was received, one per id
);
