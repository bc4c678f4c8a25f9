-- The outbox of domain events: the tables of watermill-sql's default
-- PostgreSQL schema for the topic flat.status-changed.v1 (pkg/events). They
-- are created here, not by Watermill at run time, because the publisher
-- writes inside the home service's transaction, where it must not create
-- tables. Differences from Watermill's own DDL, invisible to its queries:
-- the payload is BYTEA (protobuf, not JSON) and created_at is timestamptz,
-- so that the sender's cleanup and lag figures do not depend on the
-- session's time zone.

CREATE TABLE "watermill_flat.status-changed.v1" (
    "offset"       bigserial,
    uuid           varchar(36) NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    payload        bytea       DEFAULT NULL,
    metadata       json        DEFAULT NULL,
    transaction_id xid8        NOT NULL,
    PRIMARY KEY (transaction_id, "offset")
);

-- The sender's cleanup deletes consumed rows older than a cut-off.
CREATE INDEX "watermill_flat.status-changed.v1_created_at_idx"
    ON "watermill_flat.status-changed.v1" (created_at);

-- One row per consumer group: how far the group has read.
CREATE TABLE "watermill_offsets_flat.status-changed.v1" (
    consumer_group                varchar(255) NOT NULL,
    offset_acked                  bigint,
    last_processed_transaction_id xid8         NOT NULL,
    PRIMARY KEY (consumer_group)
);
