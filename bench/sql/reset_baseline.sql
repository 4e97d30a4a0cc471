-- The hand-rolled queue (recreated empty before every workload).
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_q;
CREATE TABLE bench_q (
  id          bigserial PRIMARY KEY,
  enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  payload     jsonb NOT NULL
);
