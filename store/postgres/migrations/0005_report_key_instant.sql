-- Report keys on the instant (issue 9, defect 10): done_at held doneAt as
-- Infobip wrote it, so one report written "...10:00:00.256+0000", "...Z" and
-- "...12:00:00.256+0200" made three rows and three events. From now on the
-- server and the engines write store.DoneAtLayout, the instant in UTC with
-- nine fraction digits ("2024-05-01T10:00:00.256000000Z"); this rewrites the
-- rows already stored into that form, as store.NormalizeDoneAt would.
--
-- It cannot fail on a row and loses nothing:
--   - text this parser does not read (not one of the forms the server ever
--     accepted, or an instant PostgreSQL's timestamp or four-digit years do
--     not hold, such as year 0000) keeps its text: it cannot equal any key
--     written from now on, so it blocks none;
--   - rows that become one key (the duplicates the old key let in) keep
--     their reports and events, which were made and may have been
--     published: the row already holding the canonical text, else the
--     first stored (lowest id), takes the canonical key and later retries
--     are its duplicates; the others keep their old text, which no new key
--     can equal.
-- Only rank-1 rows change, and no other row can hold their new text (such
-- a row would be in their group), so the unique key holds at every row.
--
-- The parser is a temporary function: any text it cannot read, including
-- one that makes a cast fail, yields NULL instead of failing the migration.
CREATE FUNCTION pg_temp.ibmail_done_at_key_0005(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m      text[];
    off    integer;
    utc    timestamp;
    result text;
BEGIN
    m := regexp_match(t, '^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|([+-])(\d{2}):?(\d{2}))$');
    IF m IS NULL THEN
        RETURN NULL;
    END IF;
    off := 0;
    IF m[4] <> 'Z' THEN
        off := (CASE m[5] WHEN '-' THEN -1 ELSE 1 END) * (m[6]::integer * 60 + m[7]::integer);
    END IF;
    utc := (m[1] || ' ' || m[2])::timestamp - make_interval(mins => off);
    result := to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS') || '.' || rpad(coalesce(m[3], ''), 9, '0') || 'Z';
    IF result !~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$' THEN
        RETURN NULL;
    END IF;
    RETURN result;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

WITH canon AS (
    SELECT id, message_id, status_id, error_id, done_at,
           pg_temp.ibmail_done_at_key_0005(done_at) AS canonical
    FROM delivery_reports
    WHERE done_at <> ''
), ranked AS (
    SELECT id, canonical,
           row_number() OVER (PARTITION BY canonical, message_id, status_id, error_id
                              ORDER BY done_at = canonical DESC, id) AS rank
    FROM canon
    WHERE canonical IS NOT NULL
)
UPDATE delivery_reports d SET done_at = r.canonical
FROM ranked r
WHERE d.id = r.id AND r.rank = 1 AND d.done_at <> r.canonical;

DROP FUNCTION pg_temp.ibmail_done_at_key_0005(text);
