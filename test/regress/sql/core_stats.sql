-- core_stats: the txmq.stats view (gauges and counters).
SELECT txmq.create_topic('core_st');
SELECT txmq.create_subscription('core_st', 'a', max_deliveries => 2);
SELECT txmq.create_subscription('core_st', 'b');
SELECT txmq.create_topic('core_st_nosub');

-- the view's columns
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'txmq.stats'::regclass AND attnum > 0
 ORDER BY attnum;

-- empty topics: all zero; a topic without subscriptions has one row
SELECT topic, subscription, ready, delayed, in_flight, dead, half_pending,
	   oldest_ready_age, sent, delivered, acked, nacked, dead_lettered, checks
  FROM txmq.stats WHERE topic LIKE 'core_st%' ORDER BY topic, subscription;

-- 4 ready, 1 delayed (each in both subscriptions); one rolled back
SELECT count(*) FROM txmq.send_batch('core_st', ARRAY['1', '2', '3', '4']::jsonb[]);
SELECT txmq.send('core_st', '5', delay => '1 h') > 0;
BEGIN;
SELECT txmq.send('core_st', '"rolled back"') > 0;
ROLLBACK;
SELECT pg_sleep(0.01);
SELECT subscription, ready, delayed, in_flight, dead, sent,
	   oldest_ready_age > '0' AS has_age
  FROM txmq.stats WHERE topic = 'core_st' ORDER BY subscription;

-- a: receive 3, ack 1, nack 1 (ready again), 1 stays in flight; b untouched
SELECT array_agg(msg_id ORDER BY msg_id) AS ids FROM txmq.receive('core_st', 'a', 3) \gset
SELECT txmq.ack('core_st', 'a', (:'ids'::bigint[])[1]);
SELECT txmq.nack('core_st', 'a', (:'ids'::bigint[])[2], delay => '0');
SELECT subscription, ready, delayed, in_flight, dead, sent, delivered, acked,
	   nacked, dead_lettered
  FROM txmq.stats WHERE topic = 'core_st' ORDER BY subscription;
-- a nack with a delay counts as delayed, not in flight
SELECT txmq.nack('core_st', 'a', (:'ids'::bigint[])[3], delay => '1 h');
SELECT subscription, ready, delayed, in_flight, nacked
  FROM txmq.stats WHERE topic = 'core_st' AND subscription = 'a';
-- dead letters: reject one, and one used up by rollbacks (max_deliveries 2)
SELECT msg_id AS r FROM txmq.receive('core_st', 'a') \gset
SELECT txmq.reject('core_st', 'a', :r);
BEGIN; SELECT count(*) FROM txmq.receive('core_st', 'a'); ROLLBACK;
BEGIN; SELECT count(*) FROM txmq.receive('core_st', 'a'); ROLLBACK;
SELECT count(*) AS dead_lettered_now FROM txmq.receive('core_st', 'a');
SELECT subscription, ready, delayed, in_flight, dead, delivered, acked,
	   nacked, dead_lettered
  FROM txmq.stats WHERE topic = 'core_st' ORDER BY subscription;
-- transactional mode: received and acked in one transaction counts as
-- delivered and acked; a rolled-back one counts nothing but the attempt
SELECT msg_id AS x FROM txmq.receive('core_st', 'b') \gset
SELECT txmq.ack('core_st', 'b', :x);
BEGIN;
SELECT msg_id AS y FROM txmq.receive('core_st', 'b') \gset
SELECT txmq.ack('core_st', 'b', :y);
COMMIT;
BEGIN;
SELECT count(*) FROM txmq.receive('core_st', 'b');
ROLLBACK;
SELECT subscription, ready, delayed, in_flight, dead, delivered, acked
  FROM txmq.stats WHERE topic = 'core_st' AND subscription = 'b';
-- purge and redrive move the gauges
SELECT txmq.redrive('core_st', 'a');
SELECT subscription, ready, dead FROM txmq.stats WHERE topic = 'core_st' AND subscription = 'a';
SELECT txmq.purge('core_st');
SELECT subscription, ready, delayed, in_flight, dead, oldest_ready_age
  FROM txmq.stats WHERE topic = 'core_st' ORDER BY subscription;
-- counters are per topic: another topic's sends do not count here
SELECT txmq.send('core_st_nosub', '{}') > 0;
SELECT topic, sent FROM txmq.stats WHERE topic LIKE 'core_st%' ORDER BY topic, subscription;
-- stats of a dropped topic are gone; a new topic of the same name starts at 0
SELECT txmq.drop_topic('core_st', force => true);
SELECT txmq.create_queue('core_st');
SELECT topic, subscription, sent, delivered FROM txmq.stats WHERE topic = 'core_st';
SELECT txmq.drop_topic('core_st');
SELECT txmq.drop_topic('core_st_nosub');
-- counters count since the topic's and the subscription's shared-memory
-- slots were built (here: at the first send); the rows of the shared
-- tables say how full each is, and carry nothing else
SELECT clock_timestamp() AS t0 \gset
SELECT txmq.create_queue('core_st_since');
SELECT txmq.send('core_st_since', '{}') > 0;
SELECT counters_since >= :'t0' AND counters_since <= clock_timestamp()
		AS since_first_use,
	   num_nulls(setting, capacity, in_use, needed) AS usage_nulls
  FROM txmq.stats WHERE topic = 'core_st_since';
SELECT setting, capacity, in_use <= capacity AS fits,
	   needed >= in_use AS needed_covers_in_use,
	   num_nonnulls(topic, subscription, ready, delayed, in_flight, dead,
					half_pending, oldest_ready_age, sent, delivered, acked,
					nacked, dead_lettered, checks, checks_commit,
					checks_rollback, checks_unknown, worker_running,
					counters_since) AS other_columns
  FROM txmq.stats WHERE setting IS NOT NULL ORDER BY setting;
SELECT txmq.drop_topic('core_st_since', force => true);
SELECT count(*) FROM txmq.stats WHERE topic LIKE 'core_st%';
