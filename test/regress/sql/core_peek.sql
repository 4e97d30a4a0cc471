-- core_peek: txmq.peek shows what a receive would deliver next, in its
-- order, and changes nothing; its arguments and privilege are receive's.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err
GRANT EXECUTE ON FUNCTION pg_temp.core_err(text) TO PUBLIC;

SELECT txmq.create_queue('core_pk', max_deliveries => 2);
SELECT * FROM txmq.peek('core_pk', 'core_pk');

-- three ready, one delayed: the ready ones in id order, attempt 1
SELECT txmq.send('core_pk', '"a"', headers => '{"h": 1}', key => 'k1') AS a \gset
SELECT txmq.send('core_pk', '"b"') AS b \gset
SELECT txmq.send('core_pk', '"c"') AS c \gset
SELECT txmq.send('core_pk', '"later"', delay => '1 h') > 0 AS sent_delayed;
SELECT msg_id = :a AS is_a, payload, headers, key, attempt,
	   created_at <= now() AS created, last_error
  FROM txmq.peek('core_pk', 'core_pk');
-- max_messages
SELECT payload FROM txmq.peek('core_pk', 'core_pk', 2);
SELECT payload FROM txmq.peek('core_pk', 'core_pk', max_messages => 1);
-- nothing changed: still ready, not delivered, and receive takes the same
SELECT ready, delayed, in_flight, delivered FROM txmq.stats WHERE topic = 'core_pk';
SELECT msg_id = :a AS same_first, attempt
  FROM txmq.receive('core_pk', 'core_pk', lease => '1 h');
-- a leased message is not shown
SELECT payload FROM txmq.peek('core_pk', 'core_pk');
-- nor one this transaction holds; a nacked one comes back with its error
BEGIN;
SELECT msg_id = :b AS took_b FROM txmq.receive('core_pk', 'core_pk');
SELECT payload FROM txmq.peek('core_pk', 'core_pk');
SELECT txmq.nack('core_pk', 'core_pk', :b, delay => '0', error => 'boom');
COMMIT;
SELECT payload, attempt, last_error FROM txmq.peek('core_pk', 'core_pk');
-- an aborted attempt counts: b has used both deliveries, so a receive
-- would dead-letter it and peek does not show it
BEGIN;
SELECT msg_id = :b AS took_b, attempt FROM txmq.receive('core_pk', 'core_pk');
ROLLBACK;
SELECT payload, attempt FROM txmq.peek('core_pk', 'core_pk');
SELECT payload, attempt FROM txmq.receive('core_pk', 'core_pk', lease => '1 h');
SELECT msg_id = :b AS b_dead FROM txmq.dead_letters('core_pk', 'core_pk');
-- read-only transactions may peek (receive may not)
BEGIN READ ONLY;
SELECT count(*) AS peeked FROM txmq.peek('core_pk', 'core_pk');
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pk', 'core_pk')$$);
COMMIT;

-- ordered: a key's second message waits behind its first
SELECT txmq.create_queue('core_pk_ord', ordered => true);
SELECT txmq.send('core_pk_ord', '"k1 first"', key => 'k1') > 0 AS sent;
SELECT txmq.send('core_pk_ord', '"k1 second"', key => 'k1') > 0 AS sent;
SELECT txmq.send('core_pk_ord', '"k2"', key => 'k2') > 0 AS sent;
SELECT txmq.send('core_pk_ord', '"no key"') > 0 AS sent;
SELECT payload FROM txmq.peek('core_pk_ord', 'core_pk_ord');
SELECT count(*) AS leased FROM txmq.receive('core_pk_ord', 'core_pk_ord', lease => '1 h');
SELECT payload FROM txmq.peek('core_pk_ord', 'core_pk_ord');

-- bad input: receive's errors, nothing changed
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek('core_pk', 'core_pk', 0)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pk', 'core_pk', 0)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek('core_pk', 'core_pk', -1)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek('core_pk', 'core_pk', NULL)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek('core_pk', 'core_pk', 10001)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek(NULL, 'core_pk')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek('core_pk', NULL)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek('core pk', 'core_pk')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek('core_pk', repeat('s', 49))$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek('core_nope', 'core_pk')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek('core_pk', 'nope')$$);
SELECT ready, delayed, in_flight, dead FROM txmq.stats WHERE topic = 'core_pk';

-- privileges: without 'receive' on the subscription, receive's error
CREATE ROLE regress_pk_app;
CREATE ROLE regress_pk_out;
SELECT txmq.grant('core_pk', 'regress_pk_app', 'receive', 'core_pk');
SELECT txmq.grant('core_pk', 'regress_pk_out', 'send');
SET ROLE regress_pk_out;
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek('core_pk', 'core_pk')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pk', 'core_pk')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.peek('core_pk_ord', 'core_pk_ord')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pk_ord', 'core_pk_ord')$$);
RESET ROLE;
SELECT txmq.send('core_pk', '"d"') > 0 AS sent;
SET ROLE regress_pk_app;
SELECT payload FROM txmq.peek('core_pk', 'core_pk');
RESET ROLE;

-- ---- clean up ----
SELECT txmq.drop_topic('core_pk', force => true);
SELECT txmq.drop_topic('core_pk_ord', force => true);
DROP ROLE regress_pk_app;
DROP ROLE regress_pk_out;
