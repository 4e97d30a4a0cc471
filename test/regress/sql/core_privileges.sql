-- core_privileges: an owner role, an application role with grants on one
-- topic / subscription, and an outsider.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err
GRANT EXECUTE ON FUNCTION pg_temp.core_err(text) TO PUBLIC;

CREATE ROLE regress_core_owner;
CREATE ROLE regress_core_app;
CREATE ROLE regress_core_out;
CREATE ROLE regress_core_member IN ROLE regress_core_app;
GRANT EXECUTE ON FUNCTION txmq.create_topic TO regress_core_owner;
GRANT EXECUTE ON FUNCTION txmq.create_queue
	TO regress_core_owner;

-- PUBLIC may not create topics
SELECT has_function_privilege('regress_core_out', 'txmq.create_topic(text, boolean, regprocedure, interval, interval, int, text, boolean, interval)', 'EXECUTE') AS out_create_topic,
	   has_function_privilege('regress_core_out', 'txmq.create_queue(text, boolean, regprocedure, interval, interval, int, text, int, interval, interval, interval, boolean, boolean, interval, interval, text)', 'EXECUTE') AS out_create_queue;
-- no SECURITY DEFINER function without a pinned search_path
SELECT count(*) AS unpinned_secdef FROM pg_proc
 WHERE pronamespace = 'txmq'::regnamespace AND prosecdef
   AND NOT coalesce(array_to_string(proconfig, ',') LIKE '%search_path=%', false);
-- the tables are not granted to anyone
SELECT c.relname, has_table_privilege('regress_core_app', c.oid, 'SELECT') AS app_select,
	   has_table_privilege('regress_core_out', c.oid, 'SELECT,INSERT,UPDATE,DELETE') AS out_any
  FROM pg_class c WHERE c.relnamespace = 'txmq'::regnamespace AND c.relkind IN ('r', 'S', 'v')
   AND c.relname IN ('topic', 'subscription', 'msg', 'dead_letter', 'half', 'grants',
					 'msg_id_seq', 'stats')
 ORDER BY c.relname;

-- a topic owned by the superuser, for contrast
SELECT txmq.create_queue('core_pv_su');
SELECT txmq.send('core_pv_su', '"su"') > 0 AS sent;

-- ---- the owner ----
SET ROLE regress_core_owner;
SELECT txmq.create_queue('core_pv', max_deliveries => 5);
SELECT txmq.create_subscription('core_pv', 'other');
SELECT txmq.create_queue('core_pv2');
SELECT txmq.send('core_pv', '"o1"') > 0 AS owner_sends;
SELECT payload FROM txmq.receive('core_pv', 'other');
-- an owner has no say over other owners' topics
SELECT pg_temp.core_err($$SELECT txmq.send('core_pv_su', '"x"')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pv_su', 'core_pv_su')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_pv_su', 'mine')$$);
SELECT pg_temp.core_err($$SELECT txmq.purge('core_pv_su')$$);
SELECT pg_temp.core_err($$SELECT txmq.drop_topic('core_pv_su', true)$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('core_pv_su', 'regress_core_owner', 'send')$$);
SELECT topic, subscription FROM txmq.stats WHERE topic LIKE 'core_pv%' ORDER BY 1, 2;
-- grants
SELECT pg_temp.core_err($$SELECT txmq.grant('core_pv', 'regress_core_app', 'admin')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('core_pv', 'regress_core_app', 'receive')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('core_pv', 'regress_core_app', 'send', 'core_pv')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('core_pv', NULL, 'send')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('core_pv', 'regress_core_nobody', 'send')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('core_pv', 'regress_core_app', 'receive', 'nope')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('core_nope', 'regress_core_app', 'send')$$);
SELECT txmq.grant('core_pv', 'regress_core_app', 'send');
SELECT txmq.grant('core_pv', 'regress_core_app', 'send') AS granted_twice;
SELECT txmq.grant('core_pv', 'regress_core_app', 'receive', 'core_pv');
RESET ROLE;

-- ---- the application role ----
SET ROLE regress_core_app;
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_pv_app')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_queue('core_pv_app')$$);
SELECT txmq.send('core_pv', '"a1"') AS id \gset
SELECT count(*) AS batch FROM txmq.send_batch('core_pv', ARRAY['"a2"', '"a3"']::jsonb[]);
SELECT pg_temp.core_err($$SELECT txmq.send('core_pv2', '"x"')$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_pv2', ARRAY['1']::jsonb[])$$);
-- a1 is not received yet: not the app's to ack
SELECT txmq.ack('core_pv', 'core_pv', :id) AS ack_unreceived;
SELECT msg_id AS o1 FROM txmq.receive('core_pv', 'core_pv') \gset
SELECT txmq.ack('core_pv', 'core_pv', :o1) AS acked;
SELECT msg_id AS r FROM txmq.receive('core_pv', 'core_pv') \gset
SELECT txmq.extend_lease('core_pv', 'core_pv', :r, '1 min') IS NOT NULL AS extended;
SELECT txmq.nack('core_pv', 'core_pv', :r, '0');
SELECT msg_id = :r AS again FROM txmq.receive('core_pv', 'core_pv');
SELECT txmq.reject('core_pv', 'core_pv', :r, 'app says no');
SELECT payload, last_error FROM txmq.dead_letters('core_pv', 'core_pv');
SELECT txmq.redrive('core_pv', 'core_pv');
SELECT txmq.ack('core_pv', 'core_pv', ARRAY[:r]) AS ack_ready_redriven;
-- the other subscription and topic are not the app's
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pv', 'other')$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_pv', 'other', 1)$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.dead_letters('core_pv', 'other')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pv2', 'core_pv2')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pv', 'nope')$$);
-- nor administration
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_pv', 'mine')$$);
SELECT pg_temp.core_err($$SELECT txmq.drop_subscription('core_pv', 'core_pv')$$);
SELECT pg_temp.core_err($$SELECT txmq.drop_topic('core_pv', true)$$);
SELECT pg_temp.core_err($$SELECT txmq.purge('core_pv')$$);
SELECT pg_temp.core_err($$SELECT txmq.purge('core_pv', 'core_pv')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('core_pv', 'regress_core_out', 'send')$$);
SELECT pg_temp.core_err($$SELECT txmq.revoke('core_pv', 'regress_core_app', 'send')$$);
-- nor the tables
SELECT pg_temp.core_err($$SELECT * FROM txmq.msg$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.dead_letter$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.topic$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.grants$$);
SELECT pg_temp.core_err($$SELECT nextval('txmq.msg_id_seq')$$);
SELECT pg_temp.core_err($$SELECT txmq._poke_launcher()$$);
-- stats: the topic it may send to (all its subscriptions' counts), no others
SELECT topic, subscription, ready, in_flight FROM txmq.stats WHERE topic LIKE 'core_pv%' ORDER BY 1, 2;
RESET ROLE;

-- a member of the application role inherits its grants
SET ROLE regress_core_member;
SELECT txmq.send('core_pv', '"member"') > 0 AS member_sends;
SELECT count(*) > 0 AS member_receives FROM txmq.receive('core_pv', 'core_pv', 10);
SELECT pg_temp.core_err($$SELECT txmq.send('core_pv2', '"x"')$$);
RESET ROLE;

-- ---- the outsider ----
SET ROLE regress_core_out;
SELECT pg_temp.core_err($$SELECT txmq.create_topic('core_pv_out')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_queue('core_pv_out')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('core_pv', 'out')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('core_pv', '"x"')$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('core_pv', ARRAY['1']::jsonb[])$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pv', 'core_pv')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pv', 'core_pv', wait => '10 s')$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_pv', 'core_pv', 1)$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_pv', 'core_pv', ARRAY[1]::bigint[])$$);
SELECT pg_temp.core_err($$SELECT txmq.nack('core_pv', 'core_pv', 1)$$);
SELECT pg_temp.core_err($$SELECT txmq.reject('core_pv', 'core_pv', 1)$$);
SELECT pg_temp.core_err($$SELECT txmq.extend_lease('core_pv', 'core_pv', 1, '1 min')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.dead_letters('core_pv', 'core_pv')$$);
SELECT pg_temp.core_err($$SELECT txmq.redrive('core_pv', 'core_pv')$$);
SELECT pg_temp.core_err($$SELECT txmq.purge('core_pv')$$);
SELECT pg_temp.core_err($$SELECT txmq.drop_topic('core_pv', true)$$);
SELECT pg_temp.core_err($$SELECT txmq.drop_subscription('core_pv', 'other')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('core_pv', 'regress_core_out', 'send')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.msg$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.dead_letter$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.half$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.subscription$$);
SELECT pg_temp.core_err($$UPDATE txmq.msg SET vt = now()$$);
SELECT pg_temp.core_err($$SELECT txmq._poke_launcher()$$);
SELECT count(*) AS stats_rows FROM txmq.stats WHERE topic LIKE 'core_pv%';
SELECT count(*) AS _stats_rows FROM txmq._stats_rows() WHERE topic LIKE 'core_pv%';
RESET ROLE;

-- ---- revoke takes effect at once (also in a session that cached the grant) ----
SET ROLE regress_core_owner;
SELECT txmq.revoke('core_pv', 'regress_core_app', 'send');
SELECT txmq.revoke('core_pv', 'regress_core_app', 'send') AS revoked_twice;
RESET ROLE;
SET ROLE regress_core_app;
SELECT pg_temp.core_err($$SELECT txmq.send('core_pv', '"after revoke"')$$);
SELECT count(*) >= 0 AS still_receives FROM txmq.receive('core_pv', 'core_pv');
SELECT topic, subscription FROM txmq.stats WHERE topic LIKE 'core_pv%' ORDER BY 1, 2;
RESET ROLE;
SET ROLE regress_core_owner;
SELECT txmq.revoke('core_pv', 'regress_core_app', 'receive', 'core_pv');
RESET ROLE;
SET ROLE regress_core_app;
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pv', 'core_pv')$$);
SELECT count(*) AS stats_rows FROM txmq.stats WHERE topic LIKE 'core_pv%';
RESET ROLE;
-- a grant in a rolled-back transaction does not stick
SET ROLE regress_core_owner;
BEGIN;
SELECT txmq.grant('core_pv', 'regress_core_app', 'send');
ROLLBACK;
RESET ROLE;
SET ROLE regress_core_app;
SELECT pg_temp.core_err($$SELECT txmq.send('core_pv', '"x"')$$);
RESET ROLE;
-- dropping a subscription drops its grants
SET ROLE regress_core_owner;
SELECT txmq.grant('core_pv', 'regress_core_app', 'receive', 'other');
SELECT txmq.drop_subscription('core_pv', 'other');
SELECT txmq.create_subscription('core_pv', 'other');
RESET ROLE;
SET ROLE regress_core_app;
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('core_pv', 'other')$$);
RESET ROLE;

-- ---- clean up ----
SET ROLE regress_core_owner;
SELECT txmq.drop_topic('core_pv', force => true);
SELECT txmq.drop_topic('core_pv2', force => true);
RESET ROLE;
SELECT txmq.drop_topic('core_pv_su', force => true);
SELECT count(*) AS grants_left FROM txmq.grants
 WHERE grantee::text LIKE 'regress_core%';
REVOKE EXECUTE ON FUNCTION txmq.create_topic FROM regress_core_owner;
REVOKE EXECUTE ON FUNCTION txmq.create_queue
	FROM regress_core_owner;
DROP ROLE regress_core_member;
DROP ROLE regress_core_owner;
DROP ROLE regress_core_app;
DROP ROLE regress_core_out;
