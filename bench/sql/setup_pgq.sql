CREATE EXTENSION IF NOT EXISTS pgq;

-- Transactional consume: take the next batch, read all its events, finish
-- it; one statement = one transaction.  Returns one row per event with the
-- latency from ev_time (now() of the inserting transaction) to now (DB clock).
CREATE OR REPLACE FUNCTION bench_pgq_take(OUT ev_id bigint, OUT lat_ms float8)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE b bigint;
BEGIN
  b := pgq.next_batch('bench', 'bench');
  IF b IS NULL THEN RETURN; END IF;
  RETURN QUERY SELECT e.ev_id,
         (extract(epoch FROM clock_timestamp() - e.ev_time) * 1000)::float8
    FROM pgq.get_batch_events(b) e;
  PERFORM pgq.finish_batch(b);
END $$;

-- Lease-style consume, part 1: open the next batch and read its events
-- (transaction 1); part 2 is pgq.finish_batch(batch_id) (transaction 2).
CREATE OR REPLACE FUNCTION bench_pgq_open(OUT batch_id bigint, OUT n bigint)
LANGUAGE plpgsql AS $$
BEGIN
  batch_id := pgq.next_batch('bench', 'bench');
  n := 0;
  IF batch_id IS NULL THEN RETURN; END IF;
  SELECT count(*) INTO n FROM (SELECT e.ev_id, e.ev_data FROM pgq.get_batch_events(batch_id) e) s;
END $$;

-- Prefill for drain workloads: n events, a tick after every `chunk` events,
-- so that every PgQ batch holds exactly `chunk` events (the consumer cannot
-- choose a batch size: batches are whatever lies between two ticks).
CREATE OR REPLACE PROCEDURE bench_pgq_prefill(n int, chunk int) LANGUAGE plpgsql AS $$
DECLARE i int := 0;
BEGIN
  PERFORM pgq.set_queue_config('bench', 'ticker_max_count', chunk::text);
  PERFORM pgq.set_queue_config('bench', 'ticker_max_lag', '1 day');
  PERFORM pgq.set_queue_config('bench', 'ticker_idle_period', '1 day');
  COMMIT;
  WHILE i < n LOOP
    PERFORM pgq.insert_event('bench', 'order.created', bench_payload(g))
       FROM generate_series(i + 1, least(i + chunk, n)) g;
    i := i + chunk;
    COMMIT;
    PERFORM pgq.ticker('bench');
    COMMIT;
  END LOOP;
  PERFORM pgq.set_queue_config('bench', 'ticker_max_count', '500');
  PERFORM pgq.set_queue_config('bench', 'ticker_max_lag', '50 milliseconds');
  PERFORM pgq.set_queue_config('bench', 'ticker_idle_period', '1 minute');
  COMMIT;
END $$;
