-- Extensions every service relies on.
CREATE EXTENSION IF NOT EXISTS citext;
