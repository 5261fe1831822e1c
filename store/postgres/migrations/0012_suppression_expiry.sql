-- Issue 12: suppressions may expire, and say how they came to be.
-- expire_time is when the suppression stops blocking sends (NULL: never),
-- set from the lifetime of its cause in the rules in force when it was
-- made; an expired suppression is kept (listed on request) and replaced
-- by the next cause. origin: 1 an event, 2 the soft-bounce limit, 3 an
-- import. cause_event_ids lists the soft bounces that reached the limit.
ALTER TABLE suppressions ADD COLUMN expire_time timestamptz;
ALTER TABLE suppressions ADD COLUMN origin smallint NOT NULL DEFAULT 1;
ALTER TABLE suppressions ADD COLUMN cause_event_ids bigint[] NOT NULL DEFAULT '{}';
