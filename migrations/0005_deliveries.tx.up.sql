-- One row per (flat, subscriber email) notification: the sender's queue and
-- its record. The unique pair makes the fan-out idempotent under
-- redelivery; the state machine below allows at most one 'sent' per pair.
--
--   pending ──claim──► sending ──ok──► sent
--      ▲                  │ error, attempts < max: next_attempt_at = now() + backoff
--      └──────────────────┤
--                         └ error, attempts = max ──► failed (kept; re-drive below)
--
-- While a row is 'sending', next_attempt_at is the end of the worker's
-- lease: a row still 'sending' after it (the worker died) is claimed again.
--
-- Re-drive failed deliveries (what sender.Redrive does):
--   UPDATE deliveries SET state = 'pending', attempts = 0,
--          next_attempt_at = now(), updated_at = now()
--    WHERE state = 'failed';
CREATE TABLE deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flat_id          int         NOT NULL,
    email            citext      NOT NULL,
    -- What the email says, copied from the event so that sending needs no join.
    house_id         int         NOT NULL,
    house_address    text        NOT NULL,
    flat_number      int         NOT NULL,
    rooms            int         NOT NULL,
    price            int         NOT NULL,
    -- The Watermill message that caused the row, and when the flat was approved.
    event_id         text        NOT NULL,
    approved_at      timestamptz NOT NULL,
    state            text        NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts         int         NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text        NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    first_attempt_at timestamptz NULL,
    sent_at          timestamptz NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deliveries_flat_id_email_key UNIQUE (flat_id, email),
    CONSTRAINT deliveries_sent_at_check CHECK ((state = 'sent') = (sent_at IS NOT NULL))
);

-- The claim query: due rows of the open states, oldest first.
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at)
    WHERE state IN ('pending', 'sending');
