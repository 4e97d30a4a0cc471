-- core_alter: alter_topic, alter_subscription, if_not_exists on create_*,
-- grants(), and every bad input of them (each changes nothing).
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err
GRANT EXECUTE ON FUNCTION pg_temp.core_err(text) TO PUBLIC;

CREATE ROLE regress_alt_owner;
CREATE ROLE regress_alt_heir;		-- may own topics
CREATE ROLE regress_alt_app;		-- may not
CREATE ROLE regress_alt_out;
GRANT regress_alt_heir TO regress_alt_owner;
GRANT regress_alt_app TO regress_alt_owner;
GRANT EXECUTE ON FUNCTION txmq.create_topic, txmq.create_queue
	TO regress_alt_owner, regress_alt_heir;
CREATE SCHEMA regress_alt AUTHORIZATION regress_alt_owner;
CREATE FUNCTION regress_alt.check_a(m txmq.message) RETURNS txmq.check_result
LANGUAGE sql AS $$ SELECT 'unknown'::txmq.check_result $$;
CREATE FUNCTION regress_alt.check_b(m txmq.message) RETURNS txmq.check_result
LANGUAGE sql AS $$ SELECT 'commit'::txmq.check_result $$;
ALTER FUNCTION regress_alt.check_a(txmq.message) OWNER TO regress_alt_owner;
ALTER FUNCTION regress_alt.check_b(txmq.message) OWNER TO regress_alt_owner;
-- a function the heir may not execute
REVOKE EXECUTE ON FUNCTION regress_alt.check_b(txmq.message) FROM PUBLIC;

-- every txmq function says what it is for in \df+
SELECT p.oid::regprocedure AS uncommented FROM pg_proc p
 WHERE p.pronamespace = 'txmq'::regnamespace
   AND obj_description(p.oid, 'pg_proc') IS NULL;

CREATE VIEW pg_temp.alt_topic AS
SELECT name, owner, notify, check_function, check_after, check_interval,
	   max_checks, on_checks_exhausted FROM txmq.topic WHERE name LIKE 'alt%';
CREATE VIEW pg_temp.alt_sub AS
SELECT t.name AS topic, s.name, max_deliveries, lease, backoff_base,
	   backoff_max, ordered
  FROM txmq.subscription s JOIN txmq.topic t USING (topic_id)
 WHERE t.name LIKE 'alt%';
GRANT SELECT ON pg_temp.alt_topic, pg_temp.alt_sub TO PUBLIC;

SET ROLE regress_alt_owner;
SELECT txmq.create_topic('alt_t', check_function => 'regress_alt.check_a(txmq.message)');
SELECT txmq.create_subscription('alt_t', 's', max_deliveries => 5);
SELECT txmq.create_queue('alt_q');
RESET ROLE;

-- ---- if_not_exists ----
SET ROLE regress_alt_owner;
-- the same options: a NOTICE, nothing changes
SELECT txmq.create_topic('alt_t', check_function => 'regress_alt.check_a(txmq.message)',
						 if_not_exists => true);
-- other options: the NOTICE names them; still nothing changes
SELECT txmq.create_topic('alt_t', notify => false, max_checks => 3,
						 if_not_exists => true);
SELECT txmq.create_subscription('alt_t', 's', max_deliveries => 5, if_not_exists => true);
SELECT txmq.create_subscription('alt_t', 's', lease => '1 min', ordered => true,
								if_not_exists => true);
SELECT txmq.create_queue('alt_q', if_not_exists => true);
SELECT txmq.create_queue('alt_q', max_deliveries => 2, if_not_exists => true);
-- a queue whose subscription is missing gets it
SELECT txmq.create_topic('alt_half');
SELECT txmq.create_queue('alt_half', lease => '2 min', if_not_exists => true);
SELECT * FROM pg_temp.alt_topic ORDER BY name;
SELECT * FROM pg_temp.alt_sub ORDER BY topic, name;
-- without it, the error says where to go
SELECT pg_temp.core_err($$SELECT txmq.create_topic('alt_t')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('alt_t', 's')$$);
-- bad values are errors, whether or not it exists
SELECT pg_temp.core_err($$SELECT txmq.create_topic('alt_t', max_checks => 0, if_not_exists => true)$$);
SELECT pg_temp.core_err($$SELECT txmq.create_topic('alt_new', if_not_exists => NULL)$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('alt_t', 's', lease => '0', if_not_exists => true)$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('alt_nope', 's', if_not_exists => true)$$);
RESET ROLE;
-- someone else's topic: only "exists", none of its settings
SET ROLE regress_alt_heir;
SELECT txmq.create_topic('alt_t', if_not_exists => true);
RESET ROLE;
-- a superuser sees them all
SELECT txmq.create_topic('alt_t', if_not_exists => true);
SET ROLE regress_alt_out;
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('alt_t', 's', if_not_exists => true)$$);
RESET ROLE;

-- ---- alter_topic ----
SET ROLE regress_alt_owner;
SELECT txmq.alter_topic('alt_t', notify => false, check_after => '1 min',
						max_checks => 4);
SELECT * FROM pg_temp.alt_topic WHERE name = 'alt_t';
-- nothing given: nothing changes
SELECT txmq.alter_topic('alt_t');
SELECT txmq.alter_topic('alt_t', check_interval => '1 h',
						on_checks_exhausted => 'dead_letter',
						check_function => 'regress_alt.check_b(txmq.message)');
SELECT * FROM pg_temp.alt_topic WHERE name = 'alt_t';
-- bad input: each an error, and the topic as it was
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_nope', notify => true)$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic(NULL, notify => true)$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('bad name', notify => true)$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', max_checks => 0)$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', max_checks => 1001)$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', check_after => '-1 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', check_after => '2 days')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', check_interval => '1 ms')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', on_checks_exhausted => 'ignore')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', check_function => 'abs(int)')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', check_function => 12345678)$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', owner => 12345678)$$);
SELECT * FROM pg_temp.alt_topic WHERE name = 'alt_t';

-- removing the check function ('-') is refused while a half message
-- depends on it alone; one with a producer group does not
SELECT txmq.send_half('alt_t', '{"n": 1}') AS h1 \gset
SELECT txmq.send_half('alt_t', '{"n": 2}', producer_group => 'alt_g') AS h2 \gset
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', check_function => '-')$$);
SELECT txmq.rollback_half(:h1);
SELECT txmq.alter_topic('alt_t', check_function => '-');
SELECT check_function FROM pg_temp.alt_topic WHERE name = 'alt_t';
SELECT txmq.commit_half(:h2);
SELECT txmq.alter_topic('alt_t', check_function => 'regress_alt.check_b(txmq.message)');

-- ---- owner ----
-- to a role that may not own topics
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_q', owner => 'regress_alt_app')$$);
-- to a role the caller is not a member of
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_q', owner => 'regress_alt_out')$$);
-- to a superuser, with a check function: never
RESET ROLE;
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', owner => CURRENT_USER::regrole)$$);
SET ROLE regress_alt_owner;
-- the check function must be one the new owner may run
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_t', owner => 'regress_alt_heir')$$);
SELECT owner FROM pg_temp.alt_topic WHERE name = 'alt_t';
-- a queued message and a grant survive the change of owner
SELECT txmq.send('alt_q', '{"kept": true}') > 0 AS sent;
SELECT txmq.grant('alt_q', 'regress_alt_app', 'receive', 'alt_q');
SELECT txmq.alter_topic('alt_q', owner => 'regress_alt_heir');
SELECT owner FROM pg_temp.alt_topic WHERE name = 'alt_q';
RESET ROLE;
SET ROLE regress_alt_heir;
SELECT payload FROM txmq.receive('alt_q', 'alt_q', lease => '1 min');
RESET ROLE;
-- a superuser may give a topic to anyone
SELECT txmq.alter_topic('alt_q', owner => 'regress_alt_app');
SELECT txmq.alter_topic('alt_q', owner => 'regress_alt_heir');
-- outsiders may change nothing
SET ROLE regress_alt_out;
SELECT pg_temp.core_err($$SELECT txmq.alter_topic('alt_q', notify => false)$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_q', 'alt_q', lease => '1 min')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.grants('alt_q')$$);
RESET ROLE;

-- ---- alter_subscription ----
SET ROLE regress_alt_owner;
SELECT txmq.alter_subscription('alt_t', 's', max_deliveries => 2, lease => '2 min');
SELECT txmq.alter_subscription('alt_t', 's', backoff_base => '5 s', backoff_max => '1 h',
							   ordered => true);
SELECT txmq.alter_subscription('alt_t', 's');
SELECT * FROM pg_temp.alt_sub WHERE topic = 'alt_t';
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_t', 'nope', lease => '1 min')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_nope', 's', lease => '1 min')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_t', NULL, lease => '1 min')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_t', 's', max_deliveries => 0)$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_t', 's', max_deliveries => 1001)$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_t', 's', lease => '5 ms')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_t', 's', lease => '13 h')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_t', 's', backoff_base => '-1 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_t', 's', backoff_max => '8 days')$$);
-- the pair is checked with the value kept: base 5 s > max 1 s
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_t', 's', backoff_max => '1 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.alter_subscription('alt_t', 's', backoff_base => '2 h')$$);
SELECT * FROM pg_temp.alt_sub WHERE topic = 'alt_t';

-- lowering max_deliveries below a message's attempt: its next receive
-- moves it to the dead letters instead of delivering it
SELECT txmq.alter_subscription('alt_t', 's', ordered => false);
SELECT txmq.purge('alt_t', 's') AS purged;
SELECT txmq.send('alt_t', '{"poison": true}') AS p \gset
SELECT msg_id = :p AS got, attempt FROM txmq.receive('alt_t', 's');
SELECT txmq.nack('alt_t', 's', :p, '0');
SELECT msg_id = :p AS got, attempt FROM txmq.receive('alt_t', 's');
SELECT txmq.nack('alt_t', 's', :p, '0');
SELECT txmq.alter_subscription('alt_t', 's', max_deliveries => 1);
SELECT count(*) AS delivered FROM txmq.receive('alt_t', 's');
SELECT msg_id = :p AS dead, attempts FROM txmq.dead_letters('alt_t', 's');
-- a lease taken before a change keeps its expiry; the next uses the new one
SELECT txmq.alter_subscription('alt_t', 's', max_deliveries => 10, lease => '10 min');
SELECT txmq.send('alt_t', '{"n": 3}') AS l \gset
SELECT lease_expires_at - clock_timestamp() BETWEEN '9 min' AND '10 min' AS ten_min
  FROM txmq.receive('alt_t', 's');
SELECT txmq.alter_subscription('alt_t', 's', lease => '1 min');
SELECT txmq.send('alt_t', '{"n": 4}') > 0 AS sent;
SELECT lease_expires_at - clock_timestamp() BETWEEN '30 s' AND '1 min' AS one_min FROM txmq.receive('alt_t', 's');
RESET ROLE;
SELECT m.msg_id = :l AS msg, m.vt - now() > '9 min' AS lease_kept FROM txmq.msg m
  JOIN txmq.subscription s USING (sub_id) JOIN txmq.topic t USING (topic_id)
 WHERE t.name = 'alt_t' AND s.name = 's' ORDER BY m.msg_id;

-- ---- grants() ----
SET ROLE regress_alt_owner;
SELECT txmq.grant('alt_t', 'regress_alt_app', 'send');
SELECT txmq.grant('alt_t', 'regress_alt_app', 'receive', 's');
SELECT txmq.grant('alt_t', 'regress_alt_out', 'receive', 's');
SELECT * FROM txmq.grants('alt_t');
-- all topics the caller owns (or is a member of the owner of)
SELECT * FROM txmq.grants() WHERE topic LIKE 'alt%';
SELECT txmq.revoke('alt_t', 'regress_alt_out', 'receive', 's');
SELECT role, privilege, subscription FROM txmq.grants('alt_t');
SELECT pg_temp.core_err($$SELECT * FROM txmq.grants('alt_nope')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.grants('bad name')$$);
RESET ROLE;
-- grantees see nothing of the list
SET ROLE regress_alt_app;
SELECT pg_temp.core_err($$SELECT * FROM txmq.grants('alt_t')$$);
SELECT count(*) AS listed FROM txmq.grants() WHERE topic LIKE 'alt%';
RESET ROLE;

-- ---- clean up ----
SELECT txmq.drop_topic('alt_t', force => true);
SELECT txmq.drop_topic('alt_q', force => true);
SELECT txmq.drop_topic('alt_half', force => true);
DROP SCHEMA regress_alt CASCADE;
REVOKE EXECUTE ON FUNCTION txmq.create_topic, txmq.create_queue
	FROM regress_alt_owner, regress_alt_heir;
DROP ROLE regress_alt_owner, regress_alt_heir, regress_alt_app, regress_alt_out;
