ALTER TABLE houses DROP COLUMN version;
