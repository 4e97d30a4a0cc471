-- core_dedup: idempotent send (issue 14): a topic's dedup_window, the
-- dedup keys of send, send_batch and send_half.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err

-- the keys the topic holds now (the test runs as a superuser)
CREATE FUNCTION pg_temp.core_dd_keys(t text) RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(string_agg(d.key || CASE WHEN d.half THEN ' (half)' ELSE '' END,
							   ', ' ORDER BY d.key), 'none')
	  FROM txmq.dedup d JOIN txmq.topic USING (topic_id) WHERE name = t $$;
CREATE FUNCTION pg_temp.core_dd_queued(t text) RETURNS bigint
LANGUAGE sql AS $$ SELECT ready + delayed FROM txmq.stats WHERE topic = t $$;

-- ---- the option: off by default, 0 .. 7 days, changed by alter_topic ----
SELECT txmq.create_queue('core_dd', notify => false, dedup_window => '1 h');
SELECT txmq.create_queue('core_dd_off', notify => false);
SELECT name, dedup_window FROM txmq.topic WHERE name LIKE 'core_dd%' ORDER BY 1;
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_dd_bad', dedup_window => '-1 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_dd_bad', dedup_window => '7 days 1 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('core_dd', dedup_window => '-1 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('core_dd', dedup_window => '8 days')$$);
SELECT count(*) AS no_bad_topic FROM txmq.topic WHERE name = 'core_dd_bad';
SELECT txmq.create_topic('core_dd_zero', dedup_window => '0');
SELECT txmq.create_topic('core_dd_zero', if_not_exists => true);
SELECT txmq.create_topic('core_dd_zero', if_not_exists => true, dedup_window => '1 min');
SELECT txmq.create_topic('core_dd', if_not_exists => true, notify => false, dedup_window => '1 h');
SELECT txmq.alter_topic('core_dd_zero', dedup_window => '7 days');
SELECT txmq.alter_topic('core_dd_zero', max_checks => 3);
SELECT name, dedup_window FROM txmq.topic WHERE name = 'core_dd_zero';
SELECT txmq.alter_topic('core_dd_zero', dedup_window => '0');
SELECT name, dedup_window FROM txmq.topic WHERE name = 'core_dd_zero';
SELECT txmq.drop_topic('core_dd_zero');

-- ---- send: the second send with a key returns the first id ----
SELECT txmq.send('core_dd', '1', dedup_key => 'a') AS a1 \gset
SELECT txmq.send('core_dd', '2', dedup_key => 'a') = :a1 AS same_id;
SELECT txmq.send('core_dd', '3', dedup_key => 'A') <> :a1 AS other_key;
SELECT txmq.send('core_dd', '4') <> :a1 AS no_key;
SELECT txmq.send('core_dd', '5', dedup_key => '') AS empty \gset
SELECT txmq.send('core_dd', '6', dedup_key => '') = :empty AS empty_key_too;
SELECT pg_temp.core_dd_queued('core_dd') AS queued, pg_temp.core_dd_keys('core_dd') AS keys;
SELECT string_agg(payload::text, ',' ORDER BY msg_id) AS payloads FROM txmq.receive('core_dd', 'core_dd', 10);
-- the same transaction: the key it took
BEGIN;
SELECT txmq.send('core_dd', '7', dedup_key => 'b') AS b1 \gset
SELECT txmq.send('core_dd', '8', dedup_key => 'b') = :b1 AS same_id;
COMMIT;
-- a rolled-back send takes no key
BEGIN;
SELECT txmq.send('core_dd', '9', dedup_key => 'c') AS c1 \gset
ROLLBACK;
SELECT txmq.send('core_dd', '10', dedup_key => 'c') <> :c1 AS goes_through;
-- nor does a savepoint rolled back
BEGIN;
SAVEPOINT s;
SELECT txmq.send('core_dd', '11', dedup_key => 'd') AS d1 \gset
ROLLBACK TO s;
SELECT txmq.send('core_dd', '12', dedup_key => 'd') <> :d1 AS goes_through;
COMMIT;
-- a delayed duplicate: still nothing
SELECT txmq.send('core_dd', '13', dedup_key => 'b', delay => '1 h') = :b1 AS same_id;
SELECT string_agg(payload::text, ',' ORDER BY msg_id) AS payloads FROM txmq.receive('core_dd', 'core_dd', 10);

-- ---- the window passed: the key is taken again ----
SELECT txmq.create_queue('core_dd_short', notify => false, dedup_window => '100 ms');
SELECT txmq.send('core_dd_short', '1', dedup_key => 'k') AS k1 \gset
SELECT txmq.send('core_dd_short', '2', dedup_key => 'k') = :k1 AS within;
SELECT pg_sleep(0.2);
SELECT txmq.send('core_dd_short', '3', dedup_key => 'k') AS k2 \gset
SELECT :k2 <> :k1 AS after_window;
SELECT txmq.send('core_dd_short', '4', dedup_key => 'k') = :k2 AS new_window;
SELECT string_agg(payload::text, ',' ORDER BY msg_id) AS payloads FROM txmq.receive('core_dd_short', 'core_dd_short', 10);
-- turning the window off: keys are refused, and so is the topic's
SELECT txmq.alter_topic('core_dd_short', dedup_window => '0');
SELECT pg_temp.core_err($$SELECT txmq.send('core_dd_short', '5', dedup_key => 'k')$$);
SELECT txmq.drop_topic('core_dd_short', force => true);

-- ---- send_batch: one key per payload, null for none ----
SELECT array_agg(i ORDER BY o) AS ids FROM txmq.send_batch('core_dd',
	ARRAY['20', '21', '22', '23', '24']::jsonb[],
	dedup_keys => ARRAY['a', 'e', NULL, 'e', NULL]) WITH ORDINALITY AS x(i, o) \gset
SELECT (:'ids'::bigint[])[1] = :a1 AS a_is_first, (:'ids'::bigint[])[4] = (:'ids'::bigint[])[2] AS e_twice,
	   (:'ids'::bigint[])[3] <> (:'ids'::bigint[])[5] AS nulls_are_new;
SELECT string_agg(payload::text, ',' ORDER BY msg_id) AS payloads FROM txmq.receive('core_dd', 'core_dd', 10);
SELECT count(*) AS all_duplicates FROM txmq.send_batch('core_dd', ARRAY['25', '26']::jsonb[],
	dedup_keys => ARRAY['a', 'e']);
SELECT pg_temp.core_dd_queued('core_dd') AS queued;

-- ---- send_half: a rolled-back half message frees its key ----
SELECT txmq.send_half('core_dd', '30', producer_group => 'core_dd_g', dedup_key => 'h') AS h1 \gset
SELECT txmq.send('core_dd', '31', dedup_key => 'h') = :h1 AS send_gets_half;
SELECT txmq.send_half('core_dd', '32', producer_group => 'core_dd_g', dedup_key => 'h') = :h1 AS half_gets_half;
SELECT count(*) AS one_half FROM txmq.half WHERE state = 'half' AND producer_group = 'core_dd_g';
SELECT pg_temp.core_dd_keys('core_dd') AS keys;
SELECT txmq.rollback_half(:h1);
SELECT pg_temp.core_dd_keys('core_dd') AS keys;
SELECT txmq.send_half('core_dd', '33', producer_group => 'core_dd_g', dedup_key => 'h') AS h2 \gset
SELECT :h2 <> :h1 AS after_rollback;
SELECT txmq.commit_half(:h2);
SELECT txmq.send('core_dd', '34', dedup_key => 'h') = :h2 AS committed_keeps_it;
SELECT string_agg(payload::text, ',' ORDER BY msg_id) AS payloads FROM txmq.receive('core_dd', 'core_dd', 10);
-- a key that a plain send took is kept when a half message's rollback
-- frees another
SELECT txmq.send_half('core_dd', '35', producer_group => 'core_dd_g', dedup_key => 'a') = :a1 AS half_dup;
SELECT pg_temp.core_dd_keys('core_dd') AS keys;

-- ---- bad input: an error, nothing changed ----
SELECT pg_temp.core_dd_queued('core_dd') AS queued_before \gset
SELECT pg_temp.core_err($$SELECT txmq.send('core_dd_off', '1', dedup_key => 'x')$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_dd_off', ARRAY['1']::jsonb[], dedup_keys => ARRAY['x'])$$);
SELECT pg_temp.core_err($$SELECT txmq.send_half('core_dd_off', '1', producer_group => 'g', dedup_key => 'x')$$);
SELECT pg_temp.core_err(format($$SELECT txmq.send('core_dd', '1', dedup_key => %L)$$, repeat('x', 1025)));
SELECT pg_temp.core_err(format($$SELECT txmq.send_batch('core_dd', ARRAY['1']::jsonb[], dedup_keys => ARRAY[%L])$$, repeat('x', 1025)));
SELECT pg_temp.core_err(format($$SELECT txmq.send_half('core_dd', '1', producer_group => 'g', dedup_key => %L)$$, repeat('x', 1025)));
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_dd', ARRAY['1', '2']::jsonb[], dedup_keys => ARRAY['x'])$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_dd', ARRAY['1']::jsonb[], dedup_keys => ARRAY[['x']])$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_dd', '{}'::jsonb[], dedup_keys => ARRAY['x'])$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_dd', NULL, dedup_key => 'x')$$);
SELECT txmq.send('core_dd', '1', dedup_key => repeat('x', 1024)) IS NOT NULL AS longest_key;
SELECT pg_temp.core_dd_queued('core_dd') = :queued_before + 1 AS only_the_longest,
	   pg_temp.core_dd_keys('core_dd') LIKE '%xxxxxxxx%' AS its_key;

-- ---- the keys are no one's to read ----
SELECT has_table_privilege('public', 'txmq.dedup', 'SELECT') AS public_reads_keys;

SELECT txmq.drop_topic('core_dd', force => true);
SELECT txmq.drop_topic('core_dd_off', force => true);
