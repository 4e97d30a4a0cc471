/*-------------------------------------------------------------------------
 *
 * receive.c
 *	  receive (with long poll), ack, nack, reject, extend_lease, dead
 *	  letters and redrive.
 *
 * receive claims ready rows (attempts.c) and deletes them in the caller's
 * transaction, which holds them in its ledger (xact.c): an ack in the same
 * transaction then writes nothing, and rows still held at commit go back
 * as leases.  A long poll sleeps on the subscription's condition variable,
 * which committing senders signal (shmem.c), and wakes by itself when the
 * next delayed or leased message of the subscription becomes due.
 *
 * Between attempts a waiting receive holds no row locks and no snapshot of
 * its own; like any running statement it does keep the snapshot of the
 * statement that called it, so VACUUM cannot remove rows deleted after the
 * wait began until it returns (at most the wait, which is bounded).  The
 * procedures of poll.c, which long-poll with the functions at the end of
 * this file, commit before they sleep and so hold none.
 *
 * Receipts.  Each delivery gets a receipt, a random UUID: 122 bits from
 * pg_strong_random, so that no client can guess the receipt of a
 * delivery it was not given, as it could a counter or the attempt
 * number.  The ledger keeps it with the held message (xact.c), and a
 * lease written at commit keeps it in the row (held.c).  ack, nack,
 * reject and extend_lease given a receipt act only on the delivery it
 * names: a message received again since (by anyone, in any mode) has a
 * new receipt, and one nacked or dead-lettered has none, so a consumer
 * whose lease ran out can no longer settle the delivery that replaced
 * its own.  Without a receipt they settle whatever the caller holds of
 * the message, as before 0.4.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(txmq_receive);
PG_FUNCTION_INFO_V1(txmq_ack);
PG_FUNCTION_INFO_V1(txmq_ack_array);
PG_FUNCTION_INFO_V1(txmq_nack);
PG_FUNCTION_INFO_V1(txmq_reject);
PG_FUNCTION_INFO_V1(txmq_extend_lease);
PG_FUNCTION_INFO_V1(txmq_dead_letters);
PG_FUNCTION_INFO_V1(txmq_redrive);
PG_FUNCTION_INFO_V1(txmq_claim_sql);

/* Move a leased message of sub to its dead letters; 1 if it was there. */
static int
dead_letter_leased(const TxmqSub *sub, int64 msg_id, int32 attempts,
				   const char *error)
{
	Datum		args[4];
	bool		nulls[4] = {false, false, false, error == NULL};
	int			n;

	args[0] = Int32GetDatum(sub->sub_id);
	args[1] = Int64GetDatum(msg_id);
	args[2] = Int32GetDatum(attempts);
	args[3] = error ? CStringGetTextDatum(error) : (Datum) 0;
	n = txmq_exec(PLAN_DEAD_LETTER, args, nulls, 0);
	txmq_xact_settled_leased(sub->topic.topic_id, sub->sub_id, msg_id);
	txmq_xact_tally(sub->topic.topic_id, sub->sub_id, CNT_DEAD_LETTERED, n);
	return n;
}

/* The columns of a txmq.delivery; before 0.4 it ends before receipt */
enum
{
	DLV_MSG_ID, DLV_PAYLOAD, DLV_HEADERS, DLV_KEY, DLV_ATTEMPT,
	DLV_CREATED_AT, DLV_LEASE_EXPIRES_AT, DLV_RECEIPT, DLV_NATTS
};

/* A walk over txmq.msg, for take_from() */
typedef struct MsgScan
{
	Relation	heap;
	Relation	pkey;
	Relation	key_index;		/* (sub_id, key, msg_id), ordered only */
	Snapshot	snapshot;
	TupleTableSlot *slot;		/* the candidate */
	TupleTableSlot *probe;		/* an earlier message of its key */
} MsgScan;

static TimestampTz
after_ms(TimestampTz t, int64 ms)
{
	return t + ms * 1000;
}

/*
 * Ordered subscriptions deliver a key's messages one at a time: a message
 * waits while this transaction holds a message of its key, or while an
 * earlier message of its key is still there for the scan's snapshot
 * (ready, delayed, leased, or held by a consumer whose delete has not
 * committed).
 */
static bool
key_is_busy(MsgScan *ms, int32 sub_id, int64 msg_id, Datum key)
{
	ScanKeyData keys[3];
	IndexScanDesc scan;
	bool		busy;

	if (txmq_xact_holds_key(sub_id, DatumGetTextPP(key)))
		return true;
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(sub_id));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, key);
	keys[1].sk_collation = ms->key_index->rd_indcollation[1];
	ScanKeyInit(&keys[2], 3, BTLessStrategyNumber, F_INT8LT,
				Int64GetDatum(msg_id));
	scan = txmq_index_beginscan(ms->heap, ms->key_index, ms->snapshot, 3, 0);
	index_rescan(scan, keys, 3, NULL, 0);
	busy = index_getnext_slot(scan, ForwardScanDirection, ms->probe);
	index_endscan(scan);
	return busy;
}

/* What take_ready does with the ready rows it finds */
typedef enum TakeMode
{
	TAKE,						/* claim and delete them (receive) */
	COUNT,						/* count those not claimed elsewhere (wait) */
	LOOK						/* copy those a receive would deliver (peek) */
} TakeMode;

/*
 * The attempt number a delivery of sub's message msg_id, whose row says
 * attempt, would have now; more than max_deliveries: it would go to the
 * dead letters instead.
 */
int32
txmq_next_attempt(const TxmqSub *sub, int64 msg_id, int32 attempt)
{
	return attempt + 1 + txmq_aborted_attempts(sub->sub_id, msg_id);
}

/*
 * Take up to max ready messages of sub into rows[] (mode COUNT: only count
 * those a receive could take now, for txmq.wait; LOOK: copy those it would
 * deliver, for txmq.peek): walk the subscription's rows in id order along
 * the primary key, from where the last walks found nothing to step over
 * (shmem.c), claim each ready one (attempts.c) and delete it.  This is the
 * receive hot path, so it reads the index and deletes through the table AM
 * rather than running a DELETE statement: one index walk, one heap delete
 * per message.
 *
 * Each call takes a new snapshot (READ COMMITTED) that sees this
 * transaction's earlier deletes.  A row that a consumer which committed
 * after the snapshot deleted is skipped here; the caller learns of it from
 * txmq_xact_claims_done() and looks again.
 *
 * The start and its token are read before the snapshot is taken, and only
 * a fresh snapshot may move the start: a transaction snapshot taken
 * earlier would miss rows whose wake already came (see shmem.c).
 */
static int
take_ready(const TxmqSub *sub, int max, TimestampTz now, TakeMode mode,
		   HeapTuple *rows)
{
	MsgScan		ms;
	IndexScanDesc scan;
	CommandId	cid;
	TxmqScanStart start;
	TxmqScanSeen seen = {-1, -1, -1, DT_NOEND};
	int			n = 0;

	txmq_scan_start(sub->topic.topic_id, sub->sub_id, now, &start);
	ms.heap = table_open(txmq_relid("msg"), RowExclusiveLock);
	txmq_msg_check_layout(ms.heap);
	ms.pkey = index_open(txmq_primary_key_index(ms.heap),
						 RowExclusiveLock);
	ms.key_index = sub->ordered ?
		index_open(txmq_relid("msg_key_idx"), AccessShareLock) : NULL;
	CommandCounterIncrement();
	cid = GetCurrentCommandId(true);
	ms.snapshot = RegisterSnapshot(GetTransactionSnapshot());
	ms.slot = table_slot_create(ms.heap, NULL);
	ms.probe = table_slot_create(ms.heap, NULL);

	scan = txmq_begin_sub_scan(ms.heap, ms.pkey, ms.snapshot, sub->sub_id,
							   start.from_id);
	while (n < max && index_getnext_slot(scan, ForwardScanDirection, ms.slot))
	{
		Datum	   *values;
		bool	   *nulls;
		int64		msg_id;
		TimestampTz vt;
		HeapTuple	row;
		TM_FailureData tmfd;
		TM_Result	result;

		slot_getallattrs(ms.slot);
		values = ms.slot->tts_values;
		nulls = ms.slot->tts_isnull;
		vt = DatumGetTimestampTz(values[MSG_VT - 1]);
		msg_id = DatumGetInt64(values[MSG_MSG_ID - 1]);
		if (seen.first_visible < 0)
			seen.first_visible = msg_id;
		seen.last_visible = msg_id;
		if (vt > now)
		{
			if (seen.first_ready < 0)
				seen.due_at = Min(seen.due_at, vt);
			continue;
		}
		if (seen.first_ready < 0)
			seen.first_ready = msg_id;
		if (sub->ordered && !nulls[MSG_KEY - 1] &&
			key_is_busy(&ms, sub->sub_id, msg_id, values[MSG_KEY - 1]))
			continue;
		if (mode != TAKE)
		{
			if (txmq_claimed_elsewhere(sub->sub_id, msg_id))
				continue;
			if (mode == LOOK)
			{
				if (txmq_next_attempt(sub, msg_id,
									  DatumGetInt32(values[MSG_ATTEMPT - 1])) >
					sub->max_deliveries)
					continue;	/* a receive would dead-letter it */
				rows[n] = txmq_received_row(ms.slot, CurrentMemoryContext);
			}
			n++;
			continue;
		}
		if (!txmq_claim(sub->sub_id, msg_id))
			continue;			/* another consumer is taking it, or no room */
		txmq_xact_claimed(sub->sub_id, msg_id);

		row = txmq_received_row(ms.slot, TopTransactionContext);
		/* never wait: a row another transaction is changing is skipped */
		result = table_tuple_delete(ms.heap, &ms.slot->tts_tid, cid,
									ms.snapshot, InvalidSnapshot, false,
									&tmfd, false);
		if (result == TM_Ok)
		{
			rows[n++] = row;
			continue;
		}
		heap_freetuple(row);
		if (result == TM_BeingModified)
			continue;
		/* deleted or updated by a transaction our snapshot cannot see */
		if (result != TM_Updated && result != TM_Deleted)
			elog(ERROR, "txmq: unexpected result %d deleting a message",
				 (int) result);
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent delete")));
	}
	index_endscan(scan);
	if (!IsolationUsesXactSnapshot())
		txmq_scan_advance(sub->topic.topic_id, sub->sub_id, &start, &seen);
	ExecDropSingleTupleTableSlot(ms.probe);
	ExecDropSingleTupleTableSlot(ms.slot);
	UnregisterSnapshot(ms.snapshot);
	if (ms.key_index)
		index_close(ms.key_index, NoLock);
	index_close(ms.pkey, NoLock);
	table_close(ms.heap, NoLock);
	return n;
}

/*
 * Bytes of pg_strong_random not yet used for receipts.  One call per
 * receipt cost more than the rest of receiving it (OpenSSL 3 takes locks
 * and looks up its parameters on every call), so receipts are cut from a
 * block drawn RECEIPT_BLOCK bytes at a time: every byte is still strong
 * random and none is used twice.
 */
#define RECEIPT_BLOCK 4096
static uint8 receipt_bytes[RECEIPT_BLOCK];
static int	receipt_used = RECEIPT_BLOCK;

/* A new receipt: a version 4 UUID, as gen_random_uuid() makes them. */
static void
new_receipt(pg_uuid_t *receipt)
{
	if (receipt_used + UUID_LEN > RECEIPT_BLOCK)
	{
		if (!pg_strong_random(receipt_bytes, RECEIPT_BLOCK))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("txmq: could not generate a random receipt")));
		receipt_used = 0;
	}
	memcpy(receipt->data, receipt_bytes + receipt_used, UUID_LEN);
	receipt_used += UUID_LEN;
	receipt->data[6] = (receipt->data[6] & 0x0f) | 0x40;
	receipt->data[8] = (receipt->data[8] & 0x3f) | 0x80;
}

/* Add the delivery of a received row (cols, nulls) to out. */
static void
put_delivery(Tuplestorestate *out, TupleDesc out_desc, const Datum *cols,
			 const bool *nulls, int32 attempt, const pg_uuid_t *receipt,
			 TimestampTz lease_until)
{
	Datum		values[DLV_NATTS];
	bool		isnull[DLV_NATTS] = {0};

	Assert(out_desc->natts == DLV_NATTS || out_desc->natts == DLV_RECEIPT);
	values[DLV_MSG_ID] = cols[TXMQ_ROW_MSG_ID - 1];
	values[DLV_PAYLOAD] = cols[TXMQ_ROW_PAYLOAD - 1];
	values[DLV_HEADERS] = cols[TXMQ_ROW_HEADERS - 1];
	isnull[DLV_HEADERS] = nulls[TXMQ_ROW_HEADERS - 1];
	values[DLV_KEY] = cols[TXMQ_ROW_KEY - 1];
	isnull[DLV_KEY] = nulls[TXMQ_ROW_KEY - 1];
	values[DLV_ATTEMPT] = Int32GetDatum(attempt);
	values[DLV_CREATED_AT] = cols[TXMQ_ROW_CREATED_AT - 1];
	values[DLV_LEASE_EXPIRES_AT] = TimestampTzGetDatum(lease_until);
	values[DLV_RECEIPT] = UUIDPGetDatum(receipt);
	tuplestore_putvalues(out, out_desc, values, isnull);
}

/*
 * One attempt: take up to max ready messages, add them to out.
 * Messages that have used up their deliveries go to the dead letters
 * instead, and the attempt looks further.  So does it, a few times, when
 * rows it claimed were deleted by a consumer that committed after its
 * snapshot was taken: a new snapshot sees past them.
 */
#define MAX_LOST_ROUNDS 3

int
txmq_receive_once(const TxmqSub *sub, int max, int64 lease_ms,
				  Tuplestorestate *out, TupleDesc out_desc)
{
	HeapTuple  *rows = palloc(sizeof(HeapTuple) * max);
	int			delivered = 0;
	int			lost_rounds = 0;
	int			dead;
	int			lost;

	do
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz until = after_ms(now, lease_ms);
		int			n = take_ready(sub, max - delivered, now, TAKE, rows);

		dead = 0;
		for (int i = 0; i < n; i++)
		{
			Datum		cols[TXMQ_ROW_NATTS];
			bool		nulls[TXMQ_ROW_NATTS];
			int64		msg_id;
			int32		taken;
			int32		crashed;
			int32		attempt;
			bool		deliver;
			pg_uuid_t	receipt = {{0}};

			heap_deform_tuple(rows[i], txmq_row_desc(), cols, nulls);
			msg_id = DatumGetInt64(cols[TXMQ_ROW_MSG_ID - 1]);
			attempt = DatumGetInt32(cols[TXMQ_ROW_ATTEMPT - 1]);
			taken = txmq_take_aborted(sub->sub_id, msg_id,
									  sub->max_deliveries - attempt,
									  &crashed);
			attempt += 1 + taken;
			deliver = attempt <= sub->max_deliveries;
			if (crashed > 0)
				rows[i] = txmq_row_interrupted(rows[i], crashed, attempt - 1);
			if (deliver)
				new_receipt(&receipt);
			txmq_xact_received(sub, msg_id, attempt, taken, deliver,
							   &receipt, until, rows[i]);
			if (!deliver)
			{
				/* its deliveries ran out: no attempt, whatever happens */
				txmq_xact_dead_letter_held(sub, msg_id, attempt - 1, NULL);
				dead++;
				continue;
			}
			put_delivery(out, out_desc, cols, nulls, attempt, &receipt, until);
			delivered++;
		}
		lost = txmq_xact_claims_done();
		if (lost > 0)
			lost_rounds++;
	} while ((dead > 0 || (lost > 0 && lost_rounds <= MAX_LOST_ROUNDS)) &&
			 delivered < max);
	pfree(rows);
	if (delivered > 0)
		txmq_xact_tally(sub->topic.topic_id, sub->sub_id, CNT_DELIVERED,
						delivered);
	return delivered;
}

/*
 * Whether a receive could take a message of sub now; for txmq.wait, which
 * looks without taking.
 */
bool
txmq_any_ready(const TxmqSub *sub)
{
	return take_ready(sub, 1, GetCurrentTimestamp(), COUNT, NULL) > 0;
}

/*
 * Copy into rows[] (TXMQ_ROW_* columns, in the current memory context) up
 * to max messages that a receive of sub would deliver now, in the order
 * it would take them, without claiming or changing them; for txmq.peek.
 */
int
txmq_look_ready(const TxmqSub *sub, int max, HeapTuple *rows)
{
	return take_ready(sub, max, GetCurrentTimestamp(), LOOK, rows);
}

/*
 * How long a long poll that looked at sub may sleep before it must look
 * again: until its deadline, the next delayed or leased message's due time,
 * or without a condition variable to wake it, txmq.poll_interval.
 */
long
txmq_sleep_ms(const TxmqSub *sub, TimestampTz deadline, bool have_cv)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz until = deadline;
	Datum		args[2];
	bool		isnull;
	Datum		due;

	args[0] = Int32GetDatum(sub->sub_id);
	args[1] = TimestampTzGetDatum(now);
	txmq_exec(PLAN_NEXT_DUE, args, NULL, 1);
	due = txmq_col(0, 1, &isnull);
	if (!isnull && DatumGetTimestampTz(due) < until)
		until = DatumGetTimestampTz(due);
	SPI_freetuptable(SPI_tuptable);
	/* a full attempt table frees room without a wake */
	if ((!have_cv || txmq_attempts_full()) &&
		after_ms(now, txmq_poll_interval_ms) < until)
		until = after_ms(now, txmq_poll_interval_ms);
	if (until <= now)
		return 0;
	/* round up: waking a little late beats spinning */
	return (long) ((until - now + 999) / 1000);
}

/*
 * A long poll's sleep of at most ms: on the subscription's condition
 * variable cv, prepared before the look, or without one on the latch alone
 * (polling).  Interrupts are served.
 */
void
txmq_sleep(ConditionVariable *cv, long ms)
{
	if (cv)
	{
		(void) ConditionVariableTimedSleep(cv, ms, PG_WAIT_EXTENSION);
		return;
	}
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* max_messages, argument argno of receive and txmq.poll. */
int
txmq_arg_max_messages(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno) || PG_GETARG_INT32(argno) < 1 ||
		PG_GETARG_INT32(argno) > txmq_max_batch)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: max_messages must be between 1 and %d",
						txmq_max_batch),
				 errhint("The upper limit is txmq.max_batch.")));
	return PG_GETARG_INT32(argno);
}

/* A long poll's wait, argument argno called name, in ms (0 when null). */
int64
txmq_arg_wait_ms(FunctionCallInfo fcinfo, int argno, const char *name)
{
	return txmq_arg_ms(fcinfo, argno, name, 0, MAX_WAIT_MS, 0);
}

/* The lease argument argno in ms; -1 when null (the subscription's lease). */
int64
txmq_arg_lease_ms(FunctionCallInfo fcinfo, int argno)
{
	return txmq_arg_ms(fcinfo, argno, "lease", MIN_LEASE_MS, MAX_LEASE_MS, -1);
}

/* The lease a receive gives, in ms: lease_ms, or else the subscription's. */
int64
txmq_lease_ms(int64 lease_ms, const TxmqSub *sub)
{
	if (lease_ms >= 0)
		return lease_ms;
	return txmq_interval_ms(&sub->lease, "lease", MIN_LEASE_MS, MAX_LEASE_MS);
}

Datum
txmq_receive(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		lease_arg = txmq_arg_lease_ms(fcinfo, 3);
	int64		wait_ms = txmq_arg_wait_ms(fcinfo, 4, "wait");
	TimestampTz deadline = after_ms(GetCurrentTimestamp(), wait_ms);
	int			max = txmq_arg_max_messages(fcinfo, 2);
	ConditionVariable *cv = NULL;
	TxmqOwnerScope scope;
	TxmqSub		sub;
	int64		lease_ms;

	if (wait_ms > 0 && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("txmq: receive with wait needs READ COMMITTED isolation"),
				 errdetail("A transaction snapshot would never see the messages it waits for.")));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	txmq_scope_enter_sub(fcinfo, TXMQ_RECEIVE, true, &scope, &sub);
	lease_ms = txmq_lease_ms(lease_arg, &sub);
	if (wait_ms > 0)
		cv = txmq_sub_cv(sub.topic.topic_id, sub.sub_id);
	for (;;)
	{
		long		ms;

		/* get on the wait list before looking, so no commit is missed */
		if (cv)
			ConditionVariablePrepareToSleep(cv);
		if (txmq_receive_once(&sub, max, lease_ms, rsinfo->setResult,
							  rsinfo->setDesc) > 0 || wait_ms == 0)
			break;
		ms = txmq_sleep_ms(&sub, deadline, cv != NULL);
		if (ms <= 0)
			break;				/* the wait is over */
		txmq_sleep(cv, ms);
	}
	if (cv)
		ConditionVariableCancelSleep();
	if (wait_ms > 0)
		txmq_sub_cv_release(cv);
	txmq_scope_leave(&scope);
	return (Datum) 0;
}

/*
 * A message of an ordered subscription left it (acked or dead-lettered):
 * the next message of its key, held back until now, becomes receivable
 * when this transaction commits, and listeners must hear of it.
 */
static void
key_released(const TxmqSub *sub)
{
	if (sub->ordered)
		txmq_notify_topic(&sub->topic);
}

/*
 * The receipt argument argno, NULL when absent: null, or a function
 * declared before 0.4 without it.
 */
static const pg_uuid_t *
arg_receipt(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	return PG_GETARG_UUID_P(argno);
}

/*
 * ack and ack(array): settle those of ids that the caller holds (each the
 * delivery named by the receipt at the same place in receipts, if given).
 * Messages received in this transaction are already deleted; leased ones
 * are deleted now.
 */
static int
ack_ids(FunctionCallInfo fcinfo, ArrayType *ids, ArrayType *receipts)
{
	TxmqOwnerScope scope;
	TxmqSub		sub;
	Datum	   *id_datums;
	Datum	   *receipt_datums = NULL;
	int			nids;
	int			nleased = 0;
	int			n = 0;

	deconstruct_array(ids, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &id_datums, NULL, &nids);
	if (receipts)
		deconstruct_array(receipts, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
						  &receipt_datums, NULL, &nids);
	txmq_scope_enter_sub(fcinfo, TXMQ_RECEIVE, true, &scope, &sub);
	for (int i = 0; i < nids; i++)
	{
		if (txmq_xact_ack_held(sub.sub_id, DatumGetInt64(id_datums[i]),
							   receipts ? DatumGetUUIDP(receipt_datums[i])
							   : NULL))
			n++;
		else
		{
			if (receipts)
				receipt_datums[nleased] = receipt_datums[i];
			id_datums[nleased++] = id_datums[i];
		}
	}
	if (nleased > 0)
	{
		Datum		args[3];
		int			deleted;

		args[0] = Int32GetDatum(sub.sub_id);
		args[1] = PointerGetDatum(construct_array(id_datums, nleased,
												  INT8OID, 8,
												  FLOAT8PASSBYVAL,
												  TYPALIGN_DOUBLE));
		if (receipts)
			args[2] = PointerGetDatum(construct_array(receipt_datums, nleased,
													  UUIDOID, UUID_LEN,
													  false, TYPALIGN_CHAR));
		deleted = txmq_exec(receipts ? PLAN_ACK_RECEIPTS : PLAN_ACK, args,
							NULL, 0);
		for (int i = 0; i < deleted; i++)
		{
			bool		isnull;

			txmq_xact_settled_leased(sub.topic.topic_id, sub.sub_id,
									 DatumGetInt64(txmq_col(i, 1, &isnull)));
		}
		n += deleted;
	}
	txmq_xact_tally(sub.topic.topic_id, sub.sub_id, CNT_ACKED, n);
	if (n > 0)
		key_released(&sub);
	txmq_scope_leave(&scope);
	return n;
}

static void
check_id_array(ArrayType *ids)
{
	if (ARR_NDIM(ids) > 1 || array_contains_nulls(ids))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("txmq: msg_ids must be a one-dimensional array without nulls")));
}

/* ack(array)'s receipts: NULL, or one for each of ids, in their order. */
static ArrayType *
arg_receipts(FunctionCallInfo fcinfo, int argno, ArrayType *ids)
{
	ArrayType  *receipts;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	receipts = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(receipts) > 1 || array_contains_nulls(receipts) ||
		ArrayGetNItems(ARR_NDIM(receipts), ARR_DIMS(receipts)) !=
		ArrayGetNItems(ARR_NDIM(ids), ARR_DIMS(ids)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: receipts must be a one-dimensional array without nulls, one receipt for each msg_id"),
				 errhint("Pass the receipt of each message as receive returned it, in the order of msg_ids, or no receipts.")));
	return receipts;
}

Datum
txmq_ack(PG_FUNCTION_ARGS)
{
	const pg_uuid_t *receipt = arg_receipt(fcinfo, 3);
	Datum		id;
	Datum		r;

	txmq_require_arg(fcinfo, 2, "msg_id", NULL);
	id = PG_GETARG_DATUM(2);
	r = UUIDPGetDatum(receipt);
	PG_RETURN_BOOL(ack_ids(fcinfo,
						   construct_array(&id, 1, INT8OID, 8,
										   FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE),
						   receipt ?
						   construct_array(&r, 1, UUIDOID, UUID_LEN, false,
										   TYPALIGN_CHAR) : NULL) > 0);
}

Datum
txmq_ack_array(PG_FUNCTION_ARGS)
{
	ArrayType  *ids;

	txmq_require_arg(fcinfo, 2, "msg_ids", NULL);
	ids = PG_GETARG_ARRAYTYPE_P(2);
	check_id_array(ids);
	PG_RETURN_INT32(ack_ids(fcinfo, ids, arg_receipts(fcinfo, 3, ids)));
}

/*
 * Find a message the caller holds for nack / reject (the delivery receipt
 * names, if not NULL): received in this transaction (*held is set), or
 * leased (its row now locked; a row that another transaction is changing
 * is not held).  Returns its attempt count, with the attempts of
 * transactions that aborted since its lease was written (the row the
 * caller writes carries them, and txmq_xact_settled_leased takes them
 * over), or -1 if the caller does not hold it.
 */
static int32
find_held(const TxmqSub *sub, int64 msg_id, const pg_uuid_t *receipt,
		  bool *held)
{
	Datum		args[3];
	bool		isnull;
	int32		attempt;

	*held = txmq_xact_holding(sub->sub_id, msg_id, receipt, &attempt);
	if (*held)
		return attempt;
	args[0] = Int32GetDatum(sub->sub_id);
	args[1] = Int64GetDatum(msg_id);
	args[2] = UUIDPGetDatum(receipt);
	if (txmq_exec(receipt ? PLAN_LOCK_RECEIPT : PLAN_LOCK, args, NULL, 1) == 0)
		return -1;
	return DatumGetInt32(txmq_col(0, 1, &isnull)) +
		txmq_aborted_attempts(sub->sub_id, msg_id);
}

static char *
arg_error(FunctionCallInfo fcinfo, int argno)
{
	text	   *t;

	if (PG_ARGISNULL(argno))
		return NULL;
	t = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(t) > MAX_ERROR_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("txmq: error text is longer than %d bytes",
						MAX_ERROR_BYTES)));
	return text_to_cstring(t);
}

/* Exponential backoff with jitter: in [d/2, d], d = base * 2^(attempt-1). */
static int64
backoff_ms(const TxmqSub *sub, int32 attempt)
{
	int64		base = txmq_interval_ms(&sub->backoff_base, "backoff_base",
										0, PG_INT64_MAX);
	int64		max = txmq_interval_ms(&sub->backoff_max, "backoff_max",
									   0, PG_INT64_MAX);
	int64		d = base;

	for (int i = 1; i < attempt && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	return d / 2 + (int64) (pg_prng_double(&pg_global_prng_state) * (d - d / 2));
}

/* Move a held message to the dead letters. */
static void
dead_letter_found(const TxmqSub *sub, int64 msg_id, bool held,
				  int32 attempts, const char *error)
{
	if (held)
		txmq_xact_dead_letter_held(sub, msg_id, attempts, error);
	else
		dead_letter_leased(sub, msg_id, attempts, error);
}

Datum
txmq_nack(PG_FUNCTION_ARGS)
{
	int64		delay_ms = txmq_arg_ms(fcinfo, 3, "delay", 0, MAX_DELAY_MS, -1);
	char	   *error = arg_error(fcinfo, 4);
	const pg_uuid_t *receipt = arg_receipt(fcinfo, 5);
	int64		msg_id;
	TxmqOwnerScope scope;
	TxmqSub		sub;
	bool		held;
	int32		attempt;

	txmq_require_arg(fcinfo, 2, "msg_id", NULL);
	msg_id = PG_GETARG_INT64(2);
	txmq_scope_enter_sub(fcinfo, TXMQ_RECEIVE, true, &scope, &sub);
	attempt = find_held(&sub, msg_id, receipt, &held);
	if (attempt >= sub.max_deliveries)
	{
		dead_letter_found(&sub, msg_id, held, attempt, error);
		key_released(&sub);
	}
	else if (attempt >= 0)
	{
		int64		ms = delay_ms >= 0 ? delay_ms : backoff_ms(&sub, attempt);
		TimestampTz due = after_ms(GetCurrentTimestamp(), ms);

		if (held)
			txmq_xact_nack_held(sub.sub_id, msg_id, due, error);
		else
		{
			Datum		args[5];
			bool		nulls[5] = {false, false, false, error == NULL, false};

			args[0] = Int32GetDatum(sub.sub_id);
			args[1] = Int64GetDatum(msg_id);
			args[2] = TimestampTzGetDatum(due);
			args[3] = error ? CStringGetTextDatum(error) : (Datum) 0;
			args[4] = Int32GetDatum(attempt);
			txmq_exec(PLAN_NACK, args, nulls, 0);
			txmq_xact_settled_leased(sub.topic.topic_id, sub.sub_id, msg_id);
		}
		txmq_xact_tally(sub.topic.topic_id, sub.sub_id, CNT_NACKED, 1);
		/* one waiter should learn the new due time */
		txmq_xact_wake(sub.topic.topic_id, sub.sub_id, 1, msg_id);
		/* and listeners when it is receivable: at commit, or when due */
		if (ms == 0)
			txmq_notify_topic(&sub.topic);
		else if (sub.topic.notify)
			txmq_xact_due(sub.topic.topic_id, due);
	}
	txmq_scope_leave(&scope);
	PG_RETURN_BOOL(attempt >= 0);
}

Datum
txmq_reject(PG_FUNCTION_ARGS)
{
	char	   *error = arg_error(fcinfo, 3);
	const pg_uuid_t *receipt = arg_receipt(fcinfo, 4);
	TxmqOwnerScope scope;
	TxmqSub		sub;
	bool		held;
	int32		attempt;

	txmq_require_arg(fcinfo, 2, "msg_id", NULL);
	txmq_scope_enter_sub(fcinfo, TXMQ_RECEIVE, true, &scope, &sub);
	attempt = find_held(&sub, PG_GETARG_INT64(2), receipt, &held);
	if (attempt >= 0)
	{
		dead_letter_found(&sub, PG_GETARG_INT64(2), held, attempt,
						  error ? error : "rejected");
		key_released(&sub);
	}
	txmq_scope_leave(&scope);
	PG_RETURN_BOOL(attempt >= 0);
}

Datum
txmq_extend_lease(PG_FUNCTION_ARGS)
{
	const pg_uuid_t *receipt = arg_receipt(fcinfo, 4);
	TimestampTz until;
	TxmqOwnerScope scope;
	TxmqSub		sub;
	bool		found = true;

	txmq_require_arg(fcinfo, 2, "msg_id", NULL);
	txmq_require_arg(fcinfo, 3, "lease", NULL);
	until = after_ms(GetCurrentTimestamp(),
					 txmq_arg_lease_ms(fcinfo, 3));

	txmq_scope_enter_sub(fcinfo, TXMQ_RECEIVE, true, &scope, &sub);
	if (!txmq_xact_extend_held(sub.sub_id, PG_GETARG_INT64(2), receipt,
							   until))
	{
		Datum		args[4];

		args[0] = Int32GetDatum(sub.sub_id);
		args[1] = PG_GETARG_DATUM(2);
		args[2] = TimestampTzGetDatum(until);
		args[3] = UUIDPGetDatum(receipt);
		found = txmq_exec(receipt ? PLAN_EXTEND_RECEIPT : PLAN_EXTEND, args,
						  NULL, 0) > 0;
		/* a shorter lease falls due sooner: receivers must learn of it */
		if (found)
			txmq_xact_wake(sub.topic.topic_id, sub.sub_id, 1,
						   DatumGetInt64(args[1]));
		/* and the worker, to notify listeners when it runs out */
		if (found && sub.topic.notify)
			txmq_xact_due(sub.topic.topic_id, until);
	}
	txmq_scope_leave(&scope);
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(until);
}

Datum
txmq_dead_letters(PG_FUNCTION_ARGS)
{
	TxmqOwnerScope scope;
	TxmqSub		sub;
	Datum		arg;

	txmq_scope_enter_sub(fcinfo, TXMQ_RECEIVE, false, &scope, &sub);
	arg = Int32GetDatum(sub.sub_id);
	txmq_exec(PLAN_DEAD_LETTERS, &arg, NULL, 0);
	txmq_return_tuptable(fcinfo);
	txmq_scope_leave(&scope);
	return (Datum) 0;
}

Datum
txmq_redrive(PG_FUNCTION_ARGS)
{
	TxmqOwnerScope scope;
	TxmqSub		sub;
	Datum		args[2];
	bool		nulls[2] = {false, PG_ARGISNULL(2)};
	int			n;

	if (!nulls[1])
		check_id_array(PG_GETARG_ARRAYTYPE_P(2));
	txmq_scope_enter_sub(fcinfo, TXMQ_RECEIVE, true, &scope, &sub);
	args[0] = Int32GetDatum(sub.sub_id);
	args[1] = nulls[1] ? (Datum) 0 : PG_GETARG_DATUM(2);
	n = txmq_exec(PLAN_REDRIVE, args, nulls, 0);
	txmq_xact_wake(sub.topic.topic_id, sub.sub_id, n, 0);
	if (n > 0)
		txmq_notify_topic(&sub.topic);
	txmq_scope_leave(&scope);
	PG_RETURN_INT32(n);
}

/*
 * txmq._claim() of version 0.1, which receive no longer calls: kept so
 * that a 0.1 installation still loads until ALTER EXTENSION txmq UPDATE
 * drops it.
 */
Datum
txmq_claim_sql(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("txmq._claim() was removed in txmq 0.2"),
			 errhint("Run ALTER EXTENSION txmq UPDATE.")));
	PG_RETURN_VOID();
}
