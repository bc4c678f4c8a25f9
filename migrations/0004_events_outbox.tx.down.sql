DROP TABLE IF EXISTS "watermill_offsets_flat.status-changed.v1";
DROP TABLE IF EXISTS "watermill_flat.status-changed.v1";
