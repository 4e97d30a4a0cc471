-- A fresh PgQ queue 'bench' with one registered consumer 'bench'.
SELECT pgq.unregister_consumer('bench', 'bench')
  FROM pgq.get_consumer_info() WHERE queue_name = 'bench' AND consumer_name = 'bench';
SELECT pgq.drop_queue('bench', true) FROM pgq.queue WHERE queue_name = 'bench';
SELECT pgq.create_queue('bench');
-- Tick whenever the ticker runs (every 50 ms, pgqd ticker_period) and there
-- are new events, or 500 events piled up.  PgQ's default max lag is 3 s.
SELECT pgq.set_queue_config('bench', 'ticker_max_count', '500');
SELECT pgq.set_queue_config('bench', 'ticker_max_lag', '50 milliseconds');
SELECT pgq.register_consumer('bench', 'bench');
