-- The W3C traceparent of the event that caused a delivery (the HTTP request
-- that approved the flat, through the outbox and the fan-out), so that the
-- sender's send span joins that trace. NULL when the event carried none.
ALTER TABLE deliveries ADD COLUMN traceparent text NULL;
