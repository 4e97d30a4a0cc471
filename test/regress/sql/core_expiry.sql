-- core_expiry: a subscription's retention and on_expiry (issue 14): the
-- options at creation and change, what they default to, their bounds and
-- bad input (an error, nothing changed).  What the worker does with them
-- is TAP 037_expiry.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err

CREATE FUNCTION pg_temp.core_ex_opts(q text)
RETURNS TABLE (subscription text, retention interval, on_expiry text)
LANGUAGE sql AS $$
	SELECT s.name, s.retention, s.on_expiry
	  FROM txmq.subscription s JOIN txmq.topic t USING (topic_id)
	 WHERE t.name = q ORDER BY s.name $$;

-- ---- none by default; set, changed and turned off ----
SELECT txmq.create_queue('core_ex');
SELECT * FROM pg_temp.core_ex_opts('core_ex');
SELECT txmq.alter_subscription('core_ex', 'core_ex', retention => '1 day');
SELECT * FROM pg_temp.core_ex_opts('core_ex');
-- each option given alone keeps the other, and other options keep both
SELECT txmq.alter_subscription('core_ex', 'core_ex', on_expiry => 'drop');
SELECT * FROM pg_temp.core_ex_opts('core_ex');
SELECT txmq.alter_subscription('core_ex', 'core_ex', max_deliveries => 5);
SELECT * FROM pg_temp.core_ex_opts('core_ex');
SELECT txmq.alter_subscription('core_ex', 'core_ex', retention => '0');
SELECT * FROM pg_temp.core_ex_opts('core_ex');
SELECT txmq.alter_subscription('core_ex', 'core_ex', retention => '365 days',
							   on_expiry => 'dead_letter');
SELECT * FROM pg_temp.core_ex_opts('core_ex');

-- ---- at creation, through create_queue and create_subscription ----
SELECT txmq.create_queue('core_ex2', retention => '2 h', on_expiry => 'drop');
SELECT txmq.create_subscription('core_ex2', 'other', retention => '30 s');
SELECT txmq.create_subscription('core_ex2', 'plain');
SELECT * FROM pg_temp.core_ex_opts('core_ex2');
-- if_not_exists leaves an existing subscription as it is
SELECT txmq.create_subscription('core_ex2', 'other', retention => '1 h',
								on_expiry => 'drop', if_not_exists => true);
SELECT * FROM pg_temp.core_ex_opts('core_ex2');
-- txmq.stats counts expired messages per subscription
SELECT topic, subscription, expired FROM txmq.stats
 WHERE topic LIKE 'core_ex%' ORDER BY 1, 2;

-- ---- bad input: an error, nothing changed ----
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('core_ex2', 'other', retention => '-1 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('core_ex2', 'other', retention => '366 days')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('core_ex2', 'other', on_expiry => 'delete')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('core_ex2', 'other', retention => '1 h', on_expiry => 'Drop')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('core_ex2', 'nope', retention => '1 h')$$);
SELECT * FROM pg_temp.core_ex_opts('core_ex2');
SELECT pg_temp.core_err($$SELECT txmq.create_queue('core_ex3', retention => '2 years')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_queue('core_ex3', on_expiry => NULL)$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_ex2', 's3', on_expiry => '')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_ex2', 's3', retention => '-1 day')$$);
SELECT count(*) AS topics FROM txmq.topic WHERE name = 'core_ex3';
SELECT * FROM pg_temp.core_ex_opts('core_ex2');

SELECT txmq.drop_topic('core_ex', force => true);
SELECT txmq.drop_topic('core_ex2', force => true);
