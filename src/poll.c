/*-------------------------------------------------------------------------
 *
 * poll.c
 *	  The procedures txmq.wait and txmq.poll: long polls that hold no
 *	  snapshot while they sleep.
 *
 * receive(..., wait => ...) sleeps inside the statement that called it,
 * and a running statement keeps its snapshot: for as long as it waits, the
 * backend's xmin holds back VACUUM in the whole database (and on the
 * primary, through hot_standby_feedback, for a consumer on a standby).
 * A procedure CALLed outside a transaction block runs in a non-atomic
 * context and may end its transaction; these two end it before every
 * sleep.  Each look at the subscription runs in a transaction of its own,
 * which SPI_commit ends; the next transaction starts at once but takes no
 * snapshot until the next look, so while the backend sleeps it has no
 * snapshot, no xmin and no transaction id.
 *
 * No wake-up is lost between a look and the sleep after it: the procedure
 * gets on the subscription's condition variable before it looks, as
 * receive does, and a sender that commits after the look's snapshot was
 * taken takes it off the list and sets its latch; a commit leaves both as
 * they are (only an abort cancels a prepared sleep).  The sleep also ends
 * when the next delayed, leased or backed-off message is due (read in the
 * look's transaction), and on any interrupt (statement_timeout,
 * pg_cancel_backend), which is served as usual.  A client that goes away
 * is noticed when the wait ends, as for any statement, or sooner with
 * client_connection_check_interval, whose timer interrupts the sleep; until
 * then its backend holds nothing but its connection slot.
 *
 * txmq.wait only looks (txmq_any_ready): it says whether a receive could
 * take a message now, and the caller receives in whichever mode it
 * wants, transactional included.  txmq.poll takes up to max_messages in
 * the look that finds some and returns them; its last transaction commits
 * when the CALL ends, so they are leased to the caller (lease mode only).
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(txmq_wait);
PG_FUNCTION_INFO_V1(txmq_poll);

/*
 * One look at a subscription, in the transaction of the look: true when
 * the long poll is over.  arg is the look's own state.
 */
typedef bool (*LookFn) (const TxmqSub *sub, void *arg);

/* What txmq.poll's looks collect. */
typedef struct PollTake
{
	int			max;
	int64		lease_ms;		/* -1: the subscription's */
	TupleDesc	desc;			/* txmq.delivery */
	MemoryContext cxt;			/* the procedure's, outlives the looks */
	Tuplestorestate *taken;		/* what the last look took */
} PollTake;

/* Refuse a CALL in a transaction block, or a call that is not a CALL. */
static void
require_nonatomic(FunctionCallInfo fcinfo, const char *procedure)
{
	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		castNode(CallContext, fcinfo->context)->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("txmq.%s must be called with CALL outside a transaction block",
						procedure),
				 errdetail("It ends its transaction before it sleeps, so that it holds no snapshot while it waits."),
				 errhint("Inside a transaction, use txmq.receive(..., wait => ...), which keeps the transaction's snapshot while it waits.")));
}

/*
 * Look at the subscription named by the first two arguments with look,
 * then, until look says the poll is over or wait_ms pass, end the
 * transaction, sleep and look again.
 */
static void
long_poll(FunctionCallInfo fcinfo, int64 wait_ms, LookFn look, void *arg)
{
	TimestampTz deadline = GetCurrentTimestamp() + wait_ms * 1000;
	MemoryContext lookcxt;
	ConditionVariable *cv = NULL;
	int			looks = 0;

	lookcxt = AllocSetContextCreate(CurrentMemoryContext, "txmq long poll",
									ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "txmq: SPI_connect_ext failed");
	for (;;)
	{
		MemoryContext old = MemoryContextSwitchTo(lookcxt);
		ConditionVariable *prev = cv;
		TxmqOwnerScope scope;
		TxmqSub		sub;
		bool		over;
		long		ms = 0;

		txmq_scope_enter_sub(fcinfo, TXMQ_RECEIVE, true, &scope, &sub);

		/*
		 * Get on the wait list before looking, so no commit is missed, and
		 * off the previous look's (the same one, unless the subscription
		 * was dropped and made again) before letting go of it.
		 */
		cv = txmq_sub_cv(sub.topic.topic_id, sub.sub_id);
		if (cv)
			ConditionVariablePrepareToSleep(cv);
		else
			ConditionVariableCancelSleep();
		if (looks++ > 0)
			txmq_sub_cv_release(prev);
		over = look(&sub, arg);
		if (!over)
			ms = txmq_sleep_ms(&sub, deadline, cv != NULL);
		txmq_scope_leave(&scope);
		MemoryContextSwitchTo(old);
		MemoryContextReset(lookcxt);
		if (over || ms <= 0)
			break;
		SPI_commit();
		txmq_sleep(cv, ms);
	}
	ConditionVariableCancelSleep();
	txmq_sub_cv_release(cv);
	SPI_finish();
	MemoryContextDelete(lookcxt);
}

/* The row a procedure returns: its output arguments (here, one). */
static TupleDesc
output_desc(FunctionCallInfo fcinfo)
{
	TupleDesc	desc;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "txmq: procedure has no output argument");
	return BlessTupleDesc(desc);
}

/* A procedure's result: its one output argument. */
static Datum
output_argument(TupleDesc desc, Datum value, bool isnull)
{
	return HeapTupleGetDatum(heap_form_tuple(desc, &value, &isnull));
}

static bool
look_ready(const TxmqSub *sub, void *arg)
{
	bool	   *ready = (bool *) arg;

	*ready = txmq_any_ready(sub);
	return *ready;
}

/*
 * CALL txmq.wait(topic, subscription, timeout, INOUT ready): wait until a
 * receive could take a message of the subscription, at most timeout;
 * ready says whether one could when it returned.
 */
Datum
txmq_wait(PG_FUNCTION_ARGS)
{
	int64		wait_ms = txmq_arg_wait_ms(fcinfo, 2, "timeout");
	bool		ready = false;

	require_nonatomic(fcinfo, "wait");
	long_poll(fcinfo, wait_ms, look_ready, &ready);
	return output_argument(output_desc(fcinfo), BoolGetDatum(ready), false);
}

/*
 * The tuplestore is made in the look's transaction, whose resource owner
 * then keeps any temporary file it spills to until the CALL ends: the
 * messages are read back before that.
 */
static bool
look_take(const TxmqSub *sub, void *arg)
{
	PollTake   *take = (PollTake *) arg;
	MemoryContext old = MemoryContextSwitchTo(take->cxt);

	take->taken = tuplestore_begin_heap(false, false, work_mem);
	MemoryContextSwitchTo(old);
	if (txmq_receive_once(sub, take->max, txmq_lease_ms(take->lease_ms, sub),
						  take->taken, take->desc) > 0)
		return true;
	tuplestore_end(take->taken);
	take->taken = NULL;
	return false;
}

/* What poll took (maybe nothing), as a txmq.delivery[]. */
static Datum
deliveries_array(Tuplestorestate *taken, TupleDesc desc)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int			n = taken ? (int) tuplestore_tuple_count(taken) : 0;
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0;
	ArrayType  *array;

	while (taken && tuplestore_gettupleslot(taken, true, false, slot))
	{
		HeapTuple	row = ExecCopySlotHeapTuple(slot);

		elems[i++] = heap_copy_tuple_as_datum(row, desc);
	}
	ExecDropSingleTupleTableSlot(slot);
	array = construct_array(elems, i, desc->tdtypeid, -1, false,
							TYPALIGN_DOUBLE);
	return PointerGetDatum(array);
}

/*
 * CALL txmq.poll(topic, subscription, max_messages, lease, wait, INOUT
 * messages): receive up to max_messages with a lease, waiting at most wait
 * for the first; messages is empty if none came.
 */
Datum
txmq_poll(PG_FUNCTION_ARGS)
{
	PollTake	take;
	TupleDesc	outdesc;
	Oid			elemtype;
	int64		wait_ms;

	take.lease_ms = txmq_arg_lease_ms(fcinfo, 3);
	wait_ms = txmq_arg_wait_ms(fcinfo, 4, "wait");
	take.max = txmq_arg_max_messages(fcinfo, 2);
	require_nonatomic(fcinfo, "poll");
	outdesc = output_desc(fcinfo);
	elemtype = get_element_type(TupleDescAttr(outdesc, 0)->atttypid);
	take.desc = lookup_rowtype_tupdesc_copy(elemtype, -1);
	take.cxt = CurrentMemoryContext;
	take.taken = NULL;
	long_poll(fcinfo, wait_ms, look_take, &take);
	return output_argument(outdesc, deliveries_array(take.taken, take.desc),
						   false);
}
