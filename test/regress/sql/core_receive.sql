-- core_receive: receive arguments, order, delays; transactional mode and
-- lease mode; ack.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err

SELECT txmq.create_queue('core_r', lease => '1 min');

-- ---- argument checks ----
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', 0)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', -1)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', NULL)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', 10001)$$);
SET txmq.max_batch = 5;
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', 6)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', 5)$$);
RESET txmq.max_batch;
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', 10000)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', lease => '0')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', lease => '9 ms')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', lease => '-1 min')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', lease => '12 h 1 s')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', lease => '12 h')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', wait => '-1 s')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', wait => '1 h 1 s')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', wait => '1 year')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'nope')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_nope', 'core_r')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive(NULL, 'core_r')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', NULL)$$);
-- wait => NULL means no wait
SELECT count(*) AS null_wait FROM txmq.receive('core_r', 'core_r', wait => NULL);
-- a long poll needs READ COMMITTED
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_r', 'core_r', wait => '1 s')$$);
SELECT count(*) AS no_wait_ok FROM txmq.receive('core_r', 'core_r');
COMMIT;
-- a short wait on an empty queue returns empty after about the wait
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) AS waited_empty FROM txmq.receive('core_r', 'core_r', wait => '300 ms');
SELECT clock_timestamp() - :'t0'::timestamptz >= '290 ms' AS waited_long_enough,
	   clock_timestamp() - :'t0'::timestamptz < '5 s' AS not_too_long;

-- ---- order by id, max_messages ----
SELECT count(*) FROM txmq.send_batch('core_r',
	ARRAY['1', '2', '3', '4', '5']::jsonb[]);
SELECT payload, attempt FROM txmq.receive('core_r', 'core_r', 2);
SELECT payload, attempt FROM txmq.receive('core_r', 'core_r', 10);
SELECT count(*) AS all_leased FROM txmq.receive('core_r', 'core_r', 10);
SELECT txmq.purge('core_r');

-- ---- delayed messages are invisible until due ----
SELECT txmq.send('core_r', '"later"', delay => '1 s') AS dl \gset
SELECT txmq.send('core_r', '"now"') AS nw \gset
SELECT payload FROM txmq.receive('core_r', 'core_r', 10);
SELECT count(*) AS not_yet FROM txmq.receive('core_r', 'core_r', 10);
SELECT pg_sleep(1.1);
SELECT msg_id = :dl AS delayed_now_due, payload, attempt FROM txmq.receive('core_r', 'core_r', 10);
-- a delayed message is woken for by a waiting receive when due
SELECT txmq.send('core_r', '"soon"', delay => '500 ms') AS dl \gset
SELECT clock_timestamp() AS t0 \gset
SELECT msg_id = :dl AS got_delayed, payload FROM txmq.receive('core_r', 'core_r', wait => '10 s');
SELECT clock_timestamp() - :'t0'::timestamptz BETWEEN '400 ms' AND '5 s' AS when_due;
SELECT txmq.purge('core_r');

-- ---- transactional mode: receive and ack in one transaction ----
SELECT txmq.send('core_r', '"tx1"') AS id \gset
BEGIN;
SELECT msg_id = :id AS got, attempt FROM txmq.receive('core_r', 'core_r');
SELECT txmq.ack('core_r', 'core_r', :id) AS acked;
SELECT txmq.ack('core_r', 'core_r', :id) AS acked_twice;
COMMIT;
SELECT count(*) AS gone FROM txmq.receive('core_r', 'core_r');
SELECT txmq.ack('core_r', 'core_r', :id) AS ack_after_commit;
-- rollback: available again at once, with attempt + 1
SELECT txmq.send('core_r', '"tx2"') AS id \gset
BEGIN;
SELECT msg_id = :id AS got, attempt FROM txmq.receive('core_r', 'core_r');
SELECT txmq.ack('core_r', 'core_r', :id) AS acked;
ROLLBACK;
BEGIN;
SELECT msg_id = :id AS again, attempt FROM txmq.receive('core_r', 'core_r');
ROLLBACK;
SELECT msg_id = :id AS again, attempt FROM txmq.receive('core_r', 'core_r');
SELECT txmq.ack('core_r', 'core_r', :id) AS acked_in_lease_mode;
-- an error aborts the transaction the same way
SELECT txmq.send('core_r', '"tx3"') AS id \gset
BEGIN;
SELECT msg_id = :id AS got, attempt FROM txmq.receive('core_r', 'core_r');
SELECT 1 / 0;
ROLLBACK;
SELECT msg_id = :id AS again, attempt FROM txmq.receive('core_r', 'core_r');
SELECT txmq.ack('core_r', 'core_r', :id);
-- receive inside a savepoint that is rolled back
SELECT count(*) FROM txmq.send_batch('core_r', ARRAY['"sp1"', '"sp2"']::jsonb[]);
BEGIN;
SAVEPOINT a;
SELECT payload, attempt FROM txmq.receive('core_r', 'core_r');
ROLLBACK TO SAVEPOINT a;
-- the message is free again (attempt 2), in this very transaction too
SELECT payload, attempt FROM txmq.receive('core_r', 'core_r', 10);
SAVEPOINT b;
SELECT count(*) AS none_left FROM txmq.receive('core_r', 'core_r', 10);
RELEASE SAVEPOINT b;
ROLLBACK;
-- receive in a savepoint that is released, ack after it; then commit
BEGIN;
SAVEPOINT c;
SELECT payload, attempt, msg_id AS id FROM txmq.receive('core_r', 'core_r') \gset
RELEASE SAVEPOINT c;
SELECT txmq.ack('core_r', 'core_r', :id) AS acked_after_release;
COMMIT;
-- an ack in a rolled-back savepoint does not count: the message stays held
BEGIN;
SELECT payload, attempt, msg_id AS id FROM txmq.receive('core_r', 'core_r') \gset
SAVEPOINT d;
SELECT txmq.ack('core_r', 'core_r', :id) AS acked_in_savepoint;
ROLLBACK TO SAVEPOINT d;
SELECT txmq.ack('core_r', 'core_r', :id) AS acked_again;
COMMIT;
SELECT count(*) AS empty FROM txmq.receive('core_r', 'core_r', 10);

-- ---- lease mode: receive, commit, ack later ----
SELECT count(*) FROM txmq.send_batch('core_r', ARRAY['"l1"', '"l2"', '"l3"']::jsonb[]);
SELECT array_agg(msg_id ORDER BY msg_id) AS ids FROM txmq.receive('core_r', 'core_r', 2) \gset
SELECT msg_id AS l3 FROM txmq.receive('core_r', 'core_r') \gset
-- held (leased) messages are not delivered again
SELECT count(*) AS leased_invisible FROM txmq.receive('core_r', 'core_r', 10);
-- the lease is the subscription's (1 min) unless given
SELECT bool_and(leased) AS leased, bool_and(vt BETWEEN now() + '50 s' AND now() + '70 s') AS lease_1min
  FROM txmq.msg WHERE msg_id = ANY (:'ids'::bigint[]);
SELECT txmq.ack('core_r', 'core_r', (:'ids'::bigint[])[1]) AS ack1;
SELECT txmq.ack('core_r', 'core_r', (:'ids'::bigint[])[1]) AS double_ack;
SELECT txmq.ack('core_r', 'core_r', -1) AS unknown_id;
SELECT txmq.ack('core_r', 'core_r', 0) AS unknown_id_0;
SELECT pg_temp.core_err($$SELECT txmq.ack('core_r', 'core_r', NULL::bigint)$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_r', 'core_r', NULL::bigint[])$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_r', 'core_r', ARRAY[1, NULL]::bigint[])$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_r', 'core_r', ARRAY[[1, 2]]::bigint[])$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_r', 'nope', 1)$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_nope', 'core_r', 1)$$);
-- ack(array): counts only what was held; duplicates count once
SELECT txmq.ack('core_r', 'core_r', ARRAY[(:'ids'::bigint[])[1], (:'ids'::bigint[])[2],
	(:'ids'::bigint[])[2], :l3, -5]) AS acked_of_array;
SELECT txmq.ack('core_r', 'core_r', '{}'::bigint[]) AS empty_array;
SELECT count(*) AS rows_left FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
  JOIN txmq.topic t USING (topic_id) WHERE t.name = 'core_r';
-- a ready message that nobody received cannot be acked
SELECT txmq.send('core_r', '"unreceived"') AS id \gset
SELECT txmq.ack('core_r', 'core_r', :id) AS ack_unreceived;
SELECT txmq.ack('core_r', 'core_r', ARRAY[:id]) AS ack_unreceived_array;
-- nor a delayed one
SELECT txmq.send('core_r', '"delayed"', delay => '1 h') AS idd \gset
SELECT txmq.ack('core_r', 'core_r', :idd) AS ack_delayed;
SELECT txmq.nack('core_r', 'core_r', :idd) AS nack_delayed;
SELECT txmq.reject('core_r', 'core_r', :idd) AS reject_delayed;
SELECT txmq.extend_lease('core_r', 'core_r', :idd, '1 min') IS NULL AS extend_delayed;
SELECT msg_id = :id AS still_there, attempt FROM txmq.receive('core_r', 'core_r');
SELECT txmq.purge('core_r');
-- a lease given to receive, and lease_expires_at
SELECT txmq.send('core_r', '"custom lease"') AS id \gset
SELECT clock_timestamp() AS t0 \gset
SELECT lease_expires_at BETWEEN :'t0'::timestamptz + '9 s' AND clock_timestamp() + '10 s' AS lease_10s
  FROM txmq.receive('core_r', 'core_r', lease => '10 s');
SELECT vt BETWEEN :'t0'::timestamptz + '9 s' AND clock_timestamp() + '10 s' AS stored_lease_10s
  FROM txmq.msg WHERE msg_id = :id;
-- an expired lease makes the message available again with attempt + 1
SELECT txmq.send('core_r', '"short"') AS id \gset
SELECT attempt FROM txmq.receive('core_r', 'core_r', lease => '200 ms') WHERE msg_id = :id;
SELECT count(*) AS still_leased FROM txmq.receive('core_r', 'core_r') WHERE msg_id = :id;
SELECT pg_sleep(0.3);
SELECT msg_id = :id AS back, attempt FROM txmq.receive('core_r', 'core_r', lease => '200 ms');
SELECT pg_sleep(0.3);
SELECT msg_id = :id AS back, attempt FROM txmq.receive('core_r', 'core_r');
SELECT txmq.ack('core_r', 'core_r', :id) AS acked;
-- a leased message received again in transactional mode and rolled back
SELECT txmq.send('core_r', '"mixed"') AS id \gset
SELECT attempt FROM txmq.receive('core_r', 'core_r', lease => '100 ms');
SELECT pg_sleep(0.2);
BEGIN;
SELECT attempt FROM txmq.receive('core_r', 'core_r');
ROLLBACK;
SELECT attempt FROM txmq.receive('core_r', 'core_r');
SELECT txmq.ack('core_r', 'core_r', :id) AS acked;

SELECT txmq.drop_topic('core_r', force => true);
