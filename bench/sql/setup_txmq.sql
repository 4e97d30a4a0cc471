CREATE EXTENSION IF NOT EXISTS txmq;

-- Prefill for drain workloads (not timed): n messages, send_batch of 100,
-- 1000 messages per transaction.
CREATE OR REPLACE PROCEDURE bench_txmq_prefill(n int) LANGUAGE plpgsql AS $$
DECLARE i int := 0;
BEGIN
  WHILE i < n LOOP
    PERFORM count(*) FROM txmq.send_batch('bench',
      ARRAY(SELECT bench_payload(g)::jsonb FROM generate_series(i + 1, least(i + 100, n)) g));
    i := i + 100;
    IF i % 1000 = 0 THEN COMMIT; END IF;
  END LOOP;
  COMMIT;
END $$;
