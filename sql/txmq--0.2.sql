/* txmq--0.2.sql: transactional message queues */

\echo Use "CREATE EXTENSION txmq" to load this file. \quit

/*
 * Storage.
 *
 * Users never touch these tables directly: every function that reads or
 * writes them checks the caller's privileges on the topic first and then
 * runs its (fixed, schema-qualified) statements as the extension owner.
 */

CREATE TYPE txmq.check_result AS ENUM ('commit', 'rollback', 'unknown');

CREATE TYPE txmq.message AS (
	msg_id bigint,
	topic text,
	payload jsonb,
	headers jsonb,
	key text,
	created_at timestamptz,
	producer_group text
);

CREATE TYPE txmq.delivery AS (
	msg_id bigint,
	payload jsonb,
	headers jsonb,
	key text,
	attempt int,
	created_at timestamptz,
	lease_expires_at timestamptz
);

CREATE SEQUENCE txmq.topic_id_seq AS int;
CREATE SEQUENCE txmq.sub_id_seq AS int;
CREATE SEQUENCE txmq.msg_id_seq;

CREATE TABLE txmq.topic (
	topic_id int PRIMARY KEY DEFAULT nextval('txmq.topic_id_seq'),
	name text NOT NULL UNIQUE,
	owner regrole NOT NULL,
	notify boolean NOT NULL,
	-- schema-qualified regprocedure text, so that dumps and pg_upgrade work
	check_function text,
	check_after interval NOT NULL,
	check_interval interval NOT NULL,
	max_checks int NOT NULL,
	on_checks_exhausted text NOT NULL
		CHECK (on_checks_exhausted IN ('rollback', 'dead_letter')),
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE txmq.subscription (
	sub_id int PRIMARY KEY DEFAULT nextval('txmq.sub_id_seq'),
	topic_id int NOT NULL REFERENCES txmq.topic ON DELETE CASCADE,
	name text NOT NULL,
	max_deliveries int NOT NULL,
	lease interval NOT NULL,
	backoff_base interval NOT NULL,
	backoff_max interval NOT NULL,
	ordered boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (topic_id, name)
);
CREATE INDEX ON txmq.subscription (topic_id);

/*
 * One row per (subscription, message) not yet acknowledged.  A send writes
 * one row per subscription of the topic, so a plain queue costs one insert.
 * vt is when the row may next be received: the send's delay, a lease's
 * expiry (leased = true) or a nack's backoff.  attempt counts deliveries
 * whose lease was committed.  An ack deletes the row.
 */
CREATE TABLE txmq.msg (
	sub_id int NOT NULL,
	msg_id bigint NOT NULL,
	vt timestamptz NOT NULL,
	attempt int NOT NULL DEFAULT 0,
	leased boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL,
	payload jsonb NOT NULL,
	headers jsonb,
	key text,
	producer_group text,
	last_error text,
	PRIMARY KEY (sub_id, msg_id)
) WITH (autovacuum_vacuum_scale_factor = 0,
		autovacuum_vacuum_threshold = 5000,
		autovacuum_vacuum_cost_delay = 0);
-- ordered subscriptions: is an earlier message of this key still there?
CREATE INDEX msg_key_idx ON txmq.msg (sub_id, key, msg_id)
	WHERE key IS NOT NULL;

CREATE TABLE txmq.dead_letter (
	sub_id int NOT NULL,
	msg_id bigint NOT NULL,
	created_at timestamptz NOT NULL,
	payload jsonb NOT NULL,
	headers jsonb,
	key text,
	producer_group text,
	attempts int NOT NULL,
	last_error text,
	dead_at timestamptz NOT NULL,
	PRIMARY KEY (sub_id, msg_id)
);

/*
 * Half messages: stored, invisible to every subscription until committed.
 * A resolved row is kept (state committed / rolled_back) so that a late
 * commit_half or rollback_half is answered consistently; the worker deletes
 * resolved rows after txmq.half_retention.
 */
CREATE TABLE txmq.half (
	msg_id bigint PRIMARY KEY,
	topic_id int NOT NULL REFERENCES txmq.topic ON DELETE CASCADE,
	payload jsonb NOT NULL,
	headers jsonb,
	key text,
	producer_group text,
	local_xid xid8,
	created_at timestamptz NOT NULL,
	state text NOT NULL DEFAULT 'half'
		CHECK (state IN ('half', 'committed', 'rolled_back', 'dead_letter')),
	check_count int NOT NULL DEFAULT 0,
	last_result txmq.check_result,
	next_check_at timestamptz NOT NULL,
	resolved_at timestamptz
);
CREATE INDEX ON txmq.half (next_check_at) WHERE state = 'half';
CREATE INDEX ON txmq.half (producer_group) WHERE state = 'half';
CREATE INDEX ON txmq.half (resolved_at) WHERE state <> 'half';
CREATE INDEX ON txmq.half (topic_id);

/*
 * Subscriptions dropped recently.  A transaction that began sending before
 * the drop committed can still insert rows for the dropped subscription;
 * the worker deletes such rows as they appear, and forgets the id a day
 * after the drop.
 */
CREATE TABLE txmq.dropped_subscription (
	sub_id int PRIMARY KEY,
	dropped_at timestamptz NOT NULL DEFAULT now()
);

/*
 * Privileges granted by a topic's owner: 'send' on the topic (sub_id 0) or
 * 'receive' on one subscription.
 */
CREATE TABLE txmq.grants (
	topic_id int NOT NULL REFERENCES txmq.topic ON DELETE CASCADE,
	sub_id int NOT NULL,
	grantee regrole NOT NULL,
	privilege text NOT NULL CHECK (privilege IN ('send', 'receive')),
	PRIMARY KEY (topic_id, sub_id, grantee, privilege)
);

SELECT pg_catalog.pg_extension_config_dump('txmq.topic', '');
SELECT pg_catalog.pg_extension_config_dump('txmq.subscription', '');
SELECT pg_catalog.pg_extension_config_dump('txmq.msg', '');
SELECT pg_catalog.pg_extension_config_dump('txmq.dead_letter', '');
SELECT pg_catalog.pg_extension_config_dump('txmq.half', '');
SELECT pg_catalog.pg_extension_config_dump('txmq.grants', '');
SELECT pg_catalog.pg_extension_config_dump('txmq.dropped_subscription', '');
SELECT pg_catalog.pg_extension_config_dump('txmq.topic_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('txmq.sub_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('txmq.msg_id_seq', '');

REVOKE ALL ON ALL TABLES IN SCHEMA txmq FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA txmq FROM PUBLIC;

/* Administration */

CREATE FUNCTION txmq.create_topic(
	topic text,
	notify boolean DEFAULT true,
	check_function regprocedure DEFAULT NULL,
	check_after interval DEFAULT '6 s',
	check_interval interval DEFAULT '30 s',
	max_checks int DEFAULT 15,
	on_checks_exhausted text DEFAULT 'rollback')
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_create_topic' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.create_subscription(
	topic text,
	subscription text,
	max_deliveries int DEFAULT 10,
	lease interval DEFAULT '30 s',
	backoff_base interval DEFAULT '1 s',
	backoff_max interval DEFAULT '10 min',
	ordered boolean DEFAULT false)
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
	ordered boolean DEFAULT false)
RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
	SELECT txmq.create_topic(queue, notify, check_function, check_after,
							 check_interval, max_checks, on_checks_exhausted);
	SELECT txmq.create_subscription(queue, queue, max_deliveries, lease,
									backoff_base, backoff_max, ordered);
END;

CREATE FUNCTION txmq.drop_topic(topic text, force boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_drop_topic' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.drop_subscription(topic text, subscription text)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_drop_subscription' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.purge(topic text, subscription text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txmq_purge' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.grant(topic text, role regrole, privilege text,
						   subscription text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_grant' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.revoke(topic text, role regrole, privilege text,
							subscription text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_revoke' LANGUAGE C VOLATILE;

/* Producing */

CREATE FUNCTION txmq.send(topic text, payload jsonb, headers jsonb DEFAULT NULL,
						  key text DEFAULT NULL, delay interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txmq_send' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.send_batch(topic text, payloads jsonb[],
								headers jsonb DEFAULT NULL,
								key text DEFAULT NULL,
								delay interval DEFAULT NULL)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'txmq_send_batch' LANGUAGE C VOLATILE ROWS 100;

/* Consuming */

CREATE FUNCTION txmq.receive(topic text, subscription text,
							 max_messages int DEFAULT 1,
							 lease interval DEFAULT NULL,
							 wait interval DEFAULT '0')
RETURNS SETOF txmq.delivery
AS 'MODULE_PATHNAME', 'txmq_receive' LANGUAGE C VOLATILE ROWS 10;

CREATE FUNCTION txmq.ack(topic text, subscription text, msg_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'txmq_ack' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.ack(topic text, subscription text, msg_ids bigint[])
RETURNS int
AS 'MODULE_PATHNAME', 'txmq_ack_array' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.nack(topic text, subscription text, msg_id bigint,
						  delay interval DEFAULT NULL, error text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'txmq_nack' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.reject(topic text, subscription text, msg_id bigint,
							error text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'txmq_reject' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.extend_lease(topic text, subscription text,
								  msg_id bigint, lease interval)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'txmq_extend_lease' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.dead_letters(topic text, subscription text)
RETURNS TABLE (msg_id bigint, payload jsonb, headers jsonb, key text,
			   attempts int, last_error text, dead_at timestamptz)
AS 'MODULE_PATHNAME', 'txmq_dead_letters' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.redrive(topic text, subscription text,
							 msg_ids bigint[] DEFAULT NULL)
RETURNS int
AS 'MODULE_PATHNAME', 'txmq_redrive' LANGUAGE C VOLATILE;

/* Observability */

CREATE FUNCTION txmq._stats()
RETURNS TABLE (topic text, subscription text,
			   ready bigint, delayed bigint, in_flight bigint, dead bigint,
			   half_pending bigint, oldest_ready_age interval,
			   sent bigint, delivered bigint, acked bigint, nacked bigint,
			   dead_lettered bigint, checks bigint, checks_commit bigint,
			   checks_rollback bigint, checks_unknown bigint,
			   worker_running boolean)
AS 'MODULE_PATHNAME', 'txmq_stats' LANGUAGE C VOLATILE;

CREATE VIEW txmq.stats AS SELECT * FROM txmq._stats();

/* Privileges: see README "Privileges" */

GRANT USAGE ON SCHEMA txmq TO PUBLIC;
GRANT SELECT ON txmq.stats TO PUBLIC;
REVOKE EXECUTE ON FUNCTION
	txmq.create_topic(text, boolean, regprocedure, interval, interval, int, text),
	txmq.create_queue(text, boolean, regprocedure, interval, interval, int, text,
					  int, interval, interval, interval, boolean)
	FROM PUBLIC;

/*
 * Half messages and check-back (README "Half messages").  send_half,
 * commit_half and rollback_half need 'send' on the topic, like send;
 * pending_checks and half_messages list only topics the caller may send to.
 */

CREATE FUNCTION txmq.send_half(topic text, payload jsonb,
							   headers jsonb DEFAULT NULL,
							   key text DEFAULT NULL,
							   producer_group text DEFAULT NULL,
							   local_xid xid8 DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txmq_send_half' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.commit_half(msg_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_commit_half' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.rollback_half(msg_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_rollback_half' LANGUAGE C VOLATILE;

CREATE FUNCTION txmq.pending_checks(producer_group text)
RETURNS SETOF txmq.message
AS 'MODULE_PATHNAME', 'txmq_pending_checks' LANGUAGE C VOLATILE ROWS 10;

CREATE FUNCTION txmq.half_messages(topic text DEFAULT NULL)
RETURNS TABLE (msg_id bigint, topic text, producer_group text, key text,
			   local_xid xid8, created_at timestamptz, check_count int,
			   last_result txmq.check_result, next_check_at timestamptz)
AS 'MODULE_PATHNAME', 'txmq_half_messages' LANGUAGE C VOLATILE ROWS 10;

/* Check one half message now, as the worker would (tests, operators). */
CREATE FUNCTION txmq._check_half(msg_id bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'txmq_check_half_now' LANGUAGE C VOLATILE;

/* Start this database's worker when CREATE EXTENSION commits. */
CREATE FUNCTION txmq._poke_launcher()
RETURNS void
AS 'MODULE_PATHNAME', 'txmq_poke_launcher_sql' LANGUAGE C VOLATILE;

SELECT txmq._poke_launcher();

REVOKE EXECUTE ON FUNCTION txmq._check_half(bigint), txmq._poke_launcher()
	FROM PUBLIC;
