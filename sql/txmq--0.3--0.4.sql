/* txmq--0.3--0.4.sql */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.4'" to load this file. \quit

/* ---- Receipts: settling only the delivery one was given (issue 14) ---- */

/*
 * Functions issue 14 gives a new last parameter are dropped and created
 * again, which resets their ACLs to what a fresh install has: say which
 * GRANTs (and REVOKEs from PUBLIC) to run again, as 0.3 did for
 * create_topic and friends (README "Upgrade"); re-granting them here would
 * make them the extension's initial privileges, which pg_dump leaves out.
 * added is the type of the new parameter, which names the new function.
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
			('txmq.extend_lease(pg_catalog.text, pg_catalog.text, pg_catalog.int8, pg_catalog.interval)', 'uuid', true)),
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
