/* txmq--0.2--0.3.sql */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.3'" to load this file. \quit

/* ---- Administration: alter_*, if_not_exists, grants() (issue 17) ---- */

/*
 * create_topic, create_subscription and create_queue gain a last
 * parameter if_not_exists, which means dropping and re-creating them
 * (create_queue first: its body refers to the other two).  Their ACLs
 * start again as a fresh install has them; GRANTs users had made on them
 * are gone, so say which ones to run again (README "Upgrade").  Re-granting
 * them here would record them as the extension's initial privileges, and
 * pg_dump would then leave them out of every dump.
 */
DO $$
DECLARE
	r record;
	todo text := '';
BEGIN
	FOR r IN
		SELECT p.proname, a.grantee, a.is_grantable
		  FROM pg_catalog.pg_proc p,
			   LATERAL pg_catalog.aclexplode(p.proacl) a
		 WHERE p.pronamespace OPERATOR(pg_catalog.=) 'txmq'::pg_catalog.regnamespace
		   AND p.proname OPERATOR(pg_catalog.=) ANY
			   (ARRAY['create_topic', 'create_subscription', 'create_queue'])
		   AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
		   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
		   AND NOT (p.proname OPERATOR(pg_catalog.=) 'create_subscription'
					AND a.grantee OPERATOR(pg_catalog.=) 0)
		 ORDER BY 1, 2
	LOOP
		todo := todo || pg_catalog.format(E'\nGRANT EXECUTE ON FUNCTION txmq.%I TO %s%s;',
			r.proname,
			CASE WHEN r.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
				 ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.grantee)) END,
			CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
	END LOOP;
	IF EXISTS (SELECT FROM pg_catalog.pg_proc p
				WHERE p.pronamespace OPERATOR(pg_catalog.=) 'txmq'::pg_catalog.regnamespace
				  AND p.proname OPERATOR(pg_catalog.=) 'create_subscription'
				  AND p.proacl IS NOT NULL
				  AND NOT EXISTS (SELECT FROM pg_catalog.aclexplode(p.proacl) a
								   WHERE a.grantee OPERATOR(pg_catalog.=) 0)) THEN
		todo := todo || E'\nREVOKE EXECUTE ON FUNCTION txmq.create_subscription FROM PUBLIC;';
	END IF;
	IF todo OPERATOR(pg_catalog.<>) '' THEN
		RAISE WARNING 'txmq 0.3 re-creates create_topic, create_subscription and create_queue: privileges granted on them are reset'
			USING DETAIL = 'Run these after the update:' || todo,
				  HINT = 'See README.md, "Upgrade".';
	END IF;
END $$;

DROP FUNCTION txmq.create_queue(text, boolean, regprocedure, interval, interval,
								int, text, int, interval, interval, interval,
								boolean);
DROP FUNCTION txmq.create_topic(text, boolean, regprocedure, interval,
								interval, int, text);
DROP FUNCTION txmq.create_subscription(text, text, int, interval, interval,
									   interval, boolean);

CREATE FUNCTION txmq.create_topic(
	topic text,
	notify boolean DEFAULT true,
	check_function regprocedure DEFAULT NULL,
	check_after interval DEFAULT '6 s',
	check_interval interval DEFAULT '30 s',
	max_checks int DEFAULT 15,
	on_checks_exhausted text DEFAULT 'rollback',
	if_not_exists boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_create_topic' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.create_subscription(
	topic text,
	subscription text,
	max_deliveries int DEFAULT 10,
	lease interval DEFAULT '30 s',
	backoff_base interval DEFAULT '1 s',
	backoff_max interval DEFAULT '10 min',
	ordered boolean DEFAULT false,
	if_not_exists boolean DEFAULT false)
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
	if_not_exists boolean DEFAULT false)
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
	SELECT txmq.create_topic(queue, notify, check_function, check_after,
							 check_interval, max_checks, on_checks_exhausted,
							 if_not_exists);
	SELECT txmq.create_subscription(queue, queue, max_deliveries, lease,
									backoff_base, backoff_max, ordered,
									if_not_exists);
END;

REVOKE EXECUTE ON FUNCTION
	txmq.create_topic(text, boolean, regprocedure, interval, interval, int,
					  text, boolean),
	txmq.create_queue(text, boolean, regprocedure, interval, interval, int,
					  text, int, interval, interval, interval, boolean,
					  boolean)
	FROM PUBLIC;

/*
 * NULL leaves an option as it is; check_function => '-' removes the check
 * function.  Only the topic's owner may alter it (checked in C), so PUBLIC
 * keeps EXECUTE, as on drop_topic.
 */
CREATE FUNCTION txmq.alter_topic(
	topic text,
	notify boolean DEFAULT NULL,
	check_function regprocedure DEFAULT NULL,
	check_after interval DEFAULT NULL,
	check_interval interval DEFAULT NULL,
	max_checks int DEFAULT NULL,
	on_checks_exhausted text DEFAULT NULL,
	owner regrole DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_alter_topic' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.alter_subscription(
	topic text,
	subscription text,
	max_deliveries int DEFAULT NULL,
	lease interval DEFAULT NULL,
	backoff_base interval DEFAULT NULL,
	backoff_max interval DEFAULT NULL,
	ordered boolean DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_alter_subscription' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.grants(topic text DEFAULT NULL)
RETURNS TABLE (topic text, subscription text, role regrole, privilege text)
AS 'MODULE_PATHNAME', 'txmq_grants' LANGUAGE C VOLATILE;

/* \df+ txmq.* tells what each function is for (README has the detail) */
COMMENT ON FUNCTION txmq.create_topic(text, boolean, regprocedure, interval, interval, int, text, boolean) IS
	'Create a topic owned by the calling role (needs EXECUTE, which PUBLIC lacks); if_not_exists: a NOTICE instead of an error, nothing changed';
COMMENT ON FUNCTION txmq.create_subscription(text, text, int, interval, interval, interval, boolean, boolean) IS
	'Create a subscription (consumer group) of a topic; it gets the messages sent after it exists (topic owner only)';
COMMENT ON FUNCTION txmq.create_queue(text, boolean, regprocedure, interval, interval, int, text, int, interval, interval, interval, boolean, boolean) IS
	'Create a topic and a subscription of the same name; takes the options of both';
COMMENT ON FUNCTION txmq.alter_topic(text, boolean, regprocedure, interval, interval, int, text, regrole) IS
	'Change the options given (NULL: unchanged; check_function => ''-'' removes it), or the owner; queued messages are kept';
COMMENT ON FUNCTION txmq.alter_subscription(text, text, int, interval, interval, interval, boolean) IS
	'Change the options given (NULL: unchanged); queued, leased and dead messages are kept';
COMMENT ON FUNCTION txmq.grants(text) IS
	'Who may do what with a topic (all topics the caller owns when NULL): the owner, send and receive grants';
COMMENT ON FUNCTION txmq.drop_topic(text, boolean) IS
	'Drop a topic with its subscriptions; refuses while it holds messages, dead letters or half messages unless force';
COMMENT ON FUNCTION txmq.drop_subscription(text, text) IS
	'Drop a subscription with its queued messages and dead letters';
COMMENT ON FUNCTION txmq.purge(text, text) IS
	'Delete the queued messages and dead letters of one subscription, or of all the topic''s; returns how many';
COMMENT ON FUNCTION txmq.grant(text, regrole, text, text) IS
	'Allow a role to send to a topic (''send'') or to receive from one subscription (''receive'', subscription given)';
COMMENT ON FUNCTION txmq.revoke(text, regrole, text, text) IS
	'Take back a grant made with txmq.grant()';
COMMENT ON FUNCTION txmq.send(text, jsonb, jsonb, text, interval) IS
	'Send a message; delivered to every subscription if the calling transaction commits, not before delay; returns its id';
COMMENT ON FUNCTION txmq.send_batch(text, jsonb[], jsonb, text, interval) IS
	'Send many messages at once; returns their ids in order';
COMMENT ON FUNCTION txmq.receive(text, text, int, interval, interval) IS
	'Take up to max_messages ready messages, leased if the transaction commits without acking them; wait > 0 waits for one';
COMMENT ON FUNCTION txmq.ack(text, text, bigint) IS
	'Settle a message the caller holds (received in this transaction, or leased); false if it holds no such message';
COMMENT ON FUNCTION txmq.ack(text, text, bigint[]) IS
	'Settle the held messages among msg_ids; returns how many were settled';
COMMENT ON FUNCTION txmq.nack(text, text, bigint, interval, text) IS
	'Give a held message back, due after delay or the subscription''s backoff; dead-lettered when its deliveries are used up';
COMMENT ON FUNCTION txmq.reject(text, text, bigint, text) IS
	'Move a held message straight to the dead letters (poison)';
COMMENT ON FUNCTION txmq.extend_lease(text, text, bigint, interval) IS
	'Set a held message''s lease to end lease from now; NULL if the caller does not hold it';
COMMENT ON FUNCTION txmq.dead_letters(text, text) IS
	'The subscription''s dead letters with their attempts and last error';
COMMENT ON FUNCTION txmq.redrive(text, text, bigint[]) IS
	'Put dead letters (all, or those msg_ids) back into the queue with attempt 0; returns how many';
COMMENT ON FUNCTION txmq.send_half(text, jsonb, jsonb, text, text, xid8) IS
	'Store a half message, invisible to every subscription until commit_half; returns its id';
COMMENT ON FUNCTION txmq.commit_half(bigint) IS
	'Deliver a half message (idempotent; an error if it was rolled back)';
COMMENT ON FUNCTION txmq.rollback_half(bigint) IS
	'Discard a half message (idempotent; an error if it was committed)';
COMMENT ON FUNCTION txmq.pending_checks(text) IS
	'Unresolved half messages of a producer group that check-back asks about';
COMMENT ON FUNCTION txmq.half_messages(text) IS
	'Unresolved half messages (of one topic, or all the caller may send to) with their check state';
COMMENT ON FUNCTION txmq._stats() IS
	'Internal: the rows of the view txmq.stats';
COMMENT ON FUNCTION txmq._check_half(bigint) IS
	'Check one half message now, as the worker would (tests, operators; not granted to PUBLIC)';
COMMENT ON FUNCTION txmq._poke_launcher() IS
	'Internal: start this database''s worker when the transaction commits';

/* ---- Long polls that hold no snapshot while they sleep (issue 19) ---- */

-- src/poll.c.  CALLed
-- outside a transaction block, each ends its transaction before it sleeps.
CREATE PROCEDURE txmq.wait(topic text, subscription text,
						   timeout interval DEFAULT '20 s',
						   INOUT ready boolean DEFAULT NULL)
AS 'MODULE_PATHNAME', 'txmq_wait' LANGUAGE C;
COMMENT ON PROCEDURE txmq.wait(text, text, interval, boolean) IS
'Wait, holding no snapshot, until a receive could take a message of the subscription (ready), at most timeout; CALL outside a transaction block';

CREATE PROCEDURE txmq.poll(topic text, subscription text,
						   max_messages int DEFAULT 1,
						   lease interval DEFAULT NULL,
						   wait interval DEFAULT '20 s',
						   INOUT messages txmq.delivery[] DEFAULT NULL)
AS 'MODULE_PATHNAME', 'txmq_poll' LANGUAGE C;
COMMENT ON PROCEDURE txmq.poll(text, text, int, interval, interval, txmq.delivery[]) IS
'Receive up to max_messages with a lease, waiting at most wait for the first while holding no snapshot; CALL outside a transaction block';

/*
 * NOTIFY when messages fall due (issue 17).  The worker asks, for each
 * topic with notify on whose next due time has come, whether any of its
 * rows fell due and when the next one will: an index range probe per
 * subscription.  Only rows that are not receivable at once are indexed:
 * a send without a delay writes vt = created_at, so the hot path of an
 * undelayed send (and of a receive acked in its transaction, which
 * writes nothing) pays nothing for it; delayed sends, leases and
 * backoffs do.
 */
CREATE INDEX msg_due_idx ON txmq.msg (sub_id, vt)
	WHERE vt OPERATOR(pg_catalog.>) created_at;
