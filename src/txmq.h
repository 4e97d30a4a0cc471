/*-------------------------------------------------------------------------
 *
 * txmq.h
 *	  Declarations shared by the txmq source files.
 *
 * The files, top down: each calls only files below it, so the calls
 * between files form no cycle.
 *
 *   txmq.c       _PG_init: GUCs (read by all), shared memory hooks, the
 *	              others' init functions
 *   entry points: the SQL functions and the background workers
 *	   stats.c    the rows of the txmq.stats view
 *	   worker.c   the launcher and each database's worker: check-back,
 *	              notifications owed, storage upkeep
 *	   half.c     send_half, commit_half, rollback_half, check-back
 *	   send.c     send, send_batch (and txmq_deliver, for commit_half),
 *	              dedup keys
 *	   peek.c     peek: what a receive would deliver next, untouched
 *	   poll.c     the procedures poll and wait: long polls, no snapshot
 *	   receive.c  receive, ack, nack, reject, extend_lease, dead letters,
 *	              redrive
 *	   reclaim.c  compacting txmq.msg, reaping dropped subscriptions
 *   the transaction
 *	   xact.c     the ledger: what this transaction received, settled,
 *	              sent and counted, and what it owes at commit or abort
 *	   held.c     the rows it holds: put back as leases, or dead-lettered
 *   storage and shared memory
 *	   msg.c      txmq.msg's column layout and a subscription's walk
 *	   catalog.c  topics and subscriptions: argument checks, lookups
 *	              (cached), privileges, NOTIFY channels, administration
 *	   shmem.c    shared state: wake-ups, scan starts, counters,
 *	              notifications owed
 *	   attempts.c claims, and the delivery attempts no row carries, in a
 *	              file mapped shared so that they survive crashes
 *   statements and rights
 *	   plans.c    every SQL statement txmq runs, prepared once per backend
 *	   scope.c    the owner scope those statements run in
 *
 * Version differences live in compat.h only.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TXMQ_H
#define TXMQ_H

#include "postgres.h"

#include "compat.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "access/genam.h"
#include "access/htup.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#define TXMQ_NAME_MAXLEN 48

/*
 * Limits of arguments (_MS: milliseconds), defined once so that every
 * function taking the same argument (create_* and alter_*, send and nack,
 * receive and extend_lease) accepts the same values.
 */
#define MS_PER_DAY ((int64) 86400 * 1000)
#define MIN_LEASE_MS 10
#define MAX_LEASE_MS (MS_PER_DAY / 2)
#define MAX_WAIT_MS ((int64) 3600 * 1000)
#define MAX_DELAY_MS (30 * MS_PER_DAY)
#define MAX_BACKOFF_BASE_MS MS_PER_DAY
#define MAX_BACKOFF_MAX_MS (7 * MS_PER_DAY)
#define MAX_CHECK_AFTER_MS MS_PER_DAY
#define MIN_CHECK_INTERVAL_MS 10
#define MAX_CHECK_INTERVAL_MS MS_PER_DAY
#define MAX_DELIVERIES 1000
#define MAX_CHECKS 1000
#define MAX_KEY_BYTES 1024
#define MAX_ERROR_BYTES 65536
#define MAX_DEDUP_WINDOW_MS (7 * MS_PER_DAY)
#define MAX_RETENTION_MS (365 * MS_PER_DAY)

/* GUCs (txmq.c) */
extern int	txmq_max_payload_bytes;
extern int	txmq_max_batch;
extern int	txmq_poll_interval_ms;
extern int	txmq_max_subscriptions;
extern int	txmq_max_tracked_messages;
extern int	txmq_worker_naptime_ms;
extern int	txmq_max_workers;
extern int	txmq_check_timeout_ms;
extern int	txmq_half_retention_s;
extern int	txmq_vacuum_threshold;
extern bool txmq_preloaded;

/* ---- plans.c: every statement, prepared once and kept ---- */
typedef enum TxmqPlanId
{
	PLAN_TOPIC_BY_NAME,
	PLAN_SUB_BY_NAME,
	PLAN_HAS_GRANT,
	PLAN_INSERT_TOPIC,
	PLAN_INSERT_SUB,
	PLAN_TOPIC_PENDING,
	PLAN_DROP_TOPIC,
	PLAN_DROP_SUB,
	PLAN_PURGE,
	PLAN_INSERT_GRANT,
	PLAN_DELETE_GRANT,
	PLAN_TOPIC_SUBS,
	PLAN_SEND_ONE,
	PLAN_SEND,
	PLAN_NEXT_DUE,
	PLAN_NOTIFY_DUE,
	PLAN_TOPICS,
	PLAN_RESTORE,
	PLAN_RESTORE_0_3,
	PLAN_ACK,
	PLAN_ACK_RECEIPTS,
	PLAN_LOCK,
	PLAN_LOCK_RECEIPT,
	PLAN_NACK,
	PLAN_EXTEND,
	PLAN_EXTEND_RECEIPT,
	PLAN_DEAD_LETTER,
	PLAN_DEAD_LETTER_ROW,
	PLAN_DEAD_LETTERS,
	PLAN_REDRIVE,
	PLAN_REAP_DROPPED,
	PLAN_ATTEMPTS_GONE,
	PLAN_STATS,
	PLAN_HALF_INSERT,
	PLAN_HALF_BY_ID,
	PLAN_HALF_RESOLVE,
	PLAN_HALF_FOR_CHECK,
	PLAN_HALF_CHECKED,
	PLAN_HALF_DEAD_LETTER,
	PLAN_HALF_DUE,
	PLAN_HALF_NEXT_DUE,
	PLAN_HALF_RECLAIM,
	PLAN_HALF_LIST,
	PLAN_PENDING_CHECKS,
	PLAN_TOPIC_ROW,
	PLAN_SUB_ROW,
	PLAN_ALTER_TOPIC,
	PLAN_ALTER_SUB,
	PLAN_SUB_EXPIRY,
	PLAN_SUB_SET_EXPIRY,
	PLAN_EXPIRING_SUBS,
	PLAN_HALF_UNCHECKABLE,
	PLAN_MAY_CREATE_TOPIC,
	PLAN_GRANTS_LIST,
	PLAN_TOPIC_DEDUP,
	PLAN_TOPIC_SET_DEDUP,
	PLAN_DEDUP_CLAIM,
	PLAN_DEDUP_HOLDER,
	PLAN_DEDUP_RELEASE,
	PLAN_DEDUP_EXPIRED,
	NUM_TXMQ_PLANS
} TxmqPlanId;

extern int	txmq_exec(TxmqPlanId id, Datum *values, const bool *isnull,
					  long limit);
extern void txmq_plans_init(void);

/* Result helpers: read column n (1-based) of row r of SPI_tuptable. */
extern Datum txmq_col(int row, int col, bool *isnull);
extern void txmq_return_tuptable(FunctionCallInfo fcinfo);

/* ---- scope.c: run a block of txmq_exec calls as the extension owner ---- */
typedef struct TxmqOwnerScope
{
	Oid			save_user;
	int			save_sec;
	Oid			save_caller;
} TxmqOwnerScope;

extern void txmq_scope_enter(TxmqOwnerScope *scope, bool writes);
extern void txmq_scope_leave(TxmqOwnerScope *scope);
extern Oid	txmq_caller(void);
extern void txmq_scope_init(void);

/* ---- catalog.c ---- */
typedef enum TxmqPrivilege
{
	TXMQ_SEND,
	TXMQ_RECEIVE,
	TXMQ_ADMIN
} TxmqPrivilege;

typedef struct TxmqTopic
{
	int32		topic_id;
	Oid			owner;
	bool		notify;
	char		name[TXMQ_NAME_MAXLEN + 1];
} TxmqTopic;

typedef struct TxmqSub
{
	TxmqTopic	topic;
	int32		sub_id;
	int32		max_deliveries;
	Interval	lease;
	Interval	backoff_base;
	Interval	backoff_max;
	bool		ordered;		/* one key at a time, in id order */
} TxmqSub;

extern void txmq_require_arg(FunctionCallInfo fcinfo, int argno,
							 const char *what, const char *hint);
extern char *txmq_arg_name(FunctionCallInfo fcinfo, int argno,
						   const char *what);
extern void txmq_lookup_topic(const char *name, TxmqPrivilege priv,
							  TxmqTopic *topic);
extern bool txmq_has_privilege(const TxmqTopic *topic, int32 sub_id,
							   TxmqPrivilege priv);
extern void txmq_scope_enter_sub(FunctionCallInfo fcinfo,
								 TxmqPrivilege priv, bool writes,
								 TxmqOwnerScope *scope, TxmqSub *sub);
extern int64 txmq_interval_ms(const Interval *iv, const char *what,
							  int64 min_ms, int64 max_ms);
extern int64 txmq_arg_ms(FunctionCallInfo fcinfo, int argno, const char *what,
						 int64 min_ms, int64 max_ms, int64 if_null);
extern Interval *txmq_arg_interval(FunctionCallInfo fcinfo, int argno,
								   const char *what, int64 min_ms,
								   int64 max_ms);
extern Jsonb *txmq_arg_payload(FunctionCallInfo fcinfo, int argno);
extern void txmq_check_payload(Jsonb *payload, const char *what,
							   bool must_be_object);
extern int	txmq_topic_subscriptions(const TxmqTopic *topic,
									 int32 **sub_ids);
extern void txmq_notify_topic(const TxmqTopic *topic);
extern int64 txmq_topic_dedup_ms(const TxmqTopic *topic);
extern Oid	txmq_relid(const char *name);
extern bool txmq_relation_exists(const char *name);

/* ---- shmem.c ---- */
typedef enum TxmqCounter
{
	CNT_SENT,
	CNT_DELIVERED,
	CNT_ACKED,
	CNT_NACKED,
	CNT_DEAD_LETTERED,
	CNT_CHECKS_COMMIT,
	CNT_CHECKS_ROLLBACK,
	CNT_CHECKS_UNKNOWN,
	CNT_EXPIRED,
	NUM_TXMQ_COUNTERS
} TxmqCounter;

extern void txmq_shmem_request(void);
extern void txmq_shmem_startup(void);
extern ConditionVariable *txmq_sub_cv(int32 topic_id, int32 sub_id);
extern void txmq_sub_cv_release(ConditionVariable *cv);
extern void txmq_wake(int32 topic_id, int32 sub_id, int64 nmessages,
					  int64 from_id);
extern void txmq_slots_drop_at_commit(int32 topic_id, int32 sub_id);
extern void txmq_free_sub_slot(int32 sub_id);

/* How full a fixed-size shared table is (shmem.c, attempts.c, worker.c) */
typedef struct TxmqUsage
{
	int64		capacity;		/* its setting */
	int64		in_use;			/* entries that cannot be let go now */
	int64		needed;			/* the most wanted at once, as seen */
} TxmqUsage;

extern bool txmq_slots_usage(TxmqUsage *usage);

/* Raise a high-water mark to n, if it is lower. */
static inline void
txmq_raise_mark(pg_atomic_uint32 *mark, uint32 n)
{
	uint32		old = pg_atomic_read_u32(mark);

	while (old < n && !pg_atomic_compare_exchange_u32(mark, &old, n))
		;
}

/* Where a receive's walk starts (shmem.c), and what it saw (receive.c) */
typedef struct TxmqScanStart
{
	int64		from_id;
	bool		past_waiting;	/* from the first row that was due */
	uint64		build;			/* of the slot it was read from */
	uint64		token;			/* wakes before the walk */
} TxmqScanStart;

typedef struct TxmqScanSeen
{
	int64		first_visible;	/* -1: no visible row */
	int64		last_visible;
	int64		first_ready;	/* first visible row that was due, or -1 */
	TimestampTz due_at;			/* earliest due time of those before it */
} TxmqScanSeen;

extern void txmq_scan_start(int32 topic_id, int32 sub_id, TimestampTz now,
							TxmqScanStart *start);
extern void txmq_scan_advance(int32 topic_id, int32 sub_id,
							  const TxmqScanStart *start,
							  const TxmqScanSeen *seen);
extern void txmq_count(int32 topic_id, int32 sub_id, TxmqCounter c,
					   int64 delta);

/* A topic whose worker-sent notification is due (shmem.c, worker.c) */
typedef struct TxmqNotifyFire
{
	int32		topic_id;
	TimestampTz since;			/* its earliest due time posted */
	bool		forced;			/* notify whatever the table says */
} TxmqNotifyFire;

extern void txmq_notify_post(int32 topic_id, TimestampTz due, bool forced);
extern void txmq_notifier_at(Latch *latch, TimestampTz next);
extern int	txmq_notify_take(TimestampTz now, TxmqNotifyFire *fires, int max,
							 TimestampTz *next);
extern bool txmq_read_counters(int32 topic_id, int32 sub_id, int64 *out,
							   TimestampTz *since);

/* ---- attempts.c ---- */
extern void txmq_attempts_request(void);
extern void txmq_attempts_startup(void);
extern bool txmq_claim(int32 sub_id, int64 msg_id);
extern bool txmq_claimed_elsewhere(int32 sub_id, int64 msg_id);
extern void txmq_unclaim(int32 sub_id, int64 msg_id);
extern int32 txmq_take_aborted(int32 sub_id, int64 msg_id, int32 room,
							   int32 *crashed);
extern int32 txmq_aborted_attempts(int32 sub_id, int64 msg_id);
extern void txmq_attempts_committed(int32 sub_id, int64 msg_id);
extern void txmq_attempts_aborted(int32 sub_id, int64 msg_id, int32 n,
								  bool delivered);
extern void txmq_attempts_committing(const int32 *sub_ids,
									 const int64 *msg_ids, int n);
extern bool txmq_attempts_full(void);
extern void txmq_attempts_sweep(void);
extern void txmq_attempts_forget_database(Oid dboid);
extern bool txmq_attempts_usage(TxmqUsage *usage);

/* Columns of a received row (receive.c, held.c), 1-based */
#define TXMQ_ROW_MSG_ID 1
#define TXMQ_ROW_PAYLOAD 2
#define TXMQ_ROW_HEADERS 3
#define TXMQ_ROW_KEY 4
#define TXMQ_ROW_ATTEMPT 5
#define TXMQ_ROW_CREATED_AT 6
#define TXMQ_ROW_LAST_ERROR 7
#define TXMQ_ROW_PRODUCER_GROUP 8
#define TXMQ_ROW_NATTS 8

/* ---- held.c: the rows of messages a transaction holds ---- */
typedef struct TxmqHeldRow
{
	int32		sub_id;
	int64		msg_id;
	int32		attempt;		/* its delivery attempt */
	pg_uuid_t	receipt;		/* names this delivery (receive.c) */
	TimestampTz lease_until;	/* when it falls due once put back */
	HeapTuple	row;			/* the deleted row (TXMQ_ROW_* columns) */
} TxmqHeldRow;

extern TupleDesc txmq_row_desc(void);
extern HeapTuple txmq_received_row(TupleTableSlot *slot, MemoryContext cxt);
extern HeapTuple txmq_row_interrupted(HeapTuple row, int32 crashed,
									  int32 attempts);
extern void txmq_held_dead_letter(const TxmqHeldRow *held, int32 attempts,
								  const char *error);
extern void txmq_held_restore(const TxmqHeldRow *held, int n, bool leased,
							  const char *error);

/* ---- xact.c: the transaction's ledger, what it owes at its end ---- */
extern void txmq_xact_init(void);
extern void txmq_xact_claimed(int32 sub_id, int64 msg_id);
extern int	txmq_xact_claims_done(void);
extern void txmq_xact_received(const TxmqSub *sub, int64 msg_id,
							   int32 attempt, int32 taken, bool delivered,
							   const pg_uuid_t *receipt,
							   TimestampTz lease_until, HeapTuple row);
extern bool txmq_xact_holding(int32 sub_id, int64 msg_id,
							  const pg_uuid_t *receipt, int32 *attempt);
extern bool txmq_xact_holds_key(int32 sub_id, text *key);
extern bool txmq_xact_ack_held(int32 sub_id, int64 msg_id,
							   const pg_uuid_t *receipt);
extern void txmq_xact_nack_held(int32 sub_id, int64 msg_id, TimestampTz due,
								const char *error);
extern void txmq_xact_dead_letter_held(const TxmqSub *sub, int64 msg_id,
									   int32 attempts, const char *error);
extern bool txmq_xact_extend_held(int32 sub_id, int64 msg_id,
								  const pg_uuid_t *receipt,
								  TimestampTz until);
extern void txmq_xact_settled_leased(int32 topic_id, int32 sub_id,
									 int64 msg_id);
extern void txmq_xact_tally(int32 topic_id, int32 sub_id, TxmqCounter c,
							int64 delta);
extern void txmq_xact_wake(int32 topic_id, int32 sub_id, int64 nmessages,
						   int64 from_id);
extern void txmq_xact_due(int32 topic_id, TimestampTz due);

/* ---- send.c, shared with half.c ---- */
extern int64 *txmq_next_msg_ids(int n);
extern int	txmq_deliver(const TxmqTopic *topic, int64 *ids, Datum *payloads,
						 int n, Datum headers, Datum key,
						 Datum producer_group, const bool *argnulls,
						 TimestampTz created_at, TimestampTz vt);
extern void txmq_check_headers_key(FunctionCallInfo fcinfo, int argno);
extern void txmq_check_dedup_key(Datum key);
extern int64 txmq_dedup_claim(const TxmqTopic *topic, Datum key,
							  int64 msg_id, bool half, TimestampTz now);
extern void txmq_dedup_release(int64 msg_id);
extern void txmq_dedup_reclaim(TimestampTz now);

/* ---- msg.c: txmq.msg, its columns and the walk over a subscription ---- */

/*
 * txmq.msg's columns, in table order.  A database not yet updated to 0.4
 * lacks the last one, receipt, and the library serves it until ALTER
 * EXTENSION txmq UPDATE adds it.
 */
enum
{
	MSG_SUB_ID = 1, MSG_MSG_ID, MSG_VT, MSG_ATTEMPT, MSG_LEASED,
	MSG_CREATED_AT, MSG_PAYLOAD, MSG_HEADERS, MSG_KEY, MSG_PRODUCER_GROUP,
	MSG_LAST_ERROR, MSG_RECEIPT, MSG_NATTS = MSG_RECEIPT
};

extern void txmq_msg_check_layout(Relation heap);
extern bool txmq_msg_has_receipts(void);
extern IndexScanDesc txmq_begin_sub_scan(Relation heap, Relation pkey,
										 Snapshot snapshot, int32 sub_id,
										 int64 from_id);

/* ---- receive.c, for the long polls of poll.c and for peek.c ---- */
extern int	txmq_arg_max_messages(FunctionCallInfo fcinfo, int argno);
extern int64 txmq_arg_wait_ms(FunctionCallInfo fcinfo, int argno,
							  const char *name);
extern int64 txmq_arg_lease_ms(FunctionCallInfo fcinfo, int argno);
extern int64 txmq_lease_ms(int64 lease_ms, const TxmqSub *sub);
extern int	txmq_receive_once(const TxmqSub *sub, int max, int64 lease_ms,
							  Tuplestorestate *out, TupleDesc out_desc);
extern bool txmq_any_ready(const TxmqSub *sub);
extern int	txmq_look_ready(const TxmqSub *sub, int max, HeapTuple *rows);
extern int32 txmq_next_attempt(const TxmqSub *sub, int64 msg_id,
							   int32 attempt);
extern long txmq_sleep_ms(const TxmqSub *sub, TimestampTz deadline,
						  bool have_cv);
extern void txmq_sleep(ConditionVariable *cv, long ms);

/* ---- half.c, for the worker ---- */
extern int	txmq_half_due(TimestampTz now, int max, int64 *ids,
						  TimestampTz *next_due);
extern void txmq_check_half(int64 msg_id, TimestampTz now);
extern void txmq_half_reclaim(TimestampTz before);

/* ---- reclaim.c ---- */
extern void txmq_reclaim_storage(void);
extern bool txmq_expire(TimestampTz now);
extern void txmq_reap_dropped(TimestampTz now);

/* ---- worker.c ---- */
extern void txmq_worker_shmem_request(void);
extern void txmq_worker_shmem_startup(void);
extern void txmq_register_launcher(void);
extern bool txmq_worker_running(void);
extern bool txmq_workers_usage(TxmqUsage *usage);

#endif							/* TXMQ_H */
