-- Schema 2: the node registry. Each running node upserts its row every few seconds; a row
-- whose heartbeat is old belongs to a node that stopped or died.
CREATE TABLE nodes (
    id text PRIMARY KEY,
    address text NOT NULL,
    version text NOT NULL,
    started_at bigint NOT NULL,
    heartbeat_at bigint NOT NULL,
    resident_isolates bigint NOT NULL,
    in_flight bigint NOT NULL
);
CREATE INDEX nodes_heartbeat ON nodes (heartbeat_at);
