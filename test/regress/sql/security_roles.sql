-- security_roles: the privilege model (SPEC section 5) with three roles,
-- extending core_privileges to half messages, check-back, the internal
-- functions, sequences, the stats view and listings that could leak
-- payloads.
--   regress_sec_admin  EXECUTE on create_topic / create_queue; owns topics
--   regress_sec_app    send on sec_t, receive on sec_t/sec_s (txmq.grant)
--   regress_sec_out    nothing
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err
GRANT EXECUTE ON FUNCTION pg_temp.core_err(text) TO PUBLIC;

CREATE ROLE regress_sec_admin;
CREATE ROLE regress_sec_app;
CREATE ROLE regress_sec_out;
GRANT EXECUTE ON FUNCTION txmq.create_topic TO regress_sec_admin;
GRANT EXECUTE ON FUNCTION txmq.create_queue
	TO regress_sec_admin;

-- txmq has no SECURITY DEFINER function at all; the internal functions are
-- not executable by PUBLIC
SELECT count(*) AS security_definer_functions FROM pg_proc
 WHERE pronamespace = 'txmq'::regnamespace AND prosecdef;
SELECT p.oid::regprocedure AS function,
	   has_function_privilege('regress_sec_out', p.oid, 'EXECUTE') AS outsider_may_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'txmq'::regnamespace AND p.proname LIKE '\_%'
 ORDER BY 1::text;
-- nothing in the schema but the stats view is granted to PUBLIC
SELECT c.relname, c.relkind,
	   has_table_privilege('regress_sec_out', c.oid, 'SELECT') AS sel,
	   has_table_privilege('regress_sec_out', c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE') AS modify
  FROM pg_class c
 WHERE c.relnamespace = 'txmq'::regnamespace AND c.relkind IN ('r', 'S', 'v', 'm', 'p')
 ORDER BY c.relname;
SELECT has_sequence_privilege('regress_sec_out', 'txmq.msg_id_seq', 'USAGE,SELECT,UPDATE') AS seq;

-- a check function that reports who it runs as
CREATE TABLE public.sec_check_calls (who text, sess text);
GRANT INSERT ON public.sec_check_calls TO regress_sec_admin;
CREATE FUNCTION public.sec_check(m txmq.message) RETURNS txmq.check_result
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.sec_check_calls VALUES (current_user, session_user);
	RETURN 'commit';
END $$;
-- one that tries to become someone else
CREATE FUNCTION public.sec_check_escalate(m txmq.message) RETURNS txmq.check_result
LANGUAGE plpgsql AS $$
BEGIN
	SET ROLE NONE;
	EXECUTE 'SET SESSION AUTHORIZATION ' || quote_ident(session_user);
	INSERT INTO public.sec_check_calls VALUES ('escalated: ' || current_user, session_user);
	RETURN 'commit';
END $$;

-- ---- the admin ----
SET ROLE regress_sec_admin;
SELECT txmq.create_topic('sec_t', check_function => 'public.sec_check(txmq.message)',
						 check_after => '1 h');
SELECT txmq.create_subscription('sec_t', 'sec_s');
SELECT txmq.create_subscription('sec_t', 'sec_other');
SELECT txmq.create_queue('sec_u', check_function => 'public.sec_check_escalate(txmq.message)',
						 check_after => '1 h');
SELECT txmq.grant('sec_t', 'regress_sec_app', 'send');
SELECT txmq.grant('sec_t', 'regress_sec_app', 'receive', 'sec_s');
SELECT txmq.send('sec_t', '{"secret": "t"}') AS t1 \gset
SELECT txmq.send('sec_u', '{"secret": "u"}') AS u1 \gset
SELECT txmq.send_half('sec_t', '{"secret": "half t"}', producer_group => 'sec_admins') AS ht \gset
SELECT txmq.send_half('sec_u', '{"secret": "half u"}', producer_group => 'sec_admins') AS hu \gset
SELECT txmq.send_half('sec_u', '{"secret": "half u2"}') AS hu2 \gset
BEGIN;
SELECT count(*) FROM txmq.receive('sec_u', 'sec_u');
SELECT txmq.reject('sec_u', 'sec_u', :u1, 'dead secret');
COMMIT;
SELECT topic, subscription, ready, dead, half_pending FROM txmq.stats
 WHERE topic LIKE 'sec\_%' ORDER BY 1, 2;
RESET ROLE;
-- check hu once (its check function fails: unknown), so that the producer
-- group 'sec_admins' has a pending check that shows its payload
SET client_min_messages = error;
SELECT txmq._check_half(:hu) AS sec_u_half;
RESET client_min_messages;
SET ROLE regress_sec_admin;
SELECT topic, payload FROM txmq.pending_checks('sec_admins');
RESET ROLE;

-- ---- the outsider: nothing, anywhere ----
SET ROLE regress_sec_out;
-- administration
SELECT pg_temp.core_err($$SELECT txmq.create_topic('sec_x')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_queue('sec_x')$$);
SELECT pg_temp.core_err($$SELECT txmq.create_subscription('sec_t', 'sec_x')$$);
SELECT pg_temp.core_err($$SELECT txmq.drop_subscription('sec_t', 'sec_s')$$);
SELECT pg_temp.core_err($$SELECT txmq.drop_topic('sec_t', true)$$);
SELECT pg_temp.core_err($$SELECT txmq.purge('sec_t')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('sec_t', 'regress_sec_out', 'send')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('sec_t', 'regress_sec_out', 'receive', 'sec_s')$$);
SELECT pg_temp.core_err($$SELECT txmq.revoke('sec_t', 'regress_sec_app', 'send')$$);
-- producing
SELECT pg_temp.core_err($$SELECT txmq.send('sec_t', '1')$$);
SELECT pg_temp.core_err($$SELECT txmq.send_batch('sec_t', ARRAY['1']::jsonb[])$$);
SELECT pg_temp.core_err($$SELECT txmq.send_half('sec_t', '1', producer_group => 'g')$$);
SELECT pg_temp.core_err(format('SELECT txmq.commit_half(%s)', :ht));
SELECT pg_temp.core_err(format('SELECT txmq.rollback_half(%s)', :ht));
-- consuming
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('sec_t', 'sec_s')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('sec_t', 'sec_s', 1, '1 min', '1 s')$$);
SELECT pg_temp.core_err(format('SELECT txmq.ack(%L, %L, %s)', 'sec_t', 'sec_s', :t1));
SELECT pg_temp.core_err(format('SELECT txmq.ack(%L, %L, ARRAY[%s]::bigint[])', 'sec_t', 'sec_s', :t1));
SELECT pg_temp.core_err(format('SELECT txmq.nack(%L, %L, %s)', 'sec_t', 'sec_s', :t1));
SELECT pg_temp.core_err(format('SELECT txmq.reject(%L, %L, %s)', 'sec_t', 'sec_s', :t1));
SELECT pg_temp.core_err(format('SELECT txmq.extend_lease(%L, %L, %s, %L)', 'sec_t', 'sec_s', :t1, '1 min'));
SELECT pg_temp.core_err($$SELECT * FROM txmq.dead_letters('sec_u', 'sec_u')$$);
SELECT pg_temp.core_err($$SELECT txmq.redrive('sec_u', 'sec_u')$$);
-- listings show nothing of others' topics
SELECT count(*) AS pending_checks FROM txmq.pending_checks('sec_admins');
SELECT count(*) AS half_messages FROM txmq.half_messages();
SELECT pg_temp.core_err($$SELECT * FROM txmq.half_messages('sec_t')$$);
SELECT count(*) AS stats_rows FROM txmq.stats WHERE topic LIKE 'sec\_%';
SELECT count(*) AS _stats_rows FROM txmq._stats_rows() WHERE topic LIKE 'sec\_%';
-- internal functions: check-back, the launcher
SELECT pg_temp.core_err(format('SELECT txmq._check_half(%s)', :ht));
SELECT pg_temp.core_err($$SELECT txmq._poke_launcher()$$);
-- the tables, the sequences
SELECT pg_temp.core_err($$SELECT payload FROM txmq.msg$$);
SELECT pg_temp.core_err($$SELECT payload FROM txmq.dead_letter$$);
SELECT pg_temp.core_err($$SELECT payload FROM txmq.half$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.topic$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.subscription$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.grants$$);
SELECT pg_temp.core_err($$INSERT INTO txmq.grants SELECT topic_id, 0, 'regress_sec_out', 'send' FROM txmq.topic$$);
SELECT pg_temp.core_err($$DELETE FROM txmq.msg$$);
SELECT pg_temp.core_err($$TRUNCATE txmq.msg$$);
SELECT pg_temp.core_err($$SELECT nextval('txmq.msg_id_seq')$$);
SELECT pg_temp.core_err($$SELECT setval('txmq.msg_id_seq', 1)$$);
SELECT pg_temp.core_err($$SELECT last_value FROM txmq.msg_id_seq$$);
COPY txmq.msg TO STDOUT;
COPY (SELECT payload FROM txmq.half) TO STDOUT;
-- nor can it redefine what txmq uses
SELECT pg_temp.core_err($$CREATE FUNCTION txmq.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT NULL'$$);
SELECT pg_temp.core_err($$CREATE TABLE txmq.evil (x int)$$);
SELECT pg_temp.core_err($$CREATE VIEW txmq.evil AS SELECT 1$$);
SELECT pg_temp.core_err($$ALTER TABLE txmq.msg OWNER TO regress_sec_out$$);
SELECT pg_temp.core_err($$ALTER TYPE txmq.check_result ADD VALUE 'evil'$$);
SELECT pg_temp.core_err($$CREATE OR REPLACE VIEW txmq.stats AS SELECT 1$$);
SELECT pg_temp.core_err($$CREATE OR REPLACE FUNCTION txmq._check_half(msg_id bigint) RETURNS text LANGUAGE sql AS 'SELECT NULL'$$);
RESET ROLE;

-- ---- the application role: only what it was granted ----
SET ROLE regress_sec_app;
SELECT txmq.send('sec_t', '{"app": 1}') > 0 AS sends_sec_t;
SELECT txmq.send_half('sec_t', '{"app": "half"}', producer_group => 'sec_apps') AS happ \gset
SELECT txmq.commit_half(:happ);
SELECT pg_temp.core_err($$SELECT txmq.send('sec_u', '1')$$);
SELECT pg_temp.core_err($$SELECT txmq.send_half('sec_u', '1', producer_group => 'g')$$);
SELECT pg_temp.core_err(format('SELECT txmq.commit_half(%s)', :hu));
SELECT pg_temp.core_err(format('SELECT txmq.rollback_half(%s)', :hu));
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('sec_u', 'sec_u')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('sec_t', 'sec_other')$$);
SELECT pg_temp.core_err(format('SELECT txmq.ack(%L, %L, %s)', 'sec_t', 'sec_other', :t1));
SELECT pg_temp.core_err(format('SELECT txmq.nack(%L, %L, %s)', 'sec_u', 'sec_u', :u1));
SELECT pg_temp.core_err($$SELECT * FROM txmq.dead_letters('sec_u', 'sec_u')$$);
SELECT pg_temp.core_err($$SELECT txmq.redrive('sec_u', 'sec_u')$$);
SELECT pg_temp.core_err($$SELECT txmq.purge('sec_t', 'sec_s')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('sec_t', 'regress_sec_out', 'receive', 'sec_s')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.half_messages('sec_u')$$);
SELECT pg_temp.core_err(format('SELECT txmq._check_half(%s)', :ht));
SELECT pg_temp.core_err($$SELECT payload FROM txmq.msg$$);
-- its own subscription works; the listings show its topic only
SELECT payload FROM txmq.receive('sec_t', 'sec_s', 10) ORDER BY msg_id;
SELECT topic, key, check_count FROM txmq.half_messages() ORDER BY msg_id;
SELECT topic, payload FROM txmq.pending_checks('sec_admins');
SELECT topic, subscription, ready, in_flight FROM txmq.stats
 WHERE topic LIKE 'sec\_%' ORDER BY 1, 2;
RESET ROLE;

-- ---- check-back runs the check function as the topic's owner ----
SELECT txmq._check_half(:ht) AS sec_t_half;
SELECT who, sess = current_user AS session_is_caller FROM public.sec_check_calls;
-- a check function cannot change its identity: the error counts as unknown
SET client_min_messages = error;
SELECT txmq._check_half(:hu2) AS sec_u_half_escalating;
RESET client_min_messages;
SELECT last_result, check_count FROM txmq.half_messages('sec_u') WHERE msg_id = :hu2;
SELECT count(*) AS escalated FROM public.sec_check_calls WHERE who LIKE 'escalated%';

-- the outsider still sees nothing after all that
SET ROLE regress_sec_out;
SELECT count(*) AS stats_rows FROM txmq.stats WHERE topic LIKE 'sec\_%';
SELECT count(*) AS half_rows FROM txmq.half_messages();
RESET ROLE;

-- ---- clean up ----
SET ROLE regress_sec_admin;
SELECT txmq.drop_topic('sec_t', force => true);
SELECT txmq.drop_topic('sec_u', force => true);
RESET ROLE;
DROP FUNCTION public.sec_check(txmq.message);
DROP FUNCTION public.sec_check_escalate(txmq.message);
DROP TABLE public.sec_check_calls;
REVOKE EXECUTE ON FUNCTION txmq.create_topic FROM regress_sec_admin;
REVOKE EXECUTE ON FUNCTION txmq.create_queue
	FROM regress_sec_admin;
DROP ROLE regress_sec_admin;
DROP ROLE regress_sec_app;
DROP ROLE regress_sec_out;
