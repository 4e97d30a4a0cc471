-- core_retry: nack (explicit delay, backoff), max_deliveries and dead
-- letters (via nack, rollbacks, expired leases), reject, extend_lease,
-- dead_letters, redrive.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err

SELECT txmq.create_queue('core_n', max_deliveries => 5,
	backoff_base => '10 s', backoff_max => '30 s');

-- ---- nack argument checks ----
SELECT txmq.send('core_n', '"n"') AS id \gset
SELECT attempt FROM txmq.receive('core_n', 'core_n');
SELECT pg_temp.core_err($$SELECT txmq.nack('core_n', 'core_n', NULL)$$);
SELECT pg_temp.core_err(format($$SELECT txmq.nack('core_n', 'core_n', %s, delay => '-1 s')$$, :id));
SELECT pg_temp.core_err(format($$SELECT txmq.nack('core_n', 'core_n', %s, delay => '31 days')$$, :id));
SELECT pg_temp.core_err(format($$SELECT txmq.nack('core_n', 'core_n', %s, error => repeat('e', 65537))$$, :id));
SELECT pg_temp.core_err(format($$SELECT txmq.nack('core_n', 'nope', %s)$$, :id));
SELECT txmq.nack('core_n', 'core_n', -1) AS nack_unknown;
-- ---- nack with an explicit delay, error text kept ----
SELECT txmq.nack('core_n', 'core_n', :id, delay => '0', error => 'first failure') AS nacked;
SELECT txmq.nack('core_n', 'core_n', :id) AS nack_again_not_held;
SELECT msg_id = :id AS back_at_once, attempt FROM txmq.receive('core_n', 'core_n');
SELECT leased, last_error FROM txmq.msg WHERE msg_id = :id;
SELECT clock_timestamp() AS t0 \gset
SELECT txmq.nack('core_n', 'core_n', :id, delay => '1 h') AS nacked;
SELECT leased, vt BETWEEN :'t0'::timestamptz + '1 h' AND clock_timestamp() + '1 h' AS due_in_1h,
	   last_error AS error_kept_when_null
  FROM txmq.msg WHERE msg_id = :id;
SELECT count(*) AS not_before_delay FROM txmq.receive('core_n', 'core_n');
SELECT txmq.purge('core_n');

-- ---- default backoff: attempt n waits within [d/2, d], d = base * 2^(n-1)
-- capped at backoff_max (base 10 s, max 30 s) ----
SELECT txmq.send('core_n', '"b"') AS id \gset
CREATE TEMP TABLE core_backoff (attempt int, lo interval, hi interval, ok boolean);
DO $$
DECLARE
	id bigint := (SELECT msg_id FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
				  JOIN txmq.topic t USING (topic_id) WHERE t.name = 'core_n');
	att int;
	t0 timestamptz;
	t1 timestamptz;
	due timestamptz;
	d interval;
BEGIN
	FOR i IN 1 .. 4 LOOP
		SELECT r.attempt INTO att FROM txmq.receive('core_n', 'core_n') r;
		t0 := clock_timestamp();
		PERFORM txmq.nack('core_n', 'core_n', id);
		t1 := clock_timestamp();
		SELECT vt INTO due FROM txmq.msg WHERE msg_id = id;
		d := least(interval '10 s' * 2 ^ (att - 1), interval '30 s');
		INSERT INTO core_backoff VALUES (att, d / 2, d,
			due BETWEEN t0 + d / 2 - interval '1 ms' AND t1 + d);
		-- make it due again for the next round
		UPDATE txmq.msg SET vt = now() WHERE msg_id = id;
	END LOOP;
END $$;
SELECT * FROM core_backoff ORDER BY attempt;
-- the jitter is random: 20 nacks at attempt 1 do not all wait the same
SELECT txmq.purge('core_n');
SELECT count(*) FROM txmq.send_batch('core_n', array_fill('{}'::jsonb, ARRAY[20]));
-- the backoff counts from each nack, after this
SELECT clock_timestamp() AS nack_t0 \gset
SELECT count(*) FROM txmq.receive('core_n', 'core_n', 20) r, txmq.nack('core_n', 'core_n', r.msg_id);
SELECT count(DISTINCT vt) > 1 AS jittered,
	   bool_and(vt BETWEEN :'nack_t0'::timestamptz + '5 s' AND clock_timestamp() + '10 s') AS in_5_to_10s
  FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
  JOIN txmq.topic t USING (topic_id) WHERE t.name = 'core_n';
SELECT txmq.drop_topic('core_n', force => true);

-- ---- max_deliveries with nack: the last nack dead-letters ----
SELECT txmq.create_queue('core_d', max_deliveries => 3, lease => '1 min');
SELECT txmq.send('core_d', '{"poison": 1}', headers => '{"h": 1}', key => 'pk') AS id \gset
SELECT attempt FROM txmq.receive('core_d', 'core_d');
SELECT txmq.nack('core_d', 'core_d', :id, '0', 'e1');
SELECT attempt FROM txmq.receive('core_d', 'core_d');
SELECT txmq.nack('core_d', 'core_d', :id, '0', 'e2');
SELECT attempt FROM txmq.receive('core_d', 'core_d');
SELECT txmq.nack('core_d', 'core_d', :id, '0', 'e3') AS last_nack;
SELECT count(*) AS gone FROM txmq.receive('core_d', 'core_d');
SELECT msg_id = :id AS same, payload, headers, key, attempts, last_error,
	   dead_at <= clock_timestamp() AS dead_at_ok
  FROM txmq.dead_letters('core_d', 'core_d');
SELECT txmq.ack('core_d', 'core_d', :id) AS ack_dead;
SELECT txmq.nack('core_d', 'core_d', :id) AS nack_dead;
SELECT txmq.reject('core_d', 'core_d', :id) AS reject_dead;
SELECT txmq.extend_lease('core_d', 'core_d', :id, '1 min') IS NULL AS extend_dead;
-- redrive puts it back with a fresh attempt count and its last error
SELECT txmq.redrive('core_d', 'core_d') AS redriven;
SELECT count(*) AS dead_after_redrive FROM txmq.dead_letters('core_d', 'core_d');
SELECT msg_id = :id AS same, payload, headers, key, attempt FROM txmq.receive('core_d', 'core_d');
SELECT last_error FROM txmq.msg WHERE msg_id = :id;
SELECT txmq.ack('core_d', 'core_d', :id) AS acked;

-- ---- max_deliveries with rollbacks (transactional mode) ----
SELECT txmq.send('core_d', '"rb"') AS id \gset
BEGIN;
SELECT attempt FROM txmq.receive('core_d', 'core_d');
ROLLBACK;
BEGIN;
SELECT attempt FROM txmq.receive('core_d', 'core_d');
ROLLBACK;
BEGIN;
SELECT attempt FROM txmq.receive('core_d', 'core_d');
ROLLBACK;
-- the 4th receive finds it used up: dead letter, nothing delivered
SELECT count(*) AS delivered FROM txmq.receive('core_d', 'core_d');
SELECT msg_id = :id AS same, payload, attempts, last_error FROM txmq.dead_letters('core_d', 'core_d');
SELECT txmq.purge('core_d', 'core_d');
-- receive past a used-up message: the next one is delivered in the same call
SELECT txmq.send('core_d', '"poison"') AS p \gset
SELECT txmq.send('core_d', '"good"') AS g \gset
BEGIN; SELECT attempt FROM txmq.receive('core_d', 'core_d') WHERE msg_id = :p; ROLLBACK;
BEGIN; SELECT attempt FROM txmq.receive('core_d', 'core_d') WHERE msg_id = :p; ROLLBACK;
BEGIN; SELECT attempt FROM txmq.receive('core_d', 'core_d') WHERE msg_id = :p; ROLLBACK;
SELECT payload, attempt FROM txmq.receive('core_d', 'core_d');
SELECT payload, attempts FROM txmq.dead_letters('core_d', 'core_d');
SELECT txmq.purge('core_d');

-- ---- max_deliveries with expired leases ----
SELECT txmq.send('core_d', '"expiring"') AS id \gset
SELECT attempt FROM txmq.receive('core_d', 'core_d', lease => '100 ms');
SELECT pg_sleep(0.15);
SELECT attempt FROM txmq.receive('core_d', 'core_d', lease => '100 ms');
SELECT pg_sleep(0.15);
SELECT attempt FROM txmq.receive('core_d', 'core_d', lease => '100 ms');
SELECT pg_sleep(0.15);
SELECT count(*) AS delivered FROM txmq.receive('core_d', 'core_d');
SELECT msg_id = :id AS same, attempts, last_error FROM txmq.dead_letters('core_d', 'core_d');
SELECT txmq.purge('core_d');

-- ---- reject: straight to dead letters, at any attempt ----
SELECT txmq.send('core_d', '"r1"') AS r1 \gset
SELECT txmq.send('core_d', '"r2"') AS r2 \gset
SELECT txmq.send('core_d', '"r3"') AS r3 \gset
SELECT count(*) FROM txmq.receive('core_d', 'core_d', 2);
SELECT txmq.reject('core_d', 'core_d', :r1, 'malformed') AS rejected;
SELECT txmq.reject('core_d', 'core_d', :r2) AS rejected_no_text;
SELECT txmq.reject('core_d', 'core_d', :r3) AS reject_not_held;
SELECT txmq.reject('core_d', 'core_d', :r1) AS reject_twice;
SELECT pg_temp.core_err($$SELECT txmq.reject('core_d', 'core_d', NULL)$$);
SELECT pg_temp.core_err(format($$SELECT txmq.reject('core_d', 'core_d', %s, repeat('e', 65537))$$, :r3));
-- reject in transactional mode; and a rejected-then-rolled-back message stays
BEGIN;
SELECT msg_id = :r3 AS got FROM txmq.receive('core_d', 'core_d');
SELECT txmq.reject('core_d', 'core_d', :r3, 'rolled back reject');
ROLLBACK;
SELECT msg_id - :r1 AS n, payload, attempts, last_error FROM txmq.dead_letters('core_d', 'core_d');
SELECT msg_id = :r3 AS still_queued, attempt FROM txmq.receive('core_d', 'core_d');
BEGIN;
SELECT txmq.reject('core_d', 'core_d', :r3, 'poison');
COMMIT;
SELECT msg_id - :r1 AS n, payload, attempts, last_error FROM txmq.dead_letters('core_d', 'core_d');

-- ---- redrive some ids ----
SELECT txmq.redrive('core_d', 'core_d', ARRAY[:r2, -1]) AS redrive_one;
SELECT txmq.redrive('core_d', 'core_d', ARRAY[:r2]) AS redrive_again;
SELECT txmq.redrive('core_d', 'core_d', '{}') AS redrive_none;
SELECT pg_temp.core_err($$SELECT txmq.redrive('core_d', 'core_d', ARRAY[1, NULL]::bigint[])$$);
SELECT pg_temp.core_err($$SELECT txmq.redrive('core_d', 'nope')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.dead_letters('core_d', 'nope')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.dead_letters('core_nope', 'core_d')$$);
SELECT msg_id - :r1 AS n FROM txmq.dead_letters('core_d', 'core_d');
SELECT msg_id = :r2 AS redriven, payload, attempt FROM txmq.receive('core_d', 'core_d');
-- redrive all
SELECT txmq.redrive('core_d', 'core_d') AS redrive_all;
SELECT payload, attempt FROM txmq.receive('core_d', 'core_d', 10);
SELECT txmq.purge('core_d');

-- ---- extend_lease ----
SELECT txmq.send('core_d', '"ext"') AS id \gset
SELECT msg_id = :id AS got FROM txmq.receive('core_d', 'core_d', lease => '200 ms');
SELECT clock_timestamp() AS t0 \gset
SELECT txmq.extend_lease('core_d', 'core_d', :id, '1 h') AS until \gset
SELECT :'until'::timestamptz BETWEEN :'t0'::timestamptz + '1 h' AND clock_timestamp() + '1 h' AS returns_new_expiry;
SELECT vt = :'until'::timestamptz AS stored FROM txmq.msg WHERE msg_id = :id;
SELECT pg_sleep(0.3);
SELECT count(*) AS not_expired FROM txmq.receive('core_d', 'core_d');
SELECT txmq.extend_lease('core_d', 'core_d', -1, '1 min') IS NULL AS unknown_is_null;
SELECT pg_temp.core_err(format($$SELECT txmq.extend_lease('core_d', 'core_d', %s, NULL)$$, :id));
SELECT pg_temp.core_err(format($$SELECT txmq.extend_lease('core_d', 'core_d', %s, '5 ms')$$, :id));
SELECT pg_temp.core_err(format($$SELECT txmq.extend_lease('core_d', 'core_d', %s, '13 h')$$, :id));
SELECT pg_temp.core_err($$SELECT txmq.extend_lease('core_d', 'core_d', NULL, '1 min')$$);
-- a shorter lease is allowed too: the message comes back sooner
SELECT txmq.extend_lease('core_d', 'core_d', :id, '100 ms') IS NOT NULL AS shortened;
SELECT pg_sleep(0.2);
SELECT msg_id = :id AS back, attempt FROM txmq.receive('core_d', 'core_d');
SELECT txmq.ack('core_d', 'core_d', :id);
SELECT txmq.extend_lease('core_d', 'core_d', :id, '1 min') IS NULL AS acked_is_null;
-- in transactional mode, extending the lease of a message received in the
-- same transaction sets the lease written at commit
SELECT txmq.send('core_d', '"ext2"') AS id \gset
BEGIN;
SELECT msg_id = :id AS got FROM txmq.receive('core_d', 'core_d', lease => '10 s');
SELECT txmq.extend_lease('core_d', 'core_d', :id, '2 h') AS until \gset
COMMIT;
SELECT leased, vt = :'until'::timestamptz AS lease_from_extend FROM txmq.msg WHERE msg_id = :id;
-- a ready message nobody holds cannot be extended
SELECT txmq.send('core_d', '"ready"') AS id \gset
SELECT txmq.extend_lease('core_d', 'core_d', :id, '1 min') IS NULL AS ready_is_null;

SELECT txmq.drop_topic('core_d', force => true);
