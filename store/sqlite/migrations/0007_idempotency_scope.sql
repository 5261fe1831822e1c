-- Idempotency keys belong to the sender account: two accounts may use the
-- same key for different sends. The digest of the request that made a send
-- (SHA-256 of its canonical encoding) tells a retry from a different
-- request reusing the key; it is NULL for sends stored before it was kept,
-- whose retries count as the same request.
DROP INDEX sends_idempotency;
CREATE UNIQUE INDEX sends_idempotency ON sends (sender_id, idempotency_key) WHERE idempotency_key <> '';
ALTER TABLE sends ADD COLUMN request_digest BLOB;
