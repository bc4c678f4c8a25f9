-- Houses, their flats (with the moderation state machine's invariants) and
-- the email subscriptions of the home service. Ids are int4 because the API
-- speaks int32.

CREATE TABLE houses (
    id          int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    address     text        NOT NULL CHECK (char_length(address) BETWEEN 1 AND 512),
    year        int         NOT NULL CHECK (year >= 0),
    developer   text        NULL CHECK (char_length(developer) <= 256),
    created_at  timestamptz NOT NULL DEFAULT now(),
    update_at   timestamptz NOT NULL DEFAULT now(),
    -- The last number handed out to a flat of this house; bumped under the
    -- row lock of the transaction that inserts the flat, so numbers are
    -- race-free and never reused.
    flats_count int         NOT NULL DEFAULT 0 CHECK (flats_count >= 0)
);

CREATE TABLE flats (
    id           int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    house_id     int         NOT NULL REFERENCES houses (id),
    number       int         NOT NULL CHECK (number >= 1),
    price        int         NOT NULL CHECK (price >= 0),
    rooms        int         NOT NULL CHECK (rooms BETWEEN 1 AND 100),
    status       text        NOT NULL DEFAULT 'created'
                 CHECK (status IN ('created', 'approved', 'declined', 'on moderation')),
    -- The moderator holding the flat; set exactly while it is on moderation.
    moderator_id uuid        NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT flats_house_id_number_key UNIQUE (house_id, number),
    CONSTRAINT flats_moderator_held_check
        CHECK ((status = 'on moderation') = (moderator_id IS NOT NULL))
);

-- Listing a house's flats (the hot path) is an index-only range scan of that
-- house: every status for moderators, only approved flats for clients.
CREATE INDEX flats_house_id_id_idx ON flats (house_id, id)
    INCLUDE (number, price, rooms, status);
-- status is included although constant here: the query returns it, and an
-- index-only scan needs every returned column stored in the index.
CREATE INDEX flats_house_id_id_approved_idx ON flats (house_id, id)
    INCLUDE (number, price, rooms, status)
    WHERE status = 'approved';

CREATE TABLE subscriptions (
    house_id   int         NOT NULL REFERENCES houses (id),
    email      citext      NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (house_id, email)
);
