-- Issue 12: the mapping rules at run time. Every version is kept, numbered
-- in the order stored; the newest is in force on every replica. rules is
-- the server's encoding of the rule set (JSON of classifier.RuleSet),
-- which the store never reads.
CREATE TABLE rule_versions (
    version       INTEGER PRIMARY KEY,
    rules         BLOB    NOT NULL,
    create_time   INTEGER NOT NULL, -- unix microseconds
    created_by    TEXT    NOT NULL,
    restored_from INTEGER NOT NULL DEFAULT 0,
    comment       TEXT    NOT NULL DEFAULT ''
) STRICT;

-- The rules version that classified each report (0: the built-in rules or
-- a rules file, and every report stored before versions were kept). An
-- event made from a report has the report's id, and so its version.
ALTER TABLE delivery_reports ADD COLUMN rules_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tracking_events ADD COLUMN rules_version INTEGER NOT NULL DEFAULT 0;
