/* txmq--0.4--0.5.sql */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.5'" to load this file. \quit

/* ---- Expiry: a subscription's retention (issue 14) ---- */

/*
 * create_subscription, create_queue and alter_subscription gain two last
 * parameters, so they are dropped and created again, which resets their
 * ACLs to what a fresh install has: say which GRANTs (and REVOKEs from
 * PUBLIC) to run again, as 0.4 did (README "Upgrade").  added is the
 * types of the new parameters, which name the new function.
 */
DO $$
DECLARE
	r record;
	todo text := '';
BEGIN
	FOR r IN
		WITH f(old, added, public_default) AS (VALUES
			('txmq.create_subscription(pg_catalog.text, pg_catalog.text, pg_catalog.int4, pg_catalog.interval, pg_catalog.interval, pg_catalog.interval, pg_catalog.bool, pg_catalog.bool)', 'interval, text', true),
			('txmq.create_queue(pg_catalog.text, pg_catalog.bool, pg_catalog.regprocedure, pg_catalog.interval, pg_catalog.interval, pg_catalog.int4, pg_catalog.text, pg_catalog.int4, pg_catalog.interval, pg_catalog.interval, pg_catalog.interval, pg_catalog.bool, pg_catalog.bool, pg_catalog.interval)', 'interval, text', false),
			('txmq.alter_subscription(pg_catalog.text, pg_catalog.text, pg_catalog.int4, pg_catalog.interval, pg_catalog.interval, pg_catalog.interval, pg_catalog.bool)', 'interval, text', true)),
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
		RAISE WARNING 'txmq 0.5 re-creates functions that gained parameters: privileges granted on them are reset'
			USING DETAIL = 'Run these after the update:' || todo,
				  HINT = 'See README.md, "Upgrade".';
	END IF;
END $$;

/*
 * retention: how long after it was sent a message may stay unsettled in
 * the subscription (NULL: for ever); the worker then expires it, to the
 * dead letters or, with on_expiry 'drop', nowhere (reclaim.c).
 */
ALTER TABLE txmq.subscription ADD COLUMN retention interval,
	ADD COLUMN on_expiry text NOT NULL DEFAULT 'dead_letter'
		CHECK (on_expiry IN ('dead_letter', 'drop'));

DROP FUNCTION txmq.create_queue(text, boolean, regprocedure, interval,
								interval, int, text, int, interval, interval,
								interval, boolean, boolean, interval);
DROP FUNCTION txmq.create_subscription(text, text, int, interval, interval,
									   interval, boolean, boolean);
DROP FUNCTION txmq.alter_subscription(text, text, int, interval, interval,
									  interval, boolean);

CREATE FUNCTION txmq.create_subscription(
	topic text,
	subscription text,
	max_deliveries int DEFAULT 10,
	lease interval DEFAULT '30 s',
	backoff_base interval DEFAULT '1 s',
	backoff_max interval DEFAULT '10 min',
	ordered boolean DEFAULT false,
	if_not_exists boolean DEFAULT false,
	retention interval DEFAULT NULL,
	on_expiry text DEFAULT 'dead_letter')
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_create_subscription' LANGUAGE C VOLATILE;

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
	dedup_window interval DEFAULT NULL,
	retention interval DEFAULT NULL,
	on_expiry text DEFAULT 'dead_letter')
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
	SELECT txmq.create_topic(queue, notify, check_function, check_after,
							 check_interval, max_checks, on_checks_exhausted,
							 if_not_exists, dedup_window);
	SELECT txmq.create_subscription(queue, queue, max_deliveries, lease,
									backoff_base, backoff_max, ordered,
									if_not_exists, retention, on_expiry);
END;

REVOKE EXECUTE ON FUNCTION
	txmq.create_queue(text, boolean, regprocedure, interval, interval, int,
					  text, int, interval, interval, interval, boolean,
					  boolean, interval, interval, text)
	FROM PUBLIC;

CREATE FUNCTION txmq.alter_subscription(
	topic text,
	subscription text,
	max_deliveries int DEFAULT NULL,
	lease interval DEFAULT NULL,
	backoff_base interval DEFAULT NULL,
	backoff_max interval DEFAULT NULL,
	ordered boolean DEFAULT NULL,
	retention interval DEFAULT NULL,
	on_expiry text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_alter_subscription' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION txmq.create_subscription(text, text, int, interval, interval, interval, boolean, boolean, interval, text) IS
	'Create a subscription (consumer group) of a topic; it gets the messages sent after it exists (topic owner only); retention: how long a message may stay unsettled before it expires (to the dead letters, or dropped with on_expiry => ''drop'')';
COMMENT ON FUNCTION txmq.create_queue(text, boolean, regprocedure, interval, interval, int, text, int, interval, interval, interval, boolean, boolean, interval, interval, text) IS
	'Create a topic and a subscription of the same name; takes the options of both';
COMMENT ON FUNCTION txmq.alter_subscription(text, text, int, interval, interval, interval, boolean, interval, text) IS
	'Change the options given (NULL: unchanged; retention => ''0'' turns expiry off); queued, leased and dead messages are kept';

/*
 * txmq.stats counts expired messages: a new last column.  A function's
 * result type cannot change, so the view moves to a new function of the
 * same name and the old one goes; replacing the view rather than dropping
 * it keeps grants on it and views over it.
 */
ALTER FUNCTION txmq._stats_rows() RENAME TO _stats_rows_0_4;

CREATE FUNCTION txmq._stats_rows()
RETURNS TABLE (topic text, subscription text,
			   ready bigint, delayed bigint, in_flight bigint, dead bigint,
			   half_pending bigint, oldest_ready_age interval,
			   sent bigint, delivered bigint, acked bigint, nacked bigint,
			   dead_lettered bigint, checks bigint, checks_commit bigint,
			   checks_rollback bigint, checks_unknown bigint,
			   worker_running boolean, counters_since timestamptz,
			   setting text, capacity bigint, in_use bigint, needed bigint,
			   expired bigint)
AS 'MODULE_PATHNAME', 'txmq_stats' LANGUAGE C VOLATILE;

CREATE OR REPLACE VIEW txmq.stats AS SELECT * FROM txmq._stats_rows();

DROP FUNCTION txmq._stats_rows_0_4();

COMMENT ON FUNCTION txmq._stats_rows() IS
	'Internal: the rows of the view txmq.stats';
