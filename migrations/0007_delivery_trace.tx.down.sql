ALTER TABLE deliveries DROP COLUMN IF EXISTS traceparent;
