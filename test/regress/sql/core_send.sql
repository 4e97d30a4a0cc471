-- core_send: send / send_batch arguments and limits, fan-out to
-- subscriptions, transactional visibility of sends.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err

SELECT txmq.create_queue('core_s');

-- ---- send: what is stored and delivered ----
SELECT txmq.send('core_s', '{"a": [1, 2]}', headers => '{"h": "v"}',
				 key => 'k1') AS id1 \gset
SELECT txmq.send('core_s', '"just a string"') AS id2 \gset
SELECT txmq.send('core_s', 'null') AS id3 \gset
SELECT txmq.send('core_s', '42', '{}', '') AS id4 \gset
SELECT :id1 < :id2 AND :id2 < :id3 AND :id3 < :id4 AS ids_increase;
SELECT msg_id - :id1 AS n, payload, headers, key, attempt,
	   created_at <= now() AS created_ok,
	   lease_expires_at > clock_timestamp() AS leased
  FROM txmq.receive('core_s', 'core_s', 10);
SELECT txmq.ack('core_s', 'core_s', ARRAY[:id1, :id2, :id3, :id4]);

-- ---- send: bad arguments change nothing ----
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', NULL)$$);
SELECT pg_temp.core_err($$SELECT txmq.send(NULL, '{}')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_nope', '{}')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', '{}', headers => '[1]')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', '{}', headers => '"h"')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', '{}', headers => 'null')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', '{}', headers => '3')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', '{}', key => repeat('k', 1025))$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', '{}', delay => '-1 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', '{}', delay => '31 days')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', '{}', delay => '2 mons')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', '{}', delay => '1000 years')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', '{}', delay => '-1000 years')$$);
SELECT count(*) AS nothing_sent FROM txmq.receive('core_s', 'core_s', 10);
-- limits that are accepted
SELECT txmq.send('core_s', '{}', key => repeat('k', 1024)) AS id \gset
SELECT txmq.send('core_s', '{}', delay => '30 days') AS idd \gset
SELECT txmq.send('core_s', '{}', delay => '0') AS id0 \gset
SELECT msg_id = :id AS key_1024, length(key) FROM txmq.receive('core_s', 'core_s');
SELECT msg_id = :id0 AS zero_delay_is_ready FROM txmq.receive('core_s', 'core_s');
SELECT count(*) AS delayed_not_ready FROM txmq.receive('core_s', 'core_s');
SELECT vt > now() + '29 days' AS due_in_30_days FROM txmq.msg WHERE msg_id = :idd;
SELECT txmq.purge('core_s');

-- ---- payload size: txmq.max_payload_bytes ----
SET txmq.max_payload_bytes = 100;
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', jsonb_build_object('x', repeat('y', 200)))$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_s', '{}', headers => jsonb_build_object('x', repeat('y', 200)))$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_s', ARRAY['{}', jsonb_build_object('x', repeat('y', 200))])$$);
SELECT txmq.send('core_s', jsonb_build_object('x', repeat('y', 50))) > 0 AS small_ok;
RESET txmq.max_payload_bytes;
SELECT txmq.send('core_s', jsonb_build_object('x', repeat('y', 200))) > 0 AS big_ok_after_reset;
SELECT count(*) AS two FROM txmq.receive('core_s', 'core_s', 10);
SELECT txmq.purge('core_s');
-- only superusers may raise it (PGC_SUSET)
CREATE ROLE regress_core_send_user;
SET ROLE regress_core_send_user;
SELECT pg_temp.core_err($$SET txmq.max_payload_bytes = 100000000$$);
RESET ROLE;
DROP ROLE regress_core_send_user;

-- ---- send_batch ----
SELECT array_agg(id ORDER BY id) AS ids FROM txmq.send_batch('core_s',
	ARRAY['{"i": 1}', '{"i": 2}', '{"i": 3}']::jsonb[],
	headers => '{"b": true}', key => 'bk', delay => NULL) AS id \gset
SELECT cardinality(:'ids'::bigint[]) AS n,
	   (:'ids'::bigint[])[1] < (:'ids'::bigint[])[2]
	   AND (:'ids'::bigint[])[2] < (:'ids'::bigint[])[3] AS increasing;
SELECT payload, headers, key, attempt FROM txmq.receive('core_s', 'core_s', 10);
SELECT txmq.purge('core_s');
SELECT count(*) AS empty_batch FROM txmq.send_batch('core_s', '{}'::jsonb[]);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_s', NULL)$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_s', ARRAY['{}', NULL]::jsonb[])$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_s', ARRAY[['{}', '{}'], ['{}', '{}']]::jsonb[])$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_nope', ARRAY['{}']::jsonb[])$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_s', ARRAY['{}']::jsonb[], headers => '[]')$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_s', ARRAY['{}']::jsonb[], delay => '-1 s')$$);
SET txmq.max_batch = 3;
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_s', ARRAY['1', '2', '3', '4']::jsonb[])$$);
SELECT count(*) AS batch_of_3 FROM txmq.send_batch('core_s', ARRAY['1', '2', '3']::jsonb[]);
RESET txmq.max_batch;
SELECT count(*) AS three FROM txmq.receive('core_s', 'core_s', 10);
SELECT txmq.purge('core_s');
-- a batch with a delay
SELECT count(*) FROM txmq.send_batch('core_s', ARRAY['1', '2']::jsonb[], delay => '1 h');
SELECT count(*) AS delayed_batch_not_ready FROM txmq.receive('core_s', 'core_s', 10);
SELECT txmq.purge('core_s');

-- ---- transactional: a rolled-back send is never delivered ----
BEGIN;
SELECT txmq.send('core_s', '"rolled back"') > 0 AS sent;
SELECT count(*) FROM txmq.send_batch('core_s', ARRAY['1', '2']::jsonb[]);
ROLLBACK;
BEGIN;
SAVEPOINT sp;
SELECT txmq.send('core_s', '"in savepoint"') > 0 AS sent;
ROLLBACK TO SAVEPOINT sp;
SELECT txmq.send('core_s', '"kept"') > 0 AS sent;
COMMIT;
SELECT payload FROM txmq.receive('core_s', 'core_s', 10);
SELECT txmq.purge('core_s');
-- the sender sees its own uncommitted message only as data, not as a delivery
-- it could lose: receiving it in the same transaction works and commits together
BEGIN;
SELECT txmq.send('core_s', '"same tx"') AS id \gset
SELECT msg_id = :id AS got_own, attempt FROM txmq.receive('core_s', 'core_s');
SELECT txmq.ack('core_s', 'core_s', :id);
COMMIT;
SELECT count(*) AS gone FROM txmq.receive('core_s', 'core_s');

-- ---- fan-out ----
SELECT txmq.create_topic('core_fan');
SELECT txmq.send('core_fan', '"before any subscription"') > 0 AS sent;
SELECT txmq.create_subscription('core_fan', 'a');
SELECT txmq.send('core_fan', '"m1"') > 0 AS sent;
SELECT txmq.create_subscription('core_fan', 'b');
SELECT count(*) FROM txmq.send_batch('core_fan', ARRAY['"m2"', '"m3"']::jsonb[]);
-- a sees m1..m3, b (created after m1) only m2, m3; nobody sees the first
SELECT 'a' AS sub, payload, attempt FROM txmq.receive('core_fan', 'a', 10);
SELECT 'b' AS sub, payload, attempt FROM txmq.receive('core_fan', 'b', 10);
-- acking in a does not affect b
SELECT txmq.send('core_fan', '"m4"') AS id \gset
SELECT payload FROM txmq.receive('core_fan', 'a');
SELECT txmq.ack('core_fan', 'a', :id);
SELECT payload FROM txmq.receive('core_fan', 'b');
SELECT txmq.ack('core_fan', 'b', :id);
-- a subscription created in a transaction that also sends gets the message
BEGIN;
SELECT txmq.create_subscription('core_fan', 'c');
SELECT txmq.send('core_fan', '"m5"') > 0 AS sent;
COMMIT;
SELECT payload FROM txmq.receive('core_fan', 'c');
-- a rolled-back create_subscription leaves nothing behind
BEGIN;
SELECT txmq.create_subscription('core_fan', 'd');
ROLLBACK;
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_fan', 'd')$$);
-- ... also when it was used (and its lookup cached) before the rollback
BEGIN;
SELECT txmq.create_subscription('core_fan', 'd');
SELECT txmq.send('core_fan', '"m6"') > 0 AS sent;
SELECT payload FROM txmq.receive('core_fan', 'd');
ROLLBACK;
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_fan', 'd')$$);
-- a dropped and re-created subscription is a new one (empty, new settings)
SELECT txmq.drop_subscription('core_fan', 'c');
SELECT txmq.create_subscription('core_fan', 'c', max_deliveries => 1);
SELECT txmq.send('core_fan', '"m7"') AS id \gset
BEGIN;
SELECT payload, attempt FROM txmq.receive('core_fan', 'c', 10);
ROLLBACK;
SELECT count(*) AS dead_after_one_try FROM txmq.receive('core_fan', 'c', 10);
SELECT payload, attempts FROM txmq.dead_letters('core_fan', 'c');

SELECT txmq.drop_topic('core_fan', force => true);
SELECT txmq.drop_topic('core_s', force => true);
