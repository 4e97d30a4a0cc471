/* txmq--0.3--0.4.sql */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.4'" to load this file. \quit

/* ---- Receipts: settling only the delivery one was given (issue 14) ---- */

/*
 * Functions issue 14 gives a new last parameter (here and in the next
 * section) are dropped and created again, which resets their ACLs to
 * what a fresh install has: say which GRANTs (and REVOKEs from PUBLIC) to
 * run again, as 0.3 did for create_topic and friends (README "Upgrade");
 * re-granting them here would make them the extension's initial
 * privileges, which pg_dump leaves out.  added is the type of the new
 * parameter, which names the new function.
 */
DO $$
DECLARE
	r record;
	todo text := '';
BEGIN
	FOR r IN
		WITH f(old, added, public_default) AS (VALUES
			('txmq.ack(pg_catalog.text, pg_catalog.text, pg_catalog.int8)', 'uuid', true),
			('txmq.ack(pg_catalog.text, pg_catalog.text, pg_catalog.int8[])', 'uuid[]', true),
			('txmq.nack(pg_catalog.text, pg_catalog.text, pg_catalog.int8, pg_catalog.interval, pg_catalog.text)', 'uuid', true),
			('txmq.reject(pg_catalog.text, pg_catalog.text, pg_catalog.int8, pg_catalog.text)', 'uuid', true),
			('txmq.extend_lease(pg_catalog.text, pg_catalog.text, pg_catalog.int8, pg_catalog.interval)', 'uuid', true),
			('txmq.send(pg_catalog.text, pg_catalog.jsonb, pg_catalog.jsonb, pg_catalog.text, pg_catalog.interval)', 'text', true),
			('txmq.send_batch(pg_catalog.text, pg_catalog.jsonb[], pg_catalog.jsonb, pg_catalog.text, pg_catalog.interval)', 'text[]', true),
			('txmq.send_half(pg_catalog.text, pg_catalog.jsonb, pg_catalog.jsonb, pg_catalog.text, pg_catalog.text, pg_catalog.xid8)', 'text', true),
			('txmq.create_topic(pg_catalog.text, pg_catalog.bool, pg_catalog.regprocedure, pg_catalog.interval, pg_catalog.interval, pg_catalog.int4, pg_catalog.text, pg_catalog.bool)', 'interval', false),
			('txmq.create_queue(pg_catalog.text, pg_catalog.bool, pg_catalog.regprocedure, pg_catalog.interval, pg_catalog.interval, pg_catalog.int4, pg_catalog.text, pg_catalog.int4, pg_catalog.interval, pg_catalog.interval, pg_catalog.interval, pg_catalog.bool, pg_catalog.bool)', 'interval', false),
			('txmq.alter_topic(pg_catalog.text, pg_catalog.bool, pg_catalog.regprocedure, pg_catalog.interval, pg_catalog.interval, pg_catalog.int4, pg_catalog.text, pg_catalog.regrole)', 'interval', true)),
		fn AS (
			SELECT pg_catalog.format('txmq.%I(%s, %s)', p.proname,
					   pg_catalog.oidvectortypes(p.proargtypes), f.added) AS name,
				   p.proacl, p.proowner, f.public_default
			  FROM f JOIN pg_catalog.pg_proc p
				ON p.oid OPERATOR(pg_catalog.=) f.old::pg_catalog.regprocedure)
		SELECT pg_catalog.format(E'\nGRANT EXECUTE ON FUNCTION %s TO %s%s;', fn.name,
				   CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
						ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
				   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS stmt
		  FROM fn, LATERAL pg_catalog.aclexplode(fn.proacl) a
		 WHERE a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
		   AND a.grantee OPERATOR(pg_catalog.<>) fn.proowner
		   AND NOT (fn.public_default AND a.grantee OPERATOR(pg_catalog.=) 0)
		UNION ALL
		SELECT pg_catalog.format(E'\nREVOKE EXECUTE ON FUNCTION %s FROM PUBLIC;', fn.name)
		  FROM fn
		 WHERE fn.public_default AND fn.proacl IS NOT NULL
		   AND NOT EXISTS (SELECT FROM pg_catalog.aclexplode(fn.proacl) a
							WHERE a.grantee OPERATOR(pg_catalog.=) 0)
		ORDER BY 1
	LOOP
		todo := todo || r.stmt;
	END LOOP;
	IF todo OPERATOR(pg_catalog.<>) '' THEN
		RAISE WARNING 'txmq 0.4 re-creates functions that gained a parameter: privileges granted on them are reset'
			USING DETAIL = 'Run these after the update:' || todo,
				  HINT = 'See README.md, "Upgrade".';
	END IF;
END $$;

-- A lease's receipt (receive.c): which delivery may settle it.
ALTER TABLE txmq.msg ADD COLUMN receipt uuid;
ALTER TYPE txmq.delivery ADD ATTRIBUTE receipt uuid;

DROP FUNCTION txmq.ack(text, text, bigint);
DROP FUNCTION txmq.ack(text, text, bigint[]);
DROP FUNCTION txmq.nack(text, text, bigint, interval, text);
DROP FUNCTION txmq.reject(text, text, bigint, text);
DROP FUNCTION txmq.extend_lease(text, text, bigint, interval);

CREATE FUNCTION txmq.ack(topic text, subscription text, msg_id bigint,
						 receipt uuid DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'txmq_ack' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.ack(topic text, subscription text, msg_ids bigint[],
						 receipts uuid[] DEFAULT NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'txmq_ack_array' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.nack(topic text, subscription text, msg_id bigint,
						  delay interval DEFAULT NULL, error text DEFAULT NULL,
						  receipt uuid DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'txmq_nack' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.reject(topic text, subscription text, msg_id bigint,
							error text DEFAULT NULL, receipt uuid DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'txmq_reject' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.extend_lease(topic text, subscription text,
								  msg_id bigint, lease interval,
								  receipt uuid DEFAULT NULL)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'txmq_extend_lease' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION txmq.ack(text, text, bigint, uuid) IS
	'Settle a message the caller holds (received in this transaction, or leased), only the delivery receipt names if given; false if it holds no such message';
COMMENT ON FUNCTION txmq.ack(text, text, bigint[], uuid[]) IS
	'Settle the held messages among msg_ids (each only in the delivery of the receipt at its place, if receipts are given); returns how many were settled';
COMMENT ON FUNCTION txmq.nack(text, text, bigint, interval, text, uuid) IS
	'Give a held message back (only the delivery receipt names, if given), due after delay or the subscription''s backoff; dead-lettered when its deliveries are used up';
COMMENT ON FUNCTION txmq.reject(text, text, bigint, text, uuid) IS
	'Move a held message straight to the dead letters (poison); only the delivery receipt names, if given';
COMMENT ON FUNCTION txmq.extend_lease(text, text, bigint, interval, uuid) IS
	'Set a held message''s lease to end lease from now (only the delivery receipt names, if given); NULL if the caller does not hold it';

/* ---- Idempotent send: dedup_window, dedup_key (issue 14) ---- */

/*
 * A topic's dedup_window (NULL: none), and the dedup keys sent to such
 * topics within it (src/send.c): a send with a key that a message took
 * less than the window ago enqueues nothing and returns that message's
 * id.  half marks keys taken by half messages, which give them back when
 * rolled back (dedup_half_idx finds them); the worker deletes keys whose
 * window has passed along dedup_expires_idx.  Keys compare byte for byte.
 * No foreign key to txmq.topic: it would lock the topic's row on every
 * send; the keys of a dropped topic go when their window ends.
 */
ALTER TABLE txmq.topic ADD COLUMN dedup_window interval;
CREATE TABLE txmq.dedup (
	topic_id int NOT NULL,
	key text COLLATE pg_catalog."C" NOT NULL,
	msg_id bigint NOT NULL,
	expires_at timestamptz NOT NULL,
	half boolean NOT NULL,
	PRIMARY KEY (topic_id, key)
);
CREATE INDEX dedup_expires_idx ON txmq.dedup (expires_at);
CREATE INDEX dedup_half_idx ON txmq.dedup (msg_id) WHERE half;
SELECT pg_catalog.pg_extension_config_dump('txmq.dedup', '');
REVOKE ALL ON txmq.dedup FROM PUBLIC;

DROP FUNCTION txmq.send(text, jsonb, jsonb, text, interval);
DROP FUNCTION txmq.send_batch(text, jsonb[], jsonb, text, interval);
DROP FUNCTION txmq.send_half(text, jsonb, jsonb, text, text, xid8);
DROP FUNCTION txmq.create_queue(text, boolean, regprocedure, interval, interval,
								int, text, int, interval, interval, interval,
								boolean, boolean);
DROP FUNCTION txmq.create_topic(text, boolean, regprocedure, interval,
								interval, int, text, boolean);
DROP FUNCTION txmq.alter_topic(text, boolean, regprocedure, interval,
							   interval, int, text, regrole);

CREATE FUNCTION txmq.send(topic text, payload jsonb, headers jsonb DEFAULT NULL,
						  key text DEFAULT NULL, delay interval DEFAULT NULL,
						  dedup_key text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txmq_send' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.send_batch(topic text, payloads jsonb[],
								headers jsonb DEFAULT NULL,
								key text DEFAULT NULL,
								delay interval DEFAULT NULL,
								dedup_keys text[] DEFAULT NULL)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'txmq_send_batch' LANGUAGE C VOLATILE ROWS 100;

CREATE FUNCTION txmq.send_half(topic text, payload jsonb,
							   headers jsonb DEFAULT NULL,
							   key text DEFAULT NULL,
							   producer_group text DEFAULT NULL,
							   local_xid xid8 DEFAULT NULL,
							   dedup_key text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txmq_send_half' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.create_topic(
	topic text,
	notify boolean DEFAULT true,
	check_function regprocedure DEFAULT NULL,
	check_after interval DEFAULT '6 s',
	check_interval interval DEFAULT '30 s',
	max_checks int DEFAULT 15,
	on_checks_exhausted text DEFAULT 'rollback',
	if_not_exists boolean DEFAULT false,
	dedup_window interval DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_create_topic' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.create_queue(
	queue text,
	notify boolean DEFAULT true,
	check_function regprocedure DEFAULT NULL,
	check_after interval DEFAULT '6 s',
	check_interval interval DEFAULT '30 s',
	max_checks int DEFAULT 15,
	on_checks_exhausted text DEFAULT 'rollback',
	max_deliveries int DEFAULT 10,
	lease interval DEFAULT '30 s',
	backoff_base interval DEFAULT '1 s',
	backoff_max interval DEFAULT '10 min',
	ordered boolean DEFAULT false,
	if_not_exists boolean DEFAULT false,
	dedup_window interval DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
	SELECT txmq.create_topic(queue, notify, check_function, check_after,
							 check_interval, max_checks, on_checks_exhausted,
							 if_not_exists, dedup_window);
	SELECT txmq.create_subscription(queue, queue, max_deliveries, lease,
									backoff_base, backoff_max, ordered,
									if_not_exists);
END;

REVOKE EXECUTE ON FUNCTION
	txmq.create_topic(text, boolean, regprocedure, interval, interval, int,
					  text, boolean, interval),
	txmq.create_queue(text, boolean, regprocedure, interval, interval, int,
					  text, int, interval, interval, interval, boolean,
					  boolean, interval)
	FROM PUBLIC;

CREATE FUNCTION txmq.alter_topic(
	topic text,
	notify boolean DEFAULT NULL,
	check_function regprocedure DEFAULT NULL,
	check_after interval DEFAULT NULL,
	check_interval interval DEFAULT NULL,
	max_checks int DEFAULT NULL,
	on_checks_exhausted text DEFAULT NULL,
	owner regrole DEFAULT NULL,
	dedup_window interval DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_alter_topic' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION txmq.send(text, jsonb, jsonb, text, interval, text) IS
	'Send a message; delivered to every subscription if the calling transaction commits, not before delay; returns its id (with a dedup_key the topic saw within its dedup_window, nothing is sent and the first message''s id returned)';
COMMENT ON FUNCTION txmq.send_batch(text, jsonb[], jsonb, text, interval, text[]) IS
	'Send many messages at once; returns their ids in order (dedup_keys: one per payload, as for send)';
COMMENT ON FUNCTION txmq.send_half(text, jsonb, jsonb, text, text, xid8, text) IS
	'Store a half message, invisible to every subscription until commit_half; returns its id (dedup_key as for send; a rollback frees it)';
COMMENT ON FUNCTION txmq.create_topic(text, boolean, regprocedure, interval, interval, int, text, boolean, interval) IS
	'Create a topic owned by the calling role (needs EXECUTE, which PUBLIC lacks); if_not_exists: a NOTICE instead of an error, nothing changed';
COMMENT ON FUNCTION txmq.create_queue(text, boolean, regprocedure, interval, interval, int, text, int, interval, interval, interval, boolean, boolean, interval) IS
	'Create a topic and a subscription of the same name; takes the options of both';
COMMENT ON FUNCTION txmq.alter_topic(text, boolean, regprocedure, interval, interval, int, text, regrole, interval) IS
	'Change the options given (NULL: unchanged; check_function => ''-'' removes it, dedup_window => ''0'' turns it off), or the owner; queued messages are kept';

/* ---- Shared tables bounded by what is in use, and how full (issue 13) ---- */

/*
 * txmq.stats gains the time since which each row's counters count (a
 * subscription's shared-memory slot may be evicted while it is idle and
 * rebuilt, counting from zero, when it is used again), and one row per
 * fixed-size shared table saying how full it is (the subscription slots,
 * the workers, the attempt table).  The view is replaced, not dropped,
 * so that grants on it and views over it survive: its new columns come
 * last, from a function of a new name (a function's result type cannot
 * change).
 */
CREATE FUNCTION txmq._stats_rows()
RETURNS TABLE (topic text, subscription text,
			   ready bigint, delayed bigint, in_flight bigint, dead bigint,
			   half_pending bigint, oldest_ready_age interval,
			   sent bigint, delivered bigint, acked bigint, nacked bigint,
			   dead_lettered bigint, checks bigint, checks_commit bigint,
			   checks_rollback bigint, checks_unknown bigint,
			   worker_running boolean, counters_since timestamptz,
			   setting text, capacity bigint, in_use bigint, needed bigint)
AS 'MODULE_PATHNAME', 'txmq_stats' LANGUAGE C VOLATILE;

CREATE OR REPLACE VIEW txmq.stats AS SELECT * FROM txmq._stats_rows();

DROP FUNCTION txmq._stats();

COMMENT ON FUNCTION txmq._stats_rows() IS
	'Internal: the rows of the view txmq.stats';

/* ---- peek (issue 15) ---- */

/*
 * What a receive would deliver next, without taking it: the same
 * privilege as receive ('receive' on the subscription).
 */
CREATE FUNCTION txmq.peek(topic text, subscription text,
						  max_messages int DEFAULT 10)
RETURNS TABLE (msg_id bigint, payload jsonb, headers jsonb, key text,
			   attempt int, created_at timestamptz, last_error text)
AS 'MODULE_PATHNAME', 'txmq_peek' LANGUAGE C VOLATILE ROWS 10;

COMMENT ON FUNCTION txmq.peek(text, text, int) IS
	'The ready messages a receive would take next, in its order, with the attempt their next delivery would have; claims, leases and changes nothing';
