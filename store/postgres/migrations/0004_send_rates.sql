-- Each connection's request rate, shared by every dispatcher of the store
-- (see store/sendrate.go): when the rate would next be idle.
CREATE TABLE connection_send_rates (
    connection_id text        PRIMARY KEY,
    tat           timestamptz NOT NULL
);
