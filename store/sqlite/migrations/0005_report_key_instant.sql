-- Report keys on the instant (issue 9, defect 10): done_at held doneAt as
-- Infobip wrote it, so one report written "...10:00:00.256+0000", "...Z" and
-- "...12:00:00.256+0200" made three rows and three events. From now on the
-- server and the engines write store.DoneAtLayout, the instant in UTC with
-- nine fraction digits ("2024-05-01T10:00:00.256000000Z"); this rewrites the
-- rows already stored into that form, as store.NormalizeDoneAt would.
--
-- It cannot fail on a row and loses nothing:
--   - text this parser does not read (not one of the forms the server ever
--     accepted, or an instant outside the years 0001-9999 in UTC) keeps its
--     text: it cannot equal any key written from now on, so it blocks none;
--   - rows that become one key (the duplicates the old key let in) keep
--     their reports and events, which were made and may have been
--     published: the row already holding the canonical text, else the
--     first stored (lowest id), takes the canonical key and later retries
--     are its duplicates; the others keep their old text, which no new key
--     can equal.
-- Only rank-1 rows change, and no other row can hold their new text (such
-- a row would be in their group), so the unique key holds at every row.
CREATE TEMP TABLE report_keys_0005 AS
WITH parts AS (
    SELECT id, message_id, status_id, error_id, done_at,
           substr(done_at, 1, 19) AS base, substr(done_at, 20) AS rest
    FROM delivery_reports
    WHERE done_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]?*'
), zoned AS (
    SELECT *, CASE
        WHEN rest GLOB '*Z' THEN 'Z'
        WHEN substr(rest, -6) GLOB '[+-][0-9][0-9]:[0-9][0-9]' THEN substr(rest, -6)
        WHEN substr(rest, -5) GLOB '[+-][0-9][0-9][0-9][0-9]' THEN substr(rest, -5)
    END AS zone
    FROM parts
), split AS (
    SELECT *, substr(rest, 1, length(rest) - length(zone)) AS frac
    FROM zoned WHERE zone IS NOT NULL
), valid AS (
    SELECT *, CASE WHEN zone = 'Z' THEN 0 ELSE
        (CASE substr(zone, 1, 1) WHEN '-' THEN -1 ELSE 1 END)
        * (CAST(substr(zone, 2, 2) AS INTEGER) * 60 + CAST(substr(zone, -2) AS INTEGER)) END AS offset_minutes
    FROM split
    WHERE frac = ''
       OR (frac GLOB '.[0-9]*' AND length(frac) BETWEEN 2 AND 10 AND substr(frac, 2) NOT GLOB '*[^0-9]*')
), canon AS (
    SELECT id, message_id, status_id, error_id, done_at,
           strftime('%Y-%m-%dT%H:%M:%S', base, printf('%+d minutes', -offset_minutes))
               || '.' || substr(substr(frac, 2) || '000000000', 1, 9) || 'Z' AS canonical
    FROM valid
)
SELECT id, canonical,
       row_number() OVER (PARTITION BY canonical, message_id, status_id, error_id
                          ORDER BY done_at = canonical DESC, id) AS rank
FROM canon
WHERE substr(canonical, 1, 4) <> '0000'
  AND canonical GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]Z';

UPDATE delivery_reports SET done_at = k.canonical
FROM report_keys_0005 k
WHERE delivery_reports.id = k.id AND k.rank = 1 AND delivery_reports.done_at <> k.canonical;

DROP TABLE report_keys_0005;
