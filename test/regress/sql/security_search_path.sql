-- security_search_path: a hostile search_path must not get code run inside
-- txmq, which runs its statements as the extension owner (a superuser),
-- and txmq must not resolve anything through the caller's search_path.
-- Look-alikes come first in the path: operators on int, bigint, text,
-- xid8, interval, timestamptz and jsonb, functions, aggregates and types
-- that RAISE, relations named like txmq's, and temporary tables.  Then
-- every txmq function is used: the core ones (send, receive, settling,
-- dead letters, redrive, a long poll, stats, grants, purge, drop), then
-- half messages, check-back (every outcome: local_xid, check function,
-- producer group, checks exhausted into dead letters), long polls, array
-- acks, purge / drop of a topic with half messages.  The attacker is a
-- non-superuser that owns the topics and the evil schema; another role
-- gets grants.
CREATE ROLE regress_sp_attacker;
CREATE ROLE regress_sp_other;
GRANT EXECUTE ON FUNCTION txmq.create_topic TO regress_sp_attacker;
GRANT EXECUTE ON FUNCTION txmq.create_queue
	TO regress_sp_attacker;
CREATE SCHEMA sp_evil AUTHORIZATION regress_sp_attacker;
-- a check function for the check-back case, made safe the documented way
CREATE FUNCTION public.sp_check(m txmq.message) RETURNS txmq.check_result
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	RETURN CASE WHEN (m.payload->>'answer') = 'commit' THEN 'commit'
				WHEN (m.payload->>'answer') = 'rollback' THEN 'rollback'
				ELSE 'unknown' END;
END $$;
CREATE FUNCTION pg_temp.sp_state(q text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;
SET ROLE regress_sp_attacker;

CREATE FUNCTION sp_evil.trap() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'sp_evil code ran as %', current_user; END $$;
CREATE TYPE sp_evil.check_result AS ENUM ('commit', 'rollback', 'unknown');
-- comparison operators on every type txmq compares
DO $do$
DECLARE
	t text;
	op text;
BEGIN
	FOREACH t IN ARRAY ARRAY['int', 'bigint', 'text', 'xid8', 'interval',
							 'timestamptz', 'boolean', 'jsonb', 'regrole', 'oid',
							 'sp_evil.check_result'] LOOP
		EXECUTE format('CREATE FUNCTION sp_evil.cmp(%s, %s) RETURNS boolean LANGUAGE sql AS %L',
					   t, t, 'SELECT sp_evil.trap()');
		FOREACH op IN ARRAY ARRAY['=', '<>', '<', '<=', '>', '>='] LOOP
			EXECUTE format('CREATE OPERATOR sp_evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = sp_evil.cmp)',
						   op, t, t);
		END LOOP;
	END LOOP;
END
$do$;
-- arithmetic and jsonb / text operators
CREATE FUNCTION sp_evil.plus_i(int, int) RETURNS int LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE OPERATOR sp_evil.+ (LEFTARG = int, RIGHTARG = int, FUNCTION = sp_evil.plus_i);
CREATE FUNCTION sp_evil.plus_b(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE OPERATOR sp_evil.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = sp_evil.plus_b);
CREATE FUNCTION sp_evil.plus_ti(timestamptz, interval) RETURNS timestamptz LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE OPERATOR sp_evil.+ (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = sp_evil.plus_ti);
CREATE OPERATOR sp_evil.- (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = sp_evil.plus_ti);
CREATE FUNCTION sp_evil.minus_tt(timestamptz, timestamptz) RETURNS interval LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE OPERATOR sp_evil.- (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = sp_evil.minus_tt);
CREATE FUNCTION sp_evil.mul_ii(interval, float8) RETURNS interval LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE OPERATOR sp_evil.* (LEFTARG = interval, RIGHTARG = float8, FUNCTION = sp_evil.mul_ii);
CREATE FUNCTION sp_evil.cat(text, text) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE OPERATOR sp_evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = sp_evil.cat);
CREATE FUNCTION sp_evil.arrow(jsonb, text) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE OPERATOR sp_evil.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = sp_evil.arrow);
CREATE FUNCTION sp_evil.anyeq(int, int[]) RETURNS boolean LANGUAGE sql AS 'SELECT sp_evil.trap()';
CREATE OPERATOR sp_evil.@> (LEFTARG = int, RIGHTARG = int[], FUNCTION = sp_evil.anyeq);
-- functions and aggregates named like what a queue implementation calls
DO $do$
DECLARE
	sig text;
BEGIN
	FOREACH sig IN ARRAY ARRAY[
		'now() RETURNS timestamptz', 'clock_timestamp() RETURNS timestamptz',
		'statement_timestamp() RETURNS timestamptz',
		'transaction_timestamp() RETURNS timestamptz',
		'nextval(regclass) RETURNS bigint', 'currval(regclass) RETURNS bigint',
		'setval(regclass, bigint) RETURNS bigint',
		'unnest(anyarray) RETURNS SETOF anyelement',
		'generate_series(bigint, bigint) RETURNS SETOF bigint',
		'random() RETURNS float8',
		'pg_notify(text, text) RETURNS void',
		'pg_xact_status(xid8) RETURNS text',
		'pg_current_xact_id() RETURNS xid8',
		'to_regprocedure(text) RETURNS regprocedure',
		'to_regclass(text) RETURNS regclass',
		'jsonb_typeof(jsonb) RETURNS text',
		'row_to_json(record) RETURNS json', 'lower(text) RETURNS text',
		'length(text) RETURNS int', 'octet_length(text) RETURNS int',
		'array_length(anyarray, int) RETURNS int', 'cardinality(anyarray) RETURNS int',
		'has_function_privilege(oid, oid, text) RETURNS boolean',
		'pg_has_role(oid, oid, text) RETURNS boolean',
		'current_setting(text) RETURNS text', 'set_config(text, text, boolean) RETURNS text',
		'make_interval(int, int, int, int, int, int, float8) RETURNS interval',
		'greatest(bigint, bigint) RETURNS bigint', 'abs(bigint) RETURNS bigint']
	LOOP
		EXECUTE format('CREATE FUNCTION sp_evil.%s LANGUAGE plpgsql AS %L', sig,
					   'BEGIN PERFORM sp_evil.trap(); END');
	END LOOP;
END
$do$;
CREATE FUNCTION sp_evil.agg_sf(bigint, anyelement) RETURNS bigint LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE AGGREGATE sp_evil.count(anyelement) (SFUNC = sp_evil.agg_sf, STYPE = bigint);
CREATE AGGREGATE sp_evil.sum(anyelement) (SFUNC = sp_evil.agg_sf, STYPE = bigint);
CREATE AGGREGATE sp_evil.max(anyelement) (SFUNC = sp_evil.agg_sf, STYPE = bigint);
CREATE FUNCTION sp_evil.agg_star(bigint) RETURNS bigint LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE AGGREGATE sp_evil.count(*) (SFUNC = sp_evil.agg_star, STYPE = bigint);
CREATE FUNCTION sp_evil.agg_ts(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE AGGREGATE sp_evil.min(timestamptz) (SFUNC = sp_evil.agg_ts, STYPE = timestamptz);
CREATE FUNCTION sp_evil.agg_arr(anyarray, anyelement) RETURNS anyarray LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE AGGREGATE sp_evil.array_agg(anyelement) (SFUNC = sp_evil.agg_arr, STYPE = anyarray);
CREATE AGGREGATE sp_evil.jsonb_agg(anyelement) (SFUNC = sp_evil.agg_arr, STYPE = anyarray);
CREATE FUNCTION sp_evil.agg_bigints(bigint[], bigint) RETURNS bigint[] LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE AGGREGATE sp_evil.array_agg(bigint) (SFUNC = sp_evil.agg_bigints, STYPE = bigint[]);
CREATE FUNCTION sp_evil.format(text, VARIADIC text[]) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
CREATE FUNCTION sp_evil.jsonb_build_object(VARIADIC text[]) RETURNS jsonb LANGUAGE plpgsql AS
	$$BEGIN PERFORM sp_evil.trap(); RETURN NULL; END$$;
-- types and relations named like txmq's
CREATE TYPE sp_evil.message AS (x int);
CREATE TYPE sp_evil.delivery AS (x int);
CREATE TABLE sp_evil.msg (x int);
CREATE TABLE sp_evil.half (x int);
CREATE TABLE sp_evil.topic (x int);
CREATE TABLE sp_evil.subscription (x int);
CREATE TABLE sp_evil.dead_letter (x int);
CREATE TABLE sp_evil.grants (x int);
CREATE SEQUENCE sp_evil.msg_id_seq;
CREATE SEQUENCE sp_evil.topic_id_seq;
CREATE SEQUENCE sp_evil.sub_id_seq;
-- temporary look-alikes, to be put first in the path
CREATE TEMP TABLE msg (x int);
CREATE TEMP TABLE half (x int);
CREATE TEMP TABLE topic (x int);
CREATE TEMP TABLE subscription (x int);
CREATE TEMP SEQUENCE msg_id_seq;

-- the traps work
SET search_path = pg_temp, sp_evil, pg_catalog;
SELECT 1 = 1;
SELECT 1::bigint < 2::bigint;
SELECT now() IS NULL;
SELECT count(*) FROM (VALUES (1)) v;
SELECT format('%s', 'x');
SELECT 'a'::text || 'b'::text;
SELECT '{"a": 1}'::jsonb ->> 'a';
SELECT pg_current_xact_id() = pg_current_xact_id();

-- ---- the core functions, with the evil schema first ----
-- (the test's own queries spell pg_catalog.count and OPERATOR(pg_catalog.>))
SELECT txmq.create_queue('core_sp', max_deliveries => 2, lease => '1 min');
SELECT txmq.create_topic('core_sp2');
SELECT txmq.create_subscription('core_sp2', 's');
SELECT txmq.send('core_sp', '{"a": 1}', '{"h": 1}', 'k') AS id \gset
SELECT pg_catalog.count(*) FROM txmq.send_batch('core_sp', ARRAY['1', '2']::jsonb[], delay => '1 h');
SELECT txmq.send('core_sp2', '"x"', delay => '100 ms') OPERATOR(pg_catalog.>) 0 AS sent;
SELECT payload, headers, key, attempt FROM txmq.receive('core_sp', 'core_sp');
SELECT txmq.extend_lease('core_sp', 'core_sp', :id, '2 min') IS NOT NULL AS extended;
SELECT txmq.nack('core_sp', 'core_sp', :id, '0', 'err');
SELECT attempt FROM txmq.receive('core_sp', 'core_sp', 5, '1 min');
SELECT txmq.ack('core_sp', 'core_sp', :id);
SELECT txmq.ack('core_sp', 'core_sp', ARRAY[:id]);
SELECT txmq.send('core_sp', '"r"') AS r \gset
BEGIN;
SELECT pg_catalog.count(*) FROM txmq.receive('core_sp', 'core_sp');
SELECT txmq.reject('core_sp', 'core_sp', :r, 'bad');
COMMIT;
SELECT payload, attempts, last_error FROM txmq.dead_letters('core_sp', 'core_sp');
SELECT txmq.redrive('core_sp', 'core_sp', ARRAY[:r]);
SELECT txmq.redrive('core_sp', 'core_sp');
BEGIN;
SELECT pg_catalog.count(*) FROM txmq.receive('core_sp', 'core_sp');
ROLLBACK;
SELECT pg_catalog.count(*) FROM txmq.receive('core_sp', 'core_sp');
SELECT txmq.nack('core_sp', 'core_sp', :r);
-- long poll: waits for the delayed message of core_sp2
SELECT payload FROM txmq.receive('core_sp2', 's', wait => '5 s');
SELECT topic, subscription, ready, delayed, in_flight, dead, sent
  FROM txmq.stats WHERE topic LIKE 'core_sp%' ORDER BY 1, 2;
SELECT * FROM txmq._stats_rows() WHERE false;
SELECT txmq.grant('core_sp', 'regress_sp_other', 'send');
SELECT txmq.grant('core_sp', 'regress_sp_other', 'receive', 'core_sp');
SELECT txmq.revoke('core_sp', 'regress_sp_other', 'receive', 'core_sp');
SELECT txmq.revoke('core_sp', 'regress_sp_other', 'send');
SELECT txmq.purge('core_sp', 'core_sp');
SELECT txmq.purge('core_sp');
SELECT txmq.drop_subscription('core_sp2', 's');
SELECT txmq.drop_topic('core_sp2');
SELECT txmq.drop_topic('core_sp', force => true);
-- errors are reported normally too
SELECT txmq.drop_topic('core_sp');

-- ---- half messages and the rest, with the evil schema first ----
SELECT txmq.create_topic('sp_half', check_function => 'public.sp_check(txmq.message)',
						 check_after => '1 h', check_interval => '1 s', max_checks => 2,
						 on_checks_exhausted => 'dead_letter');
SELECT txmq.create_subscription('sp_half', 'a', max_deliveries => 2, lease => '1 min',
								backoff_base => '10 ms', backoff_max => '20 ms');
SELECT txmq.create_subscription('sp_half', 'b');
SELECT txmq.create_queue('sp_group', check_after => '1 h');
-- half messages resolved by the producer
SELECT txmq.send_half('sp_half', '{"n": 1}', '{"h": 1}', 'k', 'sp_producers') AS h1 \gset
SELECT txmq.send_half('sp_half', '{"n": 2}', producer_group => 'sp_producers') AS h2 \gset
SELECT txmq.commit_half(:h1);
SELECT txmq.commit_half(:h1);
SELECT txmq.rollback_half(:h2);
SELECT txmq.rollback_half(:h2);
-- half messages for check-back, each outcome
SELECT txmq.send_half('sp_half', '{"answer": "commit"}') AS c1 \gset
SELECT txmq.send_half('sp_half', '{"answer": "rollback"}') AS c2 \gset
SELECT txmq.send_half('sp_half', '{"answer": "unknown"}') AS c3 \gset
SELECT txmq.send_half('sp_group', '{"n": 3}', producer_group => 'sp_producers') AS g1 \gset
BEGIN;
SELECT txmq.send_half('sp_half', '{"n": 4}', local_xid => pg_catalog.pg_current_xact_id()) AS x1 \gset
COMMIT;
SELECT topic, key, check_count, last_result FROM txmq.half_messages() ORDER BY msg_id;
SELECT topic, payload FROM txmq.pending_checks('sp_producers') ORDER BY msg_id;
RESET ROLE;
SET search_path = pg_temp, sp_evil, pg_catalog;
SELECT txmq._check_half(:c1) AS c1, txmq._check_half(:c2) AS c2,
	   txmq._check_half(:c3) AS c3_first, txmq._check_half(:g1) AS g1,
	   txmq._check_half(:x1) AS x1;
SELECT txmq._check_half(:c3) AS c3_exhausted;
SET ROLE regress_sp_attacker;
SET search_path = pg_temp, sp_evil, pg_catalog;
SELECT topic, payload FROM txmq.pending_checks('sp_producers') ORDER BY msg_id;
SELECT txmq.rollback_half(:g1);
-- consuming: long poll, array ack, nack into dead letters, redrive
SELECT payload FROM txmq.receive('sp_half', 'a', 10, wait => '1 s');
SELECT txmq.extend_lease('sp_half', 'a', :h1, '2 min') IS NOT NULL AS extended;
SELECT txmq.nack('sp_half', 'a', :h1, '0', 'again');
SELECT txmq.nack('sp_half', 'a', :c1, '1 h', 'again');
SELECT payload, attempt FROM txmq.receive('sp_half', 'a', 10, wait => '2 s') ORDER BY msg_id;
SELECT txmq.nack('sp_half', 'a', :h1, '0', 'last');
SELECT payload, attempts, last_error FROM txmq.dead_letters('sp_half', 'a') ORDER BY msg_id;
SELECT txmq.redrive('sp_half', 'a', ARRAY[:h1, :c3]::bigint[]);
BEGIN;
SELECT pg_catalog.count(*) FROM txmq.receive('sp_half', 'a', 10);
SELECT txmq.ack('sp_half', 'a', ARRAY[:h1, :c3, -1]::bigint[]);
COMMIT;
SELECT payload FROM txmq.receive('sp_half', 'b', 10) ORDER BY msg_id;
SELECT txmq.reject('sp_half', 'b', :h1);
SELECT pg_catalog.count(*) FROM txmq.dead_letters('sp_half', 'b');
SELECT topic, subscription, ready, delayed, in_flight, dead, half_pending, checks
  FROM txmq.stats WHERE topic OPERATOR(pg_catalog.~~) 'sp\_%' ORDER BY 1, 2;
\set q 'SELECT txmq.commit_half(' :c2 ')'
SELECT pg_temp.sp_state(:'q') AS commit_rolled_back;
-- a topic with unresolved half messages: purge, refuse to drop, force
SELECT txmq.send_half('sp_group', '{"n": 5}', producer_group => 'sp_producers') AS g2 \gset
SELECT txmq.purge('sp_half', 'a');
SELECT txmq.purge('sp_half');
SELECT txmq.drop_subscription('sp_half', 'b');
SELECT txmq.drop_topic('sp_half');
SELECT txmq.drop_topic('sp_group');
SELECT txmq.drop_topic('sp_group', force => true);
-- errors are ordinary errors too
\set q 'SELECT txmq.commit_half(' :g2 ')'
SELECT pg_temp.sp_state(:'q') AS commit_dropped;
SELECT txmq.drop_topic('sp_group');

RESET search_path;
RESET ROLE;
-- nothing landed in the look-alikes
SELECT (SELECT count(*) FROM sp_evil.msg) + (SELECT count(*) FROM sp_evil.half)
	 + (SELECT count(*) FROM sp_evil.topic) + (SELECT count(*) FROM sp_evil.subscription)
	 + (SELECT count(*) FROM sp_evil.dead_letter) + (SELECT count(*) FROM sp_evil.grants)
	 + (SELECT count(*) FROM pg_temp.msg) + (SELECT count(*) FROM pg_temp.half)
	 + (SELECT count(*) FROM pg_temp.topic) AS evil_rows;
SELECT last_value AS evil_sequence, is_called FROM sp_evil.msg_id_seq;
SELECT count(*) AS half_left FROM txmq.half WHERE msg_id IN (:h1, :h2, :c1, :c2, :c3, :g1, :g2, :x1);
DROP TABLE pg_temp.msg, pg_temp.half, pg_temp.topic, pg_temp.subscription;
DROP SEQUENCE pg_temp.msg_id_seq;
SET client_min_messages = warning;
DROP SCHEMA sp_evil CASCADE;
RESET client_min_messages;
DROP FUNCTION public.sp_check(txmq.message);
DROP ROLE regress_sp_other;
REVOKE EXECUTE ON FUNCTION txmq.create_topic FROM regress_sp_attacker;
REVOKE EXECUTE ON FUNCTION txmq.create_queue
	FROM regress_sp_attacker;
DROP ROLE regress_sp_attacker;
