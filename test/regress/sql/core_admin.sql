-- core_admin: names, create / drop of topics, subscriptions and queues,
-- duplicates, drop_topic refusing while messages are held, purge.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err

-- ---- names ----
SELECT txmq.create_topic('core_a');
SELECT txmq.create_topic('Core.Name-2_x');
SELECT txmq.create_topic(repeat('n', 48)) AS created_48;
SELECT name, length(name) FROM txmq.topic
 WHERE name IN ('core_a', 'Core.Name-2_x', repeat('n', 48)) ORDER BY name;
SELECT pg_temp.core_err($$SELECT txmq.create_topic(repeat('n', 49))$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic(NULL)$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('a b')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('a;b')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('a''b')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('a/b')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('é')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic(E'a\nb')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'bad name')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', repeat('s', 49))$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', '')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', NULL)$$);
SELECT pg_temp.core_err($$SELECT txmq.send('bad name', '{}')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_a', 'x y')$$);
-- nothing was created by the failed calls
SELECT count(*) AS topics FROM txmq.topic WHERE name LIKE 'a%';

-- ---- create_topic options ----
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_a')$$) AS duplicate_topic;
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_o', notify => NULL)$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_o', max_checks => 0)$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_o', max_checks => 1001)$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_o', check_after => '-1 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_o', check_interval => '1 ms')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_o', on_checks_exhausted => 'ignore')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_o', check_function => 'abs(int)')$$);
SELECT count(*) AS core_o_exists FROM txmq.topic WHERE name = 'core_o';
SELECT txmq.create_topic('core_o', notify => false, max_checks => 3,
						 on_checks_exhausted => 'dead_letter');
SELECT notify, max_checks, on_checks_exhausted, check_after, check_interval
  FROM txmq.topic WHERE name = 'core_o';

-- ---- create_subscription ----
SELECT txmq.create_subscription('core_a', 's1');
SELECT txmq.create_subscription('core_a', 's2', max_deliveries => 3,
	lease => '5 min', backoff_base => '2 s', backoff_max => '1 h');
SELECT s.name, max_deliveries, lease, backoff_base, backoff_max
  FROM txmq.subscription s JOIN txmq.topic t USING (topic_id)
 WHERE t.name = 'core_a' ORDER BY s.name;
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 's1')$$) AS duplicate_sub;
-- the same subscription name under another topic is fine
SELECT txmq.create_subscription('core_o', 's1');
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_nope', 's1')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'x', max_deliveries => 0)$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'x', max_deliveries => NULL)$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'x', lease => '0')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'x', lease => '5 ms')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'x', lease => '13 h')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'x', lease => NULL)$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'x', lease => '-1 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'x', lease => '100 years')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'x', backoff_base => '-1 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'x', backoff_base => '1 h', backoff_max => '1 min')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_a', 'x', backoff_max => '8 days')$$);
SELECT count(*) AS x_exists FROM txmq.subscription WHERE name = 'x';

-- ---- create_queue ----
SELECT txmq.create_queue('core_q', max_deliveries => 4, lease => '1 min');
SELECT t.name AS topic, s.name AS sub, max_deliveries, lease
  FROM txmq.topic t JOIN txmq.subscription s USING (topic_id)
 WHERE t.name = 'core_q';
SELECT pg_temp.core_err($$SELECT txmq.create_queue('core_q')$$) AS duplicate_queue;
SELECT pg_temp.core_err($$SELECT txmq.create_queue('bad name')$$);
-- a failing create_queue leaves no half-made topic behind
SELECT pg_temp.core_err($$SELECT txmq.create_queue('core_q2', max_deliveries => 0)$$);
SELECT count(*) AS core_q2_exists FROM txmq.topic WHERE name = 'core_q2';

-- ---- drop_subscription ----
SELECT pg_temp.core_err($$SELECT txmq.drop_subscription('core_a', 'nope')$$);
SELECT pg_temp.core_err($$SELECT txmq.drop_subscription('core_nope', 's1')$$);
SELECT txmq.send('core_a', '{"n": 1}') > 0 AS sent;
-- a subscription can be dropped while it holds messages; they go with it
SELECT txmq.drop_subscription('core_a', 's2');
SELECT s.name, count(m.msg_id)
  FROM txmq.subscription s JOIN txmq.topic t USING (topic_id)
  LEFT JOIN txmq.msg m USING (sub_id)
 WHERE t.name = 'core_a' GROUP BY s.name ORDER BY s.name;
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_a', 's2')$$);

-- ---- drop_topic refuses while messages are held ----
SELECT pg_temp.core_err($$SELECT txmq.drop_topic('core_a')$$) AS drop_busy;
SELECT pg_temp.core_err($$SELECT txmq.drop_topic('core_a', force => NULL)$$);
SELECT pg_temp.core_err($$SELECT txmq.drop_topic('core_nope')$$);
SELECT count(*) AS still_there FROM txmq.topic WHERE name = 'core_a';
-- a dead letter keeps the topic too (it waits for a person); force drops
-- it with the topic
SELECT msg_id AS id FROM txmq.receive('core_a', 's1') \gset
SELECT txmq.reject('core_a', 's1', :id);
SELECT pg_temp.core_err($$SELECT txmq.drop_topic('core_a')$$) AS drop_dead;
SELECT txmq.drop_topic('core_a', force => true);
SELECT count(*) AS gone FROM txmq.topic WHERE name = 'core_a';
SELECT count(*) AS rows_left FROM txmq.dead_letter d
 WHERE NOT EXISTS (SELECT FROM txmq.subscription s WHERE s.sub_id = d.sub_id);
-- force drops a topic that holds messages, with all its rows
SELECT txmq.send('core_q', '{"n": 2}') > 0 AS sent;
SELECT txmq.drop_topic('core_q', force => true);
SELECT count(*) AS orphans FROM txmq.msg m
 WHERE NOT EXISTS (SELECT FROM txmq.subscription s WHERE s.sub_id = m.sub_id);
-- a topic without subscriptions holds nothing: send goes nowhere
SELECT txmq.send('core_o', '{}') > 0 AS sent;
SELECT txmq.drop_subscription('core_o', 's1');
SELECT txmq.send('core_o', '{}') > 0 AS sent_to_nobody;
SELECT txmq.drop_topic('core_o');
-- names can be reused after a drop
SELECT txmq.create_queue('core_q');

-- ---- purge ----
SELECT txmq.create_subscription('core_q', 'other');
SELECT count(*) AS sent FROM txmq.send_batch('core_q', ARRAY['1', '2', '3']::jsonb[]);
-- one dead letter in core_q/core_q
SELECT msg_id AS id FROM txmq.receive('core_q', 'core_q') \gset
SELECT txmq.reject('core_q', 'core_q', :id, 'bad');
SELECT sub, count(*) FROM (
  SELECT s.name AS sub FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
   JOIN txmq.topic t USING (topic_id) WHERE t.name = 'core_q'
  UNION ALL
  SELECT s.name || ' (dead)' FROM txmq.dead_letter d JOIN txmq.subscription s USING (sub_id)
   JOIN txmq.topic t USING (topic_id) WHERE t.name = 'core_q') x
 GROUP BY sub ORDER BY sub;
-- one subscription: its 2 messages and its dead letter
SELECT txmq.purge('core_q', 'core_q');
SELECT count(*) AS left_core_q FROM txmq.receive('core_q', 'core_q', 10);
SELECT count(*) AS dead_core_q FROM txmq.dead_letters('core_q', 'core_q');
SELECT pg_temp.core_err($$SELECT txmq.purge('core_q', 'nope')$$);
SELECT pg_temp.core_err($$SELECT txmq.purge('core_nope')$$);
SELECT pg_temp.core_err($$SELECT txmq.purge(NULL)$$);
-- the whole topic: the other subscription's 3 and the new message in both
SELECT txmq.send('core_q', '4') > 0 AS sent;
SELECT txmq.purge('core_q');
SELECT txmq.purge('core_q') AS nothing_left;
SELECT count(*) AS msg_rows FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
  JOIN txmq.topic t USING (topic_id) WHERE t.name = 'core_q';
-- purge is transactional
BEGIN;
SELECT txmq.send('core_q', '5') > 0 AS sent;
COMMIT;
BEGIN;
SELECT txmq.purge('core_q');
ROLLBACK;
SELECT count(*) AS after_rollback FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
  JOIN txmq.topic t USING (topic_id) WHERE t.name = 'core_q';
SELECT txmq.drop_topic('core_q', true);
SELECT txmq.drop_topic('Core.Name-2_x');
SELECT txmq.drop_topic(repeat('n', 48));
SELECT count(*) AS core_topics_left FROM txmq.topic WHERE name ILIKE 'core%' OR name LIKE 'nnn%';
