-- The report keys' text columns compare bytewise (collation "C"), whatever
-- the database's collation. Nothing reads them in order, only for equality,
-- which is byte equality under any deterministic collation, so no read
-- changes; but every ingest sorts its reports by key and inserts them into
-- the key index, and under a libc collation (C.UTF-8, en_US.UTF-8) each
-- comparison goes through strcoll. Bytewise is also Go's string order,
-- which the COPY path of the ingest sorts by (see copyingest.go): the two
-- paths take the keys' locks in one order.
--
-- A collation change rewrites no table, only the indexes on the columns
-- (here the two unique keys), and keeps every row.
ALTER TABLE delivery_reports
    ALTER COLUMN done_at TYPE text COLLATE "C",
    ALTER COLUMN message_id TYPE text COLLATE "C";

ALTER TABLE tracking_events
    ALTER COLUMN event_id TYPE text COLLATE "C";
