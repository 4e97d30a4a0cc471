/*-------------------------------------------------------------------------
 *
 * plans.c
 *	  Every SQL statement txmq runs, prepared once per backend.
 *
 * The statements run as the extension owner (scope.c), so they must not
 * resolve anything through the caller's search_path: every table is
 * schema-qualified and every operator and function is written as
 * OPERATOR(pg_catalog.x) / pg_catalog.f.  A caller who puts their own "="
 * ahead of pg_catalog therefore cannot get code run as the owner.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "jit/jit.h"
#include "optimizer/planner.h"
#include "utils/memutils.h"

#define EQ " OPERATOR(pg_catalog.=) "
#define NE " OPERATOR(pg_catalog.<>) "
#define LE " OPERATOR(pg_catalog.<=) "
#define GT " OPERATOR(pg_catalog.>) "
#define MINUS " OPERATOR(pg_catalog.-) "
#define LT " OPERATOR(pg_catalog.<) "
#define GE " OPERATOR(pg_catalog.>=) "
#define PLUS " OPERATOR(pg_catalog.+) "

#define MAX_PLAN_ARGS 12

typedef struct TxmqPlanDef
{
	const char *sql;
	int			nargs;
	Oid			argtypes[MAX_PLAN_ARGS];
} TxmqPlanDef;

/* Deliveries and dead letters share this column list. */
#define MSG_COLS "sub_id, msg_id, created_at, payload, headers, key, producer_group"

/* The columns of a row put back into txmq.msg (held.c), one array each */
#define RESTORE_COLS "sub_id, msg_id, vt, attempt, leased, created_at," \
	" payload, headers, key, producer_group, last_error"
#define RESTORE_UNNEST "pg_catalog.unnest($1), pg_catalog.unnest($2)," \
	" pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5)," \
	" pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8)," \
	" pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11)"
#define RESTORE_TYPES INT4ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, \
	INT4ARRAYOID, BOOLARRAYOID, TIMESTAMPTZARRAYOID, JSONBARRAYOID, \
	JSONBARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID

/*
 * A leased row of sub_id $1, msg_id $2 that no other transaction is
 * changing, locked; cond narrows it further (a receipt).
 */
#define LEASED_ROW(cond) "SELECT msg_id FROM txmq.msg WHERE sub_id" EQ "$1" \
	" AND msg_id" EQ "$2 AND leased" cond " FOR UPDATE SKIP LOCKED"

/* What the updates that resolve a half message return (half.c) */
#define HALF_RET " RETURNING h.state, h.topic_id, t.owner::pg_catalog.oid," \
	" t.notify, t.name, h.payload, h.headers, h.key, h.producer_group," \
	" h.created_at, h.check_count"

/* A check answered 'unknown' used up the topic's last check */
#define HALF_EXHAUSTED "h.check_count" PLUS "1" GE "t.max_checks"

static const TxmqPlanDef plan_defs[NUM_TXMQ_PLANS] = {
	[PLAN_TOPIC_BY_NAME] = {
		"SELECT topic_id, owner::pg_catalog.oid, notify FROM txmq.topic"
		" WHERE name" EQ "$1",
		1, {TEXTOID}
	},
	[PLAN_SUB_BY_NAME] = {
		"SELECT t.topic_id, t.owner::pg_catalog.oid, t.notify, s.sub_id,"
		" s.max_deliveries, s.lease, s.backoff_base, s.backoff_max, s.ordered"
		" FROM txmq.topic t JOIN txmq.subscription s"
		" ON s.topic_id" EQ "t.topic_id"
		" WHERE t.name" EQ "$1 AND s.name" EQ "$2",
		2, {TEXTOID, TEXTOID}
	},
	[PLAN_HAS_GRANT] = {
		"SELECT grantee::pg_catalog.oid FROM txmq.grants"
		" WHERE topic_id" EQ "$1 AND sub_id" EQ "$2 AND privilege" EQ "$3",
		3, {INT4OID, INT4OID, TEXTOID}
	},
	[PLAN_INSERT_TOPIC] = {
		"INSERT INTO txmq.topic (name, owner, notify, check_function,"
		" check_after, check_interval, max_checks, on_checks_exhausted)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
		" ON CONFLICT (name) DO NOTHING RETURNING topic_id",
		8, {TEXTOID, REGROLEOID, BOOLOID, TEXTOID, INTERVALOID, INTERVALOID,
		INT4OID, TEXTOID}
	},
	[PLAN_INSERT_SUB] = {
		"INSERT INTO txmq.subscription (topic_id, name, max_deliveries,"
		" lease, backoff_base, backoff_max, ordered)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7)"
		" ON CONFLICT (topic_id, name) DO NOTHING RETURNING sub_id",
		7, {INT4OID, TEXTOID, INT4OID, INTERVALOID, INTERVALOID, INTERVALOID,
		BOOLOID}
	},
	[PLAN_TOPIC_PENDING] = {
		"SELECT EXISTS (SELECT FROM txmq.msg m JOIN txmq.subscription s"
		"  ON m.sub_id" EQ "s.sub_id WHERE s.topic_id" EQ "$1)"
		" OR EXISTS (SELECT FROM txmq.dead_letter d JOIN txmq.subscription s"
		"  ON d.sub_id" EQ "s.sub_id WHERE s.topic_id" EQ "$1)"
		" OR EXISTS (SELECT FROM txmq.half h"
		"  WHERE h.topic_id" EQ "$1 AND h.state" EQ "'half')",
		1, {INT4OID}
	},
	[PLAN_DROP_TOPIC] = {
		"WITH s AS (SELECT sub_id FROM txmq.subscription"
		"  WHERE topic_id" EQ "$1),"
		" m AS (DELETE FROM txmq.msg WHERE sub_id" EQ "ANY (SELECT sub_id FROM s)),"
		" d AS (DELETE FROM txmq.dead_letter"
		"  WHERE sub_id" EQ "ANY (SELECT sub_id FROM s)),"
		" x AS (INSERT INTO txmq.dropped_subscription (sub_id)"
		"  SELECT sub_id FROM s ON CONFLICT DO NOTHING)"
		" DELETE FROM txmq.topic WHERE topic_id" EQ "$1",
		1, {INT4OID}
	},
	[PLAN_DROP_SUB] = {
		"WITH m AS (DELETE FROM txmq.msg WHERE sub_id" EQ "$1),"
		" d AS (DELETE FROM txmq.dead_letter WHERE sub_id" EQ "$1),"
		" g AS (DELETE FROM txmq.grants WHERE sub_id" EQ "$1),"
		" x AS (INSERT INTO txmq.dropped_subscription (sub_id) VALUES ($1)"
		"  ON CONFLICT DO NOTHING)"
		" DELETE FROM txmq.subscription WHERE sub_id" EQ "$1",
		1, {INT4OID}
	},
	/* $2 = 0 purges every subscription of the topic */
	[PLAN_PURGE] = {
		"WITH s AS (SELECT sub_id FROM txmq.subscription"
		"  WHERE topic_id" EQ "$1 AND ($2" EQ "0 OR sub_id" EQ "$2)),"
		" m AS (DELETE FROM txmq.msg WHERE sub_id" EQ "ANY (SELECT sub_id FROM s)"
		"  RETURNING 1),"
		" d AS (DELETE FROM txmq.dead_letter"
		"  WHERE sub_id" EQ "ANY (SELECT sub_id FROM s) RETURNING 1)"
		" SELECT (SELECT pg_catalog.count(*) FROM m)"
		" OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM d)",
		2, {INT4OID, INT4OID}
	},
	[PLAN_INSERT_GRANT] = {
		"INSERT INTO txmq.grants (topic_id, sub_id, grantee, privilege)"
		" VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
		4, {INT4OID, INT4OID, REGROLEOID, TEXTOID}
	},
	[PLAN_DELETE_GRANT] = {
		"DELETE FROM txmq.grants WHERE topic_id" EQ "$1 AND sub_id" EQ "$2"
		" AND grantee" EQ "$3 AND privilege" EQ "$4",
		4, {INT4OID, INT4OID, REGROLEOID, TEXTOID}
	},

	[PLAN_TOPIC_SUBS] = {
		"SELECT sub_id FROM txmq.subscription WHERE topic_id" EQ "$1"
		" ORDER BY sub_id",
		1, {INT4OID}
	},

	/*
	 * One row per subscription per message.  A single message to a single
	 * subscription, the common case, gets the simplest plan there is; the
	 * executor start-up of the general one would double its cost.
	 */
	[PLAN_SEND_ONE] = {
		"INSERT INTO txmq.msg (sub_id, msg_id, vt, created_at, payload,"
		" headers, key, producer_group)"
		" VALUES ($1, $2, $3, $4, $8, $5, $6, $7)",
		8, {INT4OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID,
		TEXTOID, TEXTOID, JSONBOID}
	},
	[PLAN_SEND] = {
		"INSERT INTO txmq.msg (sub_id, msg_id, vt, created_at, payload,"
		" headers, key, producer_group)"
		" SELECT s.sub_id, m.msg_id, $3, $4, m.payload, $5, $6, $7"
		" FROM pg_catalog.unnest($1) AS s(sub_id),"
		" ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($8))"
		"  AS m(msg_id, payload)",
		8, {INT4ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
		JSONBOID, TEXTOID, TEXTOID, JSONBARRAYOID}
	},

	/*
	 * When a long poll must look again.  A row not yet due was written due
	 * later than it was created (delay, lease, backoff), so the condition
	 * on created_at loses nothing and lets msg_due_idx answer.
	 */
	[PLAN_NEXT_DUE] = {
		"SELECT pg_catalog.min(vt) FROM txmq.msg"
		" WHERE sub_id" EQ "$1 AND vt" GT "$2 AND vt" GT "created_at",
		2, {INT4OID, TIMESTAMPTZOID}
	},

	/*
	 * For the worker's notifications (worker.c): topics $1 whose time came,
	 * with their earliest due time posted $2 and whether a rollback forced
	 * a notification $3.  Notify a topic with notify on if forced or if any
	 * row fell due from $2 to now $4, and return when its next row falls
	 * due.  Both are range probes per subscription of msg_due_idx, which
	 * holds only rows with vt > created_at: every row that was not
	 * receivable when written.
	 */
	[PLAN_NOTIFY_DUE] = {
		"SELECT t.topic_id, t.name,"
		" f.forced OR EXISTS (SELECT FROM txmq.subscription s"
		"  JOIN txmq.msg m ON m.sub_id" EQ "s.sub_id"
		"  WHERE s.topic_id" EQ "t.topic_id AND m.vt" GT "m.created_at"
		"  AND m.vt" GE "f.since AND m.vt" LE "$4),"
		" (SELECT pg_catalog.min(n.vt) FROM txmq.subscription s,"
		"  LATERAL (SELECT m.vt FROM txmq.msg m WHERE m.sub_id" EQ "s.sub_id"
		"   AND m.vt" GT "m.created_at AND m.vt" GT "$4"
		"   ORDER BY m.vt LIMIT 1) n"
		"  WHERE s.topic_id" EQ "t.topic_id)"
		" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
		"  pg_catalog.unnest($3)) AS f(topic_id, since, forced)"
		" JOIN txmq.topic t ON t.topic_id" EQ "f.topic_id"
		" WHERE t.notify",
		4, {INT4ARRAYOID, TIMESTAMPTZARRAYOID, BOOLARRAYOID, TIMESTAMPTZOID}
	},
	/* every topic, for the worker's notifications (refresh_known_topics) */
	[PLAN_TOPICS] = {
		"SELECT topic_id, notify, created_at FROM txmq.topic ORDER BY topic_id",
		0, {InvalidOid}
	},

	/*
	 * Put received rows back: as leases at commit, with their receipts, or
	 * nacked.  The _0_3 statement serves a database not yet updated to 0.4,
	 * whose txmq.msg has no receipt column.
	 */
	[PLAN_RESTORE] = {
		"INSERT INTO txmq.msg (" RESTORE_COLS ", receipt)"
		" SELECT * FROM ROWS FROM (" RESTORE_UNNEST ", pg_catalog.unnest($12))",
		12, {RESTORE_TYPES, UUIDARRAYOID}
	},
	[PLAN_RESTORE_0_3] = {
		"INSERT INTO txmq.msg (" RESTORE_COLS ")"
		" SELECT * FROM ROWS FROM (" RESTORE_UNNEST ")",
		11, {RESTORE_TYPES}
	},

	/*
	 * Ack of messages leased earlier (those received here are deleted).
	 * Leased rows that another transaction is changing are skipped, not
	 * waited for (xact.c): the caller does not hold them.
	 */
	[PLAN_ACK] = {
		"DELETE FROM txmq.msg WHERE sub_id" EQ "$1 AND msg_id" EQ "ANY (ARRAY("
		" SELECT msg_id FROM txmq.msg WHERE sub_id" EQ "$1"
		" AND msg_id" EQ "ANY ($2) AND leased FOR UPDATE SKIP LOCKED))"
		" RETURNING msg_id",
		2, {INT4OID, INT8ARRAYOID}
	},
	/* the same, each msg_id $2[i] only while its receipt is $3[i] */
	[PLAN_ACK_RECEIPTS] = {
		"DELETE FROM txmq.msg WHERE sub_id" EQ "$1 AND msg_id" EQ "ANY (ARRAY("
		" SELECT m.msg_id FROM txmq.msg m"
		" JOIN ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3))"
		"  AS a(msg_id, receipt)"
		"  ON m.msg_id" EQ "a.msg_id AND m.receipt" EQ "a.receipt"
		" WHERE m.sub_id" EQ "$1 AND m.leased FOR UPDATE OF m SKIP LOCKED))"
		" RETURNING msg_id",
		3, {INT4OID, INT8ARRAYOID, UUIDARRAYOID}
	},
	[PLAN_LOCK] = {
		"SELECT attempt FROM txmq.msg WHERE sub_id" EQ "$1"
		" AND msg_id" EQ "$2 AND leased FOR UPDATE SKIP LOCKED",
		2, {INT4OID, INT8OID}
	},
	[PLAN_LOCK_RECEIPT] = {
		"SELECT attempt FROM txmq.msg WHERE sub_id" EQ "$1"
		" AND msg_id" EQ "$2 AND leased AND receipt" EQ "$3"
		" FOR UPDATE SKIP LOCKED",
		3, {INT4OID, INT8OID, UUIDOID}
	},
	[PLAN_NACK] = {
		"UPDATE txmq.msg SET vt = $3, leased = false,"
		" last_error = COALESCE($4, last_error), attempt = $5"
		" WHERE sub_id" EQ "$1 AND msg_id" EQ "$2",
		5, {INT4OID, INT8OID, TIMESTAMPTZOID, TEXTOID, INT4OID}
	},
	[PLAN_EXTEND] = {
		"UPDATE txmq.msg SET vt = $3"
		" WHERE sub_id" EQ "$1 AND msg_id" EQ "ANY (ARRAY(" LEASED_ROW("") "))"
		" RETURNING vt",
		3, {INT4OID, INT8OID, TIMESTAMPTZOID}
	},
	[PLAN_EXTEND_RECEIPT] = {
		"UPDATE txmq.msg SET vt = $3"
		" WHERE sub_id" EQ "$1 AND msg_id" EQ "ANY (ARRAY("
		LEASED_ROW(" AND receipt" EQ "$4") "))"
		" RETURNING vt",
		4, {INT4OID, INT8OID, TIMESTAMPTZOID, UUIDOID}
	},
	[PLAN_DEAD_LETTER] = {
		"WITH d AS (DELETE FROM txmq.msg"
		"  WHERE sub_id" EQ "$1 AND msg_id" EQ "$2 RETURNING *)"
		" INSERT INTO txmq.dead_letter (" MSG_COLS ","
		"  attempts, last_error, dead_at)"
		" SELECT " MSG_COLS ", $3, COALESCE($4, last_error),"
		"  pg_catalog.clock_timestamp() FROM d"
		" ON CONFLICT (sub_id, msg_id) DO NOTHING",
		4, {INT4OID, INT8OID, INT4OID, TEXTOID}
	},
	/* A received (deleted) row straight to the dead letters. */
	[PLAN_DEAD_LETTER_ROW] = {
		"INSERT INTO txmq.dead_letter (" MSG_COLS ","
		"  attempts, last_error, dead_at)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
		"  pg_catalog.clock_timestamp())"
		" ON CONFLICT (sub_id, msg_id) DO NOTHING",
		9, {INT4OID, INT8OID, TIMESTAMPTZOID, JSONBOID, JSONBOID, TEXTOID,
		TEXTOID, INT4OID, TEXTOID}
	},
	[PLAN_DEAD_LETTERS] = {
		"SELECT msg_id, payload, headers, key, attempts, last_error, dead_at"
		" FROM txmq.dead_letter WHERE sub_id" EQ "$1 ORDER BY msg_id",
		1, {INT4OID}
	},
	[PLAN_REDRIVE] = {
		"WITH d AS (DELETE FROM txmq.dead_letter WHERE sub_id" EQ "$1"
		"  AND ($2 IS NULL OR msg_id" EQ "ANY ($2)) RETURNING *)"
		" INSERT INTO txmq.msg (" MSG_COLS ", vt, last_error)"
		" SELECT " MSG_COLS ", pg_catalog.clock_timestamp(), last_error"
		" FROM d",
		2, {INT4OID, INT8ARRAYOID}
	},
	/* Dropped subscriptions to reap; those dropped before $1 for the last time */
	[PLAN_REAP_DROPPED] = {
		"WITH f AS (DELETE FROM txmq.dropped_subscription"
		"  WHERE dropped_at" LT "$1)"
		" SELECT sub_id FROM txmq.dropped_subscription",
		1, {TIMESTAMPTZOID}
	},
	/* of the messages $1, $2 (sub_id, msg_id), those not in txmq.msg */
	[PLAN_ATTEMPTS_GONE] = {
		"SELECT u.s, u.m FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2))"
		" AS u(s, m)"
		" WHERE NOT EXISTS (SELECT FROM txmq.msg"
		"  WHERE sub_id" EQ "u.s AND msg_id" EQ "u.m)",
		2, {INT4ARRAYOID, INT8ARRAYOID}
	},
	[PLAN_STATS] = {
		"SELECT t.topic_id, t.owner::pg_catalog.oid, COALESCE(s.sub_id, 0),"
		" t.name, s.name,"
		" pg_catalog.count(m.msg_id) FILTER (WHERE m.vt" LE "$1),"
		" pg_catalog.count(m.msg_id) FILTER (WHERE m.vt" GT "$1"
		"  AND NOT m.leased),"
		" pg_catalog.count(m.msg_id) FILTER (WHERE m.vt" GT "$1 AND m.leased),"
		" (SELECT pg_catalog.count(*) FROM txmq.dead_letter d"
		"  WHERE d.sub_id" EQ "s.sub_id),"
		" (SELECT pg_catalog.count(*) FROM txmq.half h"
		"  WHERE h.topic_id" EQ "t.topic_id AND h.state" EQ "'half'),"
		" $1" MINUS "pg_catalog.min(m.created_at) FILTER (WHERE m.vt" LE "$1)"
		" FROM txmq.topic t"
		" LEFT JOIN txmq.subscription s ON s.topic_id" EQ "t.topic_id"
		" LEFT JOIN txmq.msg m ON m.sub_id" EQ "s.sub_id"
		" GROUP BY t.topic_id, s.sub_id ORDER BY t.name, s.name",
		1, {TIMESTAMPTZOID}
	},

	/*
	 * Half messages (half.c).  A row leaves state 'half' only through the
	 * conditional updates PLAN_HALF_RESOLVE and PLAN_HALF_CHECKED, which
	 * both return HALF_RET.  The insert adds no row for a message that
	 * nothing could resolve: no check function, producer group or local xid.
	 */
	[PLAN_HALF_INSERT] = {
		"INSERT INTO txmq.half (msg_id, topic_id, payload, headers, key,"
		" producer_group, local_xid, created_at, next_check_at)"
		" SELECT $1, t.topic_id, $3, $4, $5, $6, $7, $8,"
		"  $8" PLUS "t.check_after"
		" FROM txmq.topic t WHERE t.topic_id" EQ "$2"
		" AND (t.check_function IS NOT NULL OR $6 IS NOT NULL"
		"  OR $7 IS NOT NULL)",
		8, {INT8OID, INT4OID, JSONBOID, JSONBOID, TEXTOID, TEXTOID, XID8OID,
		TIMESTAMPTZOID}
	},
	[PLAN_HALF_BY_ID] = {
		"SELECT h.state, t.name FROM txmq.half h JOIN txmq.topic t"
		" ON t.topic_id" EQ "h.topic_id WHERE h.msg_id" EQ "$1",
		1, {INT8OID}
	},
	[PLAN_HALF_RESOLVE] = {
		"UPDATE txmq.half h SET state = $2, resolved_at = $3"
		" FROM txmq.topic t WHERE h.msg_id" EQ "$1"
		" AND h.state" EQ "'half' AND t.topic_id" EQ "h.topic_id" HALF_RET,
		3, {INT8OID, TEXTOID, TIMESTAMPTZOID}
	},
	/* $2: checked only if due by then */
	[PLAN_HALF_FOR_CHECK] = {
		"SELECT h.local_xid, t.check_function,"
		" pg_catalog.to_regprocedure(t.check_function)::pg_catalog.oid,"
		" t.owner::pg_catalog.oid, h.producer_group,"
		" ROW(h.msg_id, t.name, h.payload, h.headers, h.key, h.created_at,"
		"  h.producer_group)::txmq.message"
		" FROM txmq.half h JOIN txmq.topic t ON t.topic_id" EQ "h.topic_id"
		" WHERE h.msg_id" EQ "$1 AND h.state" EQ "'half'"
		" AND h.next_check_at" LE "$2",
		2, {INT8OID, TIMESTAMPTZOID}
	},

	/*
	 * Record a check's answer $2 ('commit', 'rollback', 'unknown') at $3:
	 * an answer resolves the message, 'unknown' schedules the next check,
	 * and the topic's max_checks-th 'unknown' applies on_checks_exhausted.
	 */
	[PLAN_HALF_CHECKED] = {
		"UPDATE txmq.half h SET check_count = h.check_count" PLUS "1,"
		" last_result = $2::txmq.check_result,"
		" next_check_at = $3" PLUS "t.check_interval,"
		" state = CASE WHEN $2" EQ "'commit' THEN 'committed'"
		"  WHEN $2" EQ "'rollback' THEN 'rolled_back'"
		"  WHEN NOT (" HALF_EXHAUSTED ") THEN 'half'"
		"  WHEN t.on_checks_exhausted" EQ "'dead_letter' THEN 'dead_letter'"
		"  ELSE 'rolled_back' END,"
		" resolved_at = CASE WHEN $2" NE "'unknown' OR " HALF_EXHAUSTED
		"  THEN $3 END"
		" FROM txmq.topic t WHERE h.msg_id" EQ "$1"
		" AND h.state" EQ "'half' AND t.topic_id" EQ "h.topic_id" HALF_RET,
		3, {INT8OID, TEXTOID, TIMESTAMPTZOID}
	},
	/* into the dead letters of every subscription of its topic */
	[PLAN_HALF_DEAD_LETTER] = {
		"INSERT INTO txmq.dead_letter (" MSG_COLS ","
		"  attempts, last_error, dead_at)"
		" SELECT s.sub_id, h.msg_id, h.created_at, h.payload, h.headers,"
		"  h.key, h.producer_group, 0, $2, pg_catalog.clock_timestamp()"
		" FROM txmq.half h JOIN txmq.subscription s"
		"  ON s.topic_id" EQ "h.topic_id"
		" WHERE h.msg_id" EQ "$1"
		" ON CONFLICT (sub_id, msg_id) DO NOTHING RETURNING sub_id",
		2, {INT8OID, TEXTOID}
	},
	[PLAN_HALF_DUE] = {
		"SELECT msg_id FROM txmq.half"
		" WHERE state" EQ "'half' AND next_check_at" LE "$1"
		" ORDER BY next_check_at LIMIT $2",
		2, {TIMESTAMPTZOID, INT4OID}
	},
	[PLAN_HALF_NEXT_DUE] = {
		"SELECT pg_catalog.min(next_check_at) FROM txmq.half"
		" WHERE state" EQ "'half' AND next_check_at" GT "$1",
		1, {TIMESTAMPTZOID}
	},
	[PLAN_HALF_RECLAIM] = {
		"DELETE FROM txmq.half WHERE state" NE "'half' AND resolved_at" LT "$1",
		1, {TIMESTAMPTZOID}
	},

	/*
	 * Listings: the topic's id and owner come first, for the privilege
	 * check, then the columns returned.  $1 NULL: every topic.
	 */
	[PLAN_HALF_LIST] = {
		"SELECT h.topic_id, t.owner::pg_catalog.oid, h.msg_id, t.name,"
		" h.producer_group, h.key, h.local_xid, h.created_at, h.check_count,"
		" h.last_result, h.next_check_at"
		" FROM txmq.half h JOIN txmq.topic t ON t.topic_id" EQ "h.topic_id"
		" WHERE h.state" EQ "'half' AND ($1 IS NULL OR h.topic_id" EQ "$1)"
		" ORDER BY h.msg_id",
		1, {INT4OID}
	},
	/* checked at least once, or due: the producer group should answer */
	[PLAN_PENDING_CHECKS] = {
		"SELECT h.topic_id, t.owner::pg_catalog.oid, h.msg_id, t.name,"
		" h.payload, h.headers, h.key, h.created_at, h.producer_group"
		" FROM txmq.half h JOIN txmq.topic t ON t.topic_id" EQ "h.topic_id"
		" WHERE h.state" EQ "'half' AND h.producer_group" EQ "$1"
		" AND (h.check_count" GT "0 OR h.next_check_at" LE "$2)"
		" ORDER BY h.msg_id",
		2, {TEXTOID, TIMESTAMPTZOID}
	},

	/*
	 * Administration (catalog.c): a topic's or subscription's settings as
	 * create_* stored them, for alter_* and if_not_exists.
	 */
	[PLAN_TOPIC_ROW] = {
		"SELECT topic_id, owner::pg_catalog.oid, notify, check_function,"
		" check_after, check_interval, max_checks, on_checks_exhausted,"
		" pg_catalog.to_regprocedure(check_function)::pg_catalog.oid"
		" FROM txmq.topic WHERE name" EQ "$1 FOR UPDATE",
		1, {TEXTOID}
	},
	[PLAN_SUB_ROW] = {
		"SELECT sub_id, max_deliveries, lease, backoff_base, backoff_max,"
		" ordered FROM txmq.subscription"
		" WHERE topic_id" EQ "$1 AND name" EQ "$2 FOR UPDATE",
		2, {INT4OID, TEXTOID}
	},
	[PLAN_ALTER_TOPIC] = {
		"UPDATE txmq.topic SET owner = $2, notify = $3, check_function = $4,"
		" check_after = $5, check_interval = $6, max_checks = $7,"
		" on_checks_exhausted = $8 WHERE topic_id" EQ "$1",
		8, {INT4OID, REGROLEOID, BOOLOID, TEXTOID, INTERVALOID, INTERVALOID,
		INT4OID, TEXTOID}
	},
	[PLAN_ALTER_SUB] = {
		"UPDATE txmq.subscription SET max_deliveries = $2, lease = $3,"
		" backoff_base = $4, backoff_max = $5, ordered = $6"
		" WHERE sub_id" EQ "$1",
		6, {INT4OID, INT4OID, INTERVALOID, INTERVALOID, INTERVALOID, BOOLOID}
	},
	[PLAN_SUB_EXPIRY] = {
		"SELECT retention, on_expiry FROM txmq.subscription"
		" WHERE sub_id" EQ "$1",
		1, {INT4OID}
	},
	/*
	 * A subscription's expiry options: retention $3 if $2 (NULL: none),
	 * on_expiry $4 unless NULL.
	 */
	[PLAN_SUB_SET_EXPIRY] = {
		"UPDATE txmq.subscription SET"
		" retention = CASE WHEN $2 THEN $3 ELSE retention END,"
		" on_expiry = COALESCE($4, on_expiry)"
		" WHERE sub_id" EQ "$1",
		4, {INT4OID, BOOLOID, INTERVALOID, TEXTOID}
	},
	/* the subscriptions whose messages expire (reclaim.c) */
	[PLAN_EXPIRING_SUBS] = {
		"SELECT sub_id, topic_id, retention, on_expiry = 'dead_letter'"
		" FROM txmq.subscription WHERE retention IS NOT NULL",
		0, {InvalidOid}
	},
	/* unresolved half messages that only a check function can answer */
	[PLAN_HALF_UNCHECKABLE] = {
		"SELECT pg_catalog.count(*) FROM txmq.half WHERE topic_id" EQ "$1"
		" AND state" EQ "'half' AND producer_group IS NULL"
		" AND local_xid IS NULL",
		1, {INT4OID}
	},
	/* may role $1 create topics (EXECUTE on txmq.create_topic)? */
	[PLAN_MAY_CREATE_TOPIC] = {
		"SELECT pg_catalog.bool_and(pg_catalog.has_function_privilege($1,"
		" p.oid, 'EXECUTE')) FROM pg_catalog.pg_proc p"
		" WHERE p.proname" EQ "'create_topic'"
		" AND p.pronamespace" EQ "'txmq'::pg_catalog.regnamespace",
		1, {OIDOID}
	},
	/*
	 * grants(): the owner of each topic, then its grants.  The topic's id
	 * and owner come first, for the privilege check.  $1 NULL: every topic.
	 */
	[PLAN_GRANTS_LIST] = {
		"SELECT t.topic_id, t.owner::pg_catalog.oid, t.name,"
		" NULL::pg_catalog.text, t.owner, 'owner'::pg_catalog.text, 0"
		" FROM txmq.topic t WHERE $1 IS NULL OR t.topic_id" EQ "$1"
		" UNION ALL"
		" SELECT t.topic_id, t.owner::pg_catalog.oid, t.name, s.name,"
		" g.grantee, g.privilege, 1"
		" FROM txmq.grants g JOIN txmq.topic t ON t.topic_id" EQ "g.topic_id"
		" LEFT JOIN txmq.subscription s ON s.sub_id" EQ "g.sub_id"
		" AND g.sub_id" NE "0"
		" WHERE $1 IS NULL OR t.topic_id" EQ "$1"
		" ORDER BY 3, 7, 4 NULLS FIRST, 6, 5",
		1, {INT4OID}
	},

	/*
	 * Idempotent send (send.c).  These run only where the database has
	 * been updated to 0.4: a dedup_key or dedup_window can be passed only
	 * to the functions 0.4 declares, and the worker looks for txmq.dedup
	 * first.
	 */
	[PLAN_TOPIC_DEDUP] = {
		"SELECT dedup_window FROM txmq.topic WHERE topic_id" EQ "$1",
		1, {INT4OID}
	},
	[PLAN_TOPIC_SET_DEDUP] = {
		"UPDATE txmq.topic SET dedup_window = $2 WHERE topic_id" EQ "$1",
		2, {INT4OID, INTERVALOID}
	},

	/*
	 * Take key $2 of topic $1 for message $3 until $4, unless a message
	 * within its window (at $6) has it.  The unique index makes a second
	 * sender wait for the first one's transaction, as for any insert; if
	 * that aborts, the key is free, and if it commits, the second sender
	 * finds it taken (no row inserted or updated).  A key whose window has
	 * passed is taken over, whether or not the worker has deleted it yet.
	 */
	[PLAN_DEDUP_CLAIM] = {
		"INSERT INTO txmq.dedup AS d (topic_id, key, msg_id, expires_at, half)"
		" VALUES ($1, $2, $3, $4, $5) ON CONFLICT (topic_id, key) DO UPDATE"
		" SET msg_id = EXCLUDED.msg_id, expires_at = EXCLUDED.expires_at,"
		" half = EXCLUDED.half WHERE d.expires_at" LE "$6",
		6, {INT4OID, TEXTOID, INT8OID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID}
	},
	[PLAN_DEDUP_HOLDER] = {
		"SELECT msg_id FROM txmq.dedup WHERE topic_id" EQ "$1 AND key" EQ "$2",
		2, {INT4OID, TEXTOID}
	},
	/* a half message rolled back frees its key (dedup_half_idx) */
	[PLAN_DEDUP_RELEASE] = {
		"DELETE FROM txmq.dedup WHERE msg_id" EQ "$1 AND half",
		1, {INT8OID}
	},
	/* up to $2 keys whose window passed by $1, along dedup_expires_idx */
	[PLAN_DEDUP_EXPIRED] = {
		"DELETE FROM txmq.dedup WHERE ctid" EQ "ANY (ARRAY("
		" SELECT ctid FROM txmq.dedup WHERE expires_at" LE "$1"
		" ORDER BY expires_at LIMIT $2))",
		2, {TIMESTAMPTZOID, INT4OID}
	},
};

static SPIPlanPtr plans[NUM_TXMQ_PLANS];

/*
 * txmq's statements touch a handful of rows, but the planner's estimate
 * for a generic plan's LIMIT $n grows with the table (it assumes 10% of
 * the rows), and past jit_above_cost every execution would be compiled.
 * So the plans of txmq's own statements never use JIT.
 */
static planner_hook_type prev_planner_hook = NULL;
static int	exec_depth = 0;		/* txmq_exec() calls under way */

static PlannedStmt *
txmq_planner(Query *parse, const char *query_string, int cursorOptions,
			 ParamListInfo boundParams)
{
	PlannedStmt *stmt;

	stmt = prev_planner_hook
		? prev_planner_hook(parse, query_string, cursorOptions, boundParams)
		: standard_planner(parse, query_string, cursorOptions, boundParams);
	if (exec_depth > 0)
		stmt->jitFlags = PGJIT_NONE;
	return stmt;
}

static SPIPlanPtr
get_plan(TxmqPlanId id)
{
	if (plans[id] == NULL)
	{
		const TxmqPlanDef *def = &plan_defs[id];
		SPIPlanPtr	plan;

		/*
		 * Always the generic plan: these statements are built to use their
		 * index whatever the parameters, and a custom plan (which the plan
		 * cache prefers for LIMIT $n) would mean planning on every call.
		 */
		plan = SPI_prepare_cursor(def->sql, def->nargs,
								  (Oid *) def->argtypes,
								  CURSOR_OPT_GENERIC_PLAN);
		if (plan == NULL)
			elog(ERROR, "txmq: could not prepare statement %d: %s",
				 (int) id, SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		plans[id] = plan;
	}
	return plans[id];
}

/*
 * Execute statement id; returns the number of rows processed.  Results are
 * in SPI_tuptable until txmq_scope_leave().
 */
int
txmq_exec(TxmqPlanId id, Datum *values, const bool *isnull, long limit)
{
	char		nulls[MAX_PLAN_ARGS];
	int			rc;

	for (int i = 0; i < plan_defs[id].nargs; i++)
		nulls[i] = (isnull && isnull[i]) ? 'n' : ' ';
	exec_depth++;				/* an error resets it, see below */
	rc = SPI_execute_plan(get_plan(id), values, nulls, false, limit);
	exec_depth--;
	if (rc < 0)
		elog(ERROR, "txmq: statement %d failed: %s",
			 (int) id, SPI_result_code_string(rc));
	return (int) SPI_processed;
}

/*
 * An error skips the decrement in txmq_exec(): the (sub)transaction it
 * aborts resets the count.  (Nested txmq_exec() calls, the worker's check
 * function calling txmq, run in subtransactions of their own.)
 */
static void
plans_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		exec_depth = 0;
}

static void
plans_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT)
		exec_depth = 0;
}

void
txmq_plans_init(void)
{
	RegisterXactCallback(plans_xact_callback, NULL);
	RegisterSubXactCallback(plans_subxact_callback, NULL);
	prev_planner_hook = planner_hook;
	planner_hook = txmq_planner;
}

Datum
txmq_col(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 col, isnull);
}

/*
 * Return every row of SPI_tuptable from a set-returning function, in
 * materialize mode.  Must be called before txmq_scope_leave().
 */
void
txmq_return_tuptable(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, 0);
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		values[MAX_PLAN_ARGS * 2];
		bool		nulls[MAX_PLAN_ARGS * 2];

		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
						  values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 values, nulls);
	}
	MemoryContextSwitchTo(old);
}
