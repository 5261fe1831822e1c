-- Each connection's request rate, shared by every dispatcher of the store
-- (see store/sendrate.go): when the rate would next be idle, in unix
-- microseconds.
CREATE TABLE connection_send_rates (
    connection_id TEXT    PRIMARY KEY,
    tat           INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
