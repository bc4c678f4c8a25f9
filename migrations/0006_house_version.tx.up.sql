-- A per-house version, bumped in the same transaction as every change to the
-- house's flats (a creation, a status change). houses.flats_count and
-- update_at do not move on a status change, so they cannot tell a cache that
-- a listing changed; version does, so a listing cached under (house,
-- version) is never served after a commit that changed it, on any replica.
-- Adding a column with a constant default rewrites nothing (PostgreSQL 11+).
ALTER TABLE houses ADD COLUMN version bigint NOT NULL DEFAULT 0;
