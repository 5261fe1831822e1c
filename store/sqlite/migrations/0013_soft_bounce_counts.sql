-- Issue 12: the soft-bounce limit. One row per address with soft bounces
-- counting towards the limit: those within the policy's window since the
-- address's last delivery, at most the limit's number, oldest first. A
-- delivery deletes the row, and so does reaching the limit (the address
-- is then suppressed, naming these events); a bounce older than the
-- window is dropped when the address is next counted. An address that
-- never soft-bounces has no row, so a delivery costs a primary-key lookup.
CREATE TABLE soft_bounce_counts (
    email        TEXT PRIMARY KEY, -- lower-cased, as suppressions.email
    event_ids    TEXT NOT NULL,    -- the newsletter.softbounce events' ids, space-separated
    bounce_times TEXT NOT NULL     -- when each was received, unix microseconds, space-separated
) STRICT, WITHOUT ROWID;
