-- Issue 12: the mapping rules at run time. Every version is kept, numbered
-- in the order stored; the newest is in force on every replica. rules is
-- the server's encoding of the rule set (JSON of classifier.RuleSet),
-- which the store never reads. A version is written under the table's
-- lock (see AddRuleVersion), so numbers have no gaps and two replicas
-- writing at once cannot both take the same base.
CREATE TABLE rule_versions (
    version       bigint      PRIMARY KEY,
    rules         bytea       NOT NULL,
    create_time   timestamptz NOT NULL,
    created_by    text        NOT NULL,
    restored_from bigint      NOT NULL DEFAULT 0,
    comment       text        NOT NULL DEFAULT ''
);

-- The rules version that classified each report (0: the built-in rules or
-- a rules file, and every report stored before versions were kept). An
-- event made from a report has the report's id, and so its version. A
-- column with a constant default is added without rewriting the table.
ALTER TABLE delivery_reports ADD COLUMN rules_version bigint NOT NULL DEFAULT 0;
ALTER TABLE tracking_events ADD COLUMN rules_version bigint NOT NULL DEFAULT 0;
