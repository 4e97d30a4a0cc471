/*-------------------------------------------------------------------------
 *
 * xact.c
 *	  What the current transaction owes at its end.
 *
 * A receive locks its rows (FOR UPDATE SKIP LOCKED) and writes nothing.
 * Whether a lease must be written depends on how the transaction ends:
 *
 *	- acked, nacked or rejected in the same transaction: nothing more to do;
 *	- still held at commit: the pre-commit callback writes the leases of all
 *	  of them in one UPDATE (lease mode);
 *	- the transaction (or the savepoint that received them) aborts: the row
 *	  locks vanish, so the messages are available again at once, and the
 *	  attempt is recorded in shared memory (see shmem.c).
 *
 * So a consumer that receives and acks in one transaction pays for exactly
 * one row lock and one delete per message.
 *
 * Counters and wakeups are tallied here too and applied only at commit, so
 * a rolled-back send wakes no one and counts nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

typedef struct Tally
{
	int32		topic_id;
	int32		sub_id;
	int			kind;			/* a TxmqCounter, or TXMQ_WAKE */
	int64		delta;
	SubTransactionId subid;
} Tally;

static TxmqTouched *touched = NULL;
static int	ntouched = 0;
static int	maxtouched = 0;
static Tally *tallies = NULL;
static int	ntallies = 0;
static int	maxtallies = 0;

/* Grow an array kept in TopTransactionContext. */
static void *
grow(void *array, int *max, Size elemsize)
{
	int			newmax = *max ? *max * 2 : 16;

	*max = newmax;
	if (array == NULL)
		return MemoryContextAlloc(TopTransactionContext, newmax * elemsize);
	return repalloc(array, newmax * elemsize);
}

static void
reset(void)
{
	/* the memory goes with TopTransactionContext */
	touched = NULL;
	ntouched = maxtouched = 0;
	tallies = NULL;
	ntallies = maxtallies = 0;
}

void
txmq_xact_received(int32 topic_id, int32 sub_id, int64 msg_id,
				   int32 attempt, TimestampTz lease_until)
{
	TxmqTouched *t;

	if (ntouched == maxtouched)
		touched = grow(touched, &maxtouched, sizeof(TxmqTouched));
	t = &touched[ntouched++];
	t->topic_id = topic_id;
	t->sub_id = sub_id;
	t->msg_id = msg_id;
	t->received_here = true;
	t->attempt = attempt;
	t->lease_until = lease_until;
	t->recv_subid = GetCurrentSubTransactionId();
	t->settle_subid = InvalidSubTransactionId;
}

/* The entry of a message this transaction received and still holds. */
TxmqTouched *
txmq_xact_holding(int32 sub_id, int64 msg_id)
{
	for (int i = 0; i < ntouched; i++)
	{
		TxmqTouched *t = &touched[i];

		if (t->msg_id == msg_id && t->sub_id == sub_id && t->received_here &&
			t->settle_subid == InvalidSubTransactionId)
			return t;
	}
	return NULL;
}

/* The message was acked, nacked or dead-lettered by this transaction. */
void
txmq_xact_settled(int32 topic_id, int32 sub_id, int64 msg_id)
{
	TxmqTouched *t = txmq_xact_holding(sub_id, msg_id);

	if (t == NULL)
	{
		if (ntouched == maxtouched)
			touched = grow(touched, &maxtouched, sizeof(TxmqTouched));
		t = &touched[ntouched++];
		memset(t, 0, sizeof(*t));
		t->topic_id = topic_id;
		t->sub_id = sub_id;
		t->msg_id = msg_id;
		t->received_here = false;
	}
	t->settle_subid = GetCurrentSubTransactionId();
}

/* int8[] of the messages of sub_id this transaction holds. */
Datum
txmq_xact_held_ids(int32 sub_id)
{
	Datum	   *ids = palloc(sizeof(Datum) * (ntouched + 1));
	int			n = 0;

	for (int i = 0; i < ntouched; i++)
		if (touched[i].sub_id == sub_id && touched[i].received_here &&
			touched[i].settle_subid == InvalidSubTransactionId)
			ids[n++] = Int64GetDatum(touched[i].msg_id);
	return PointerGetDatum(construct_array(ids, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

void
txmq_xact_tally(int32 topic_id, int32 sub_id, int kind, int64 delta)
{
	Tally	   *t;

	if (ntallies == maxtallies)
		tallies = grow(tallies, &maxtallies, sizeof(Tally));
	t = &tallies[ntallies++];
	t->topic_id = topic_id;
	t->sub_id = sub_id;
	t->kind = kind;
	t->delta = delta;
	t->subid = GetCurrentSubTransactionId();
}

/* Write the leases of every message still held, in one statement. */
static void
write_leases(void)
{
	TxmqOwnerScope scope;
	Datum	   *subs,
			   *ids,
			   *atts,
			   *untils;
	Datum		args[4];
	int			n = 0;

	for (int i = 0; i < ntouched; i++)
		if (touched[i].received_here &&
			touched[i].settle_subid == InvalidSubTransactionId)
			n++;
	if (n == 0)
		return;

	subs = palloc(sizeof(Datum) * n);
	ids = palloc(sizeof(Datum) * n);
	atts = palloc(sizeof(Datum) * n);
	untils = palloc(sizeof(Datum) * n);
	n = 0;
	for (int i = 0; i < ntouched; i++)
	{
		TxmqTouched *t = &touched[i];

		if (!t->received_here || t->settle_subid != InvalidSubTransactionId)
			continue;
		subs[n] = Int32GetDatum(t->sub_id);
		ids[n] = Int64GetDatum(t->msg_id);
		atts[n] = Int32GetDatum(t->attempt);
		untils[n] = TimestampTzGetDatum(t->lease_until);
		n++;
	}
	args[0] = PointerGetDatum(construct_array(subs, n, INT4OID, 4, true,
											  TYPALIGN_INT));
	args[1] = PointerGetDatum(construct_array(ids, n, INT8OID, 8,
											  FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
	args[2] = PointerGetDatum(construct_array(atts, n, INT4OID, 4, true,
											  TYPALIGN_INT));
	args[3] = PointerGetDatum(construct_array(untils, n, TIMESTAMPTZOID, 8,
											  FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
	/* the commit path has no active snapshot of its own */
	PushActiveSnapshot(GetTransactionSnapshot());
	txmq_begin(&scope, true);
	txmq_exec(PLAN_LEASE, args, NULL, 0);
	txmq_end(&scope);
	PopActiveSnapshot();
}

static void
apply_at_commit(void)
{
	for (int i = 0; i < ntouched; i++)
		txmq_forget_attempts(touched[i].sub_id, touched[i].msg_id);
	for (int i = 0; i < ntallies; i++)
	{
		Tally	   *t = &tallies[i];

		if (t->kind == TXMQ_WAKE)
			txmq_wake(t->topic_id, t->sub_id, t->delta);
		else
			txmq_count(t->topic_id, t->sub_id, t->kind, t->delta);
	}
}

/* A receive was rolled back: the message is free again, the try counts. */
static void
undo_receive(TxmqTouched *t)
{
	txmq_add_aborted_attempt(t->sub_id, t->msg_id);
	txmq_wake(t->topic_id, t->sub_id, 1);
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			write_leases();
			break;
		case XACT_EVENT_PRE_PREPARE:
			for (int i = 0; i < ntouched; i++)
				if (touched[i].received_here)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot PREPARE a transaction that has received txmq messages"),
							 errhint("Receive in lease mode in an ordinary transaction.")));
			break;
		case XACT_EVENT_COMMIT:
			apply_at_commit();
			reset();
			break;
		case XACT_EVENT_ABORT:
			for (int i = 0; i < ntouched; i++)
				if (touched[i].received_here)
					undo_receive(&touched[i]);
			reset();
			break;
		case XACT_EVENT_PREPARE:
			/* rows are prepared; wakeups and counters are dropped */
			reset();
			break;
		default:
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			keep;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = 0; i < ntouched; i++)
		{
			if (touched[i].recv_subid == mySubid)
				touched[i].recv_subid = parentSubid;
			if (touched[i].settle_subid == mySubid)
				touched[i].settle_subid = parentSubid;
		}
		for (int i = 0; i < ntallies; i++)
			if (tallies[i].subid == mySubid)
				tallies[i].subid = parentSubid;
		return;
	}
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;

	keep = 0;
	for (int i = 0; i < ntouched; i++)
	{
		TxmqTouched *t = &touched[i];

		if (t->received_here && t->recv_subid == mySubid)
		{
			undo_receive(t);
			continue;
		}
		if (t->settle_subid == mySubid)
		{
			if (!t->received_here)
				continue;
			t->settle_subid = InvalidSubTransactionId;
		}
		touched[keep++] = *t;
	}
	ntouched = keep;

	keep = 0;
	for (int i = 0; i < ntallies; i++)
		if (tallies[i].subid != mySubid)
			tallies[keep++] = tallies[i];
	ntallies = keep;
}

void
txmq_xact_init(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}
