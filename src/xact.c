/*-------------------------------------------------------------------------
 *
 * xact.c
 *	  What the current transaction owes at its end.
 *
 * A receive deletes the rows it delivers (receive.c).  What else must
 * happen depends on how the transaction ends:
 *
 *	- acked in the same transaction: nothing; the delete was the ack;
 *	- nacked or rejected in the same transaction: the row was already put
 *	  back with a backoff, or into the dead letters, when that was called;
 *	- still held at commit: the pre-commit callback puts the rows back as
 *	  leases, all of them in one INSERT (lease mode);
 *	- the transaction, or the savepoint that received them, aborts: the
 *	  delete is undone, so the messages are available again at once, and
 *	  the attempt is counted in shared memory (shmem.c).
 *
 * So a consumer that receives and acks in one transaction writes exactly
 * one row deletion per message.
 *
 * No consumer ever waits for another one.  Only one transaction at a
 * time changes a message's row, and the others skip the row meanwhile:
 * receivers claim rows in shared memory (shmem.c) and never wait for a
 * row's lock (receive.c deletes with wait = false), and an ack, nack,
 * reject or extend_lease of a leased message locks its row with SKIP
 * LOCKED, so a message that someone else is working on is not held by
 * the caller.  Claims only spare receivers a delete that would fail, so
 * a claim lasts as long as the row change it announces is undecided:
 *
 *	- a message a receive took (delivered, or dead-lettered because its
 *	  deliveries ran out) stays claimed until commit or abort, or the
 *	  rollback of the savepoint that received it;
 *	- a claimed row that another consumer got first was never changed
 *	  here: released as soon as the receive is done.
 *
 * Aborted attempts (shmem.c) go with the right to change the row.
 * Whoever changes a message's row takes the message's count over: a
 * receive adds it to the attempt number, a nack or dead letter of a
 * leased message writes it into the row, an ack drops it with the
 * message.  If that is undone (the transaction or the savepoint aborts),
 * the count goes back, plus one if the consumer was given the message; a
 * receive that only dead-lettered an exhausted message delivered nothing,
 * so its abort adds none.  So a commit has nothing to count, and each
 * place that changes a message before its transaction ends is safe:
 *
 *	- dead-lettering in a receive, nack, reject: the rows they write carry
 *	  the attempt number the transaction took, and they are undone with it;
 *	- a lease written at commit carries the attempt of its receive;
 *	- redrive inserts rows from dead letters, whose attempts went with
 *	  them, starting again at 0;
 *	- a savepoint's rollback undoes exactly the entries received or
 *	  settled in it, and gives back what they took.
 *
 * Counters and wakeups are tallied here too and applied only at commit,
 * so a rolled-back send wakes no one and counts nothing.
 *
 * NOTIFY.  A transaction that makes messages of a topic with notify on
 * receivable at its commit notifies itself (Async_Notify, sent at commit,
 * one per channel).  One that makes them receivable only later (a delayed
 * send, a lease written at commit, a nack's backoff, an extended lease)
 * tallies their due time, posted at commit to shared memory, where the
 * worker finds it (shmem.c, worker.c).  A rollback cannot notify, so one
 * that makes received messages receivable again asks the worker to
 * notify at once; so does the rollback of a savepoint that received them,
 * while its transaction goes on.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* A counter to add to, receivers to wake, or a due time to post, at commit */
#define WAKE NUM_TXMQ_COUNTERS
#define DUE (NUM_TXMQ_COUNTERS + 1)

typedef struct Tally
{
	int32		topic_id;
	int32		sub_id;
	int			kind;			/* a TxmqCounter, WAKE or DUE */
	int64		delta;			/* WAKE: messages now available */
	int64		from_id;		/* WAKE: the smallest of their ids */
	TimestampTz due;			/* DUE: when messages of the topic fall due */
	SubTransactionId subid;
} Tally;

typedef struct Claim
{
	int32		sub_id;
	int64		msg_id;
} Claim;

/* Growable arrays in TopTransactionContext, emptied at transaction end. */
#define ARRAY_OF(type) struct { type *items; int n; int max; }
#define APPEND(a) \
	((a).n == (a).max ? \
	 (void) ((a).items = grow((a).items, &(a).max, sizeof(*(a).items))) : \
	 (void) 0, \
	 &(a).items[(a).n++])

static ARRAY_OF(TxmqTouched) touched;
static ARRAY_OF(Tally) tallies;
static ARRAY_OF(Claim) claims;	/* taken by the receive now running */

static void *
grow(void *items, int *max, Size elemsize)
{
	*max = *max ? *max * 2 : 16;
	if (items == NULL)
		return MemoryContextAlloc(TopTransactionContext, *max * elemsize);
	return repalloc(items, *max * elemsize);
}

static void
reset(void)
{
	/* the memory goes with TopTransactionContext */
	memset(&touched, 0, sizeof(touched));
	memset(&tallies, 0, sizeof(tallies));
	memset(&claims, 0, sizeof(claims));
}

/* A claim taken by the running receive (see txmq_xact_claims_done). */
void
txmq_xact_claimed(int32 sub_id, int64 msg_id)
{
	Claim	   *c = APPEND(claims);

	c->sub_id = sub_id;
	c->msg_id = msg_id;
}

/*
 * This transaction's entry of a message it received and still holds, or
 * (if settled) also one it has settled since.
 */
static TxmqTouched *
find_received(int32 sub_id, int64 msg_id, bool settled)
{
	for (int i = 0; i < touched.n; i++)
	{
		TxmqTouched *t = &touched.items[i];

		if (t->msg_id == msg_id && t->sub_id == sub_id && t->received_here &&
			(settled || t->settle_subid == InvalidSubTransactionId))
			return t;
	}
	return NULL;
}

/*
 * The receive has recorded what it took: release the claims on rows it
 * claimed but could not delete (another consumer got them first), and
 * return how many those were.  Rows it took stay claimed, also those it
 * dead-lettered at once (see the file header).
 */
int
txmq_xact_claims_done(void)
{
	int			lost = 0;

	for (int i = 0; i < claims.n; i++)
		if (!find_received(claims.items[i].sub_id, claims.items[i].msg_id,
						   true))
		{
			txmq_unclaim(claims.items[i].sub_id, claims.items[i].msg_id, 0);
			lost++;
		}
	claims.n = 0;
	return lost;
}

/*
 * A receive deleted and delivered row, which is kept: it must live in
 * TopTransactionContext.
 */
TxmqTouched *
txmq_xact_received(int32 topic_id, int32 sub_id, int64 msg_id,
				   int32 attempt, int32 taken, bool delivered,
				   TimestampTz lease_until, HeapTuple row)
{
	TxmqTouched *t = APPEND(touched);

	t->topic_id = topic_id;
	t->sub_id = sub_id;
	t->msg_id = msg_id;
	t->received_here = true;
	t->delivered = delivered;
	t->notify = false;			/* the caller sets it */
	t->taken = taken;
	t->attempt = attempt;
	t->lease_until = lease_until;
	t->recv_subid = GetCurrentSubTransactionId();
	t->settle_subid = InvalidSubTransactionId;
	t->row = row;
	return t;
}

/* The entry of a message this transaction received and still holds. */
TxmqTouched *
txmq_xact_holding(int32 sub_id, int64 msg_id)
{
	return find_received(sub_id, msg_id, false);
}

/* Does this transaction hold a message of sub_id with this key? */
bool
txmq_xact_holds_key(int32 sub_id, text *key)
{
	for (int i = 0; i < touched.n; i++)
	{
		TxmqTouched *t = &touched.items[i];
		bool		isnull;
		Datum		held_key;

		if (t->sub_id != sub_id || !t->received_here ||
			t->settle_subid != InvalidSubTransactionId)
			continue;
		held_key = heap_getattr(t->row, TXMQ_ROW_KEY, txmq_row_desc(),
								&isnull);
		if (!isnull)
		{
			text	   *held = DatumGetTextPP(held_key);

			/* byte for byte, as texteq compares in txmq.msg's collation */
			if (VARSIZE_ANY_EXHDR(held) == VARSIZE_ANY_EXHDR(key) &&
				memcmp(VARDATA_ANY(held), VARDATA_ANY(key),
					   VARSIZE_ANY_EXHDR(key)) == 0)
				return true;
		}
	}
	return false;
}

/*
 * The message was acked, nacked or dead-lettered by this transaction:
 * held is its entry if this transaction received it, else NULL (it was
 * leased earlier, and the caller has locked and written its row: the row
 * carries its aborted attempts now, or they went with it).
 */
void
txmq_xact_settled(int32 topic_id, int32 sub_id, int64 msg_id,
				  TxmqTouched *held)
{
	TxmqTouched *t = held;

	if (t == NULL)
	{
		t = APPEND(touched);
		memset(t, 0, sizeof(*t));
		t->topic_id = topic_id;
		t->sub_id = sub_id;
		t->msg_id = msg_id;
		t->taken = txmq_take_aborted(sub_id, msg_id);
	}
	t->settle_subid = GetCurrentSubTransactionId();
}

static Tally *
tally(int32 topic_id, int32 sub_id, int kind, int64 delta, int64 from_id)
{
	Tally	   *t = APPEND(tallies);

	t->topic_id = topic_id;
	t->sub_id = sub_id;
	t->kind = kind;
	t->delta = delta;
	t->from_id = from_id;
	t->due = 0;
	t->subid = GetCurrentSubTransactionId();
	return t;
}

void
txmq_xact_tally(int32 topic_id, int32 sub_id, TxmqCounter c, int64 delta)
{
	tally(topic_id, sub_id, c, delta, 0);
}

/*
 * At commit, wake receivers of sub_id: nmessages became available (or a
 * due time changed), the smallest id among them from_id (see shmem.c).
 */
void
txmq_xact_wake(int32 topic_id, int32 sub_id, int64 nmessages, int64 from_id)
{
	tally(topic_id, sub_id, WAKE, nmessages, from_id);
}

/*
 * At commit, tell the worker that messages of topic_id, which has notify
 * on, fall due at due: it notifies then (see the file header).
 */
void
txmq_xact_due(int32 topic_id, TimestampTz due)
{
	Tally	   *last = tallies.n > 0 ? &tallies.items[tallies.n - 1] : NULL;

	/* a loop of delayed sends: one entry, the earliest */
	if (last && last->kind == DUE && last->topic_id == topic_id &&
		last->subid == GetCurrentSubTransactionId())
		last->due = Min(last->due, due);
	else
		tally(topic_id, 0, DUE, 0, 0)->due = due;
}

static int
cmp_sub_msg(const void *a, const void *b)
{
	const TxmqTouched *x = *(TxmqTouched *const *) a;
	const TxmqTouched *y = *(TxmqTouched *const *) b;

	if (x->sub_id != y->sub_id)
		return (x->sub_id > y->sub_id) - (x->sub_id < y->sub_id);
	return (x->msg_id > y->msg_id) - (x->msg_id < y->msg_id);
}

/* Put every message still held back as a lease, in one statement. */
static void
write_leases(void)
{
	TxmqTouched **held = palloc(sizeof(TxmqTouched *) * (touched.n + 1));
	int			n = 0;

	for (int i = 0; i < touched.n; i++)
		if (touched.items[i].received_here &&
			touched.items[i].settle_subid == InvalidSubTransactionId)
			held[n++] = &touched.items[i];
	if (n == 0)
		return;

	/* the commit path has no active snapshot of its own */
	PushActiveSnapshot(GetTransactionSnapshot());
	txmq_restore(held, n, true, NULL);
	PopActiveSnapshot();

	/*
	 * A waiting receiver must learn when these leases run out: one wake
	 * per subscription, from its smallest id; and a listener too, when the
	 * first of them runs out.
	 */
	qsort(held, n, sizeof(TxmqTouched *), cmp_sub_msg);
	for (int i = 0; i < n; i++)
	{
		TimestampTz first = held[i]->lease_until;
		int			j;

		if (i > 0 && held[i]->sub_id == held[i - 1]->sub_id)
			continue;
		txmq_xact_wake(held[i]->topic_id, held[i]->sub_id, 1,
					   held[i]->msg_id);
		for (j = i + 1; j < n && held[j]->sub_id == held[i]->sub_id; j++)
			first = Min(first, held[j]->lease_until);
		if (held[i]->notify)
			txmq_xact_due(held[i]->topic_id, first);
	}
}

static void
apply_at_commit(void)
{
	for (int i = 0; i < touched.n; i++)
		txmq_unclaim(touched.items[i].sub_id, touched.items[i].msg_id, 0);
	for (int i = 0; i < tallies.n; i++)
	{
		Tally	   *t = &tallies.items[i];

		if (t->kind == WAKE)
			txmq_wake(t->topic_id, t->sub_id, t->delta, t->from_id);
		else if (t->kind == DUE)
			txmq_notify_post(t->topic_id, t->due, false);
		else
			txmq_count(t->topic_id, t->sub_id, t->kind, t->delta);
	}
}

/*
 * What entry t did was rolled back: the aborted attempts it took go back,
 * plus one if the consumer was given the message, and a received message
 * is free again.
 */
static void
undo(TxmqTouched *t)
{
	txmq_unclaim(t->sub_id, t->msg_id, t->taken + (t->delivered ? 1 : 0));
	if (t->received_here)
		txmq_wake(t->topic_id, t->sub_id, 1, t->msg_id);

	/*
	 * The rollback cannot notify: the worker must.  A received message is
	 * receivable again now.  A leased one whose settling is undone is again
	 * what it was, which is receivable only if its lease ran out meanwhile:
	 * the worker notifies if any row of its topic is due (its query knows
	 * whether the topic has notify on; this callback cannot look).
	 */
	if (t->received_here && t->notify)
		txmq_notify_post(t->topic_id, DT_NOBEGIN, true);
	else if (!t->received_here)
		txmq_notify_post(t->topic_id, DT_NOBEGIN, false);
}

/*
 * Without shared_preload_libraries there is no shared memory to count
 * aborted attempts in, and a rolled-back transaction can write nothing:
 * the messages come back with the attempt number they had, and a message
 * whose transaction always aborts never reaches max_deliveries.  Refusing
 * to receive would break lease mode, which counts fine (its attempt is
 * written when the receive commits), so say it where it happens: in the
 * client and in the server log, at each rollback that loses attempts.
 */
static void
warn_uncounted(int ndelivered)
{
	if (txmq_preloaded || ndelivered == 0)
		return;
	ereport(WARNING,
			(errcode(ERRCODE_WARNING),
			 errmsg_plural("txmq: the rolled-back delivery of %d message was not counted",
						   "txmq: the rolled-back deliveries of %d messages were not counted",
						   ndelivered, ndelivered),
			 errdetail("txmq is not in shared_preload_libraries, so aborted attempts do not count toward max_deliveries: a message whose transaction always aborts is delivered again and again."),
			 errhint("Add txmq to shared_preload_libraries and restart, or commit the receive before the work (lease mode).")));
}

/* Does the rollback of savepoint subid undo entry t? */
static bool
undone_by(const TxmqTouched *t, SubTransactionId subid)
{
	if (t->received_here)
		return t->recv_subid == subid;
	return t->settle_subid == subid;
}

static void
release_claims(void)
{
	for (int i = 0; i < claims.n; i++)
		txmq_unclaim(claims.items[i].sub_id, claims.items[i].msg_id, 0);
	claims.n = 0;
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
			for (int i = 0; i < touched.n; i++)
				if (touched.items[i].received_here)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot PREPARE a transaction that has received txmq messages"),
							 errhint("Receive in an ordinary transaction.")));
			/* as PostgreSQL refuses it for a transaction that notifies */
			for (int i = 0; i < tallies.n; i++)
				if (tallies.items[i].kind == DUE)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot PREPARE a transaction that makes txmq messages due later in a topic with notify on"),
							 errdetail("Their notification would be owed at commit, and a prepared transaction's commit sends none."),
							 errhint("Use an ordinary transaction, or a topic with notify off.")));
			break;
		case XACT_EVENT_COMMIT:
			release_claims();
			apply_at_commit();
			reset();
			break;
		case XACT_EVENT_ABORT:
			{
				int			ndelivered = 0;

				release_claims();
				for (int i = 0; i < touched.n; i++)
				{
					undo(&touched.items[i]);
					ndelivered += touched.items[i].received_here &&
						touched.items[i].delivered;
				}
				reset();
				warn_uncounted(ndelivered);
			}
			break;
		case XACT_EVENT_PREPARE:
			/* only sends get here: rows are prepared, wakeups dropped */
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
	int			ndelivered = 0;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = 0; i < touched.n; i++)
		{
			if (touched.items[i].recv_subid == mySubid)
				touched.items[i].recv_subid = parentSubid;
			if (touched.items[i].settle_subid == mySubid)
				touched.items[i].settle_subid = parentSubid;
		}
		for (int i = 0; i < tallies.n; i++)
			if (tallies.items[i].subid == mySubid)
				tallies.items[i].subid = parentSubid;
		return;
	}
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;

	release_claims();
	keep = 0;
	for (int i = 0; i < touched.n; i++)
	{
		TxmqTouched *t = &touched.items[i];

		if (undone_by(t, mySubid))
		{
			undo(t);
			ndelivered += t->received_here && t->delivered;
			continue;
		}
		/* what settled it was rolled back with the savepoint */
		if (t->settle_subid == mySubid)
			t->settle_subid = InvalidSubTransactionId;
		touched.items[keep++] = *t;
	}
	touched.n = keep;

	keep = 0;
	for (int i = 0; i < tallies.n; i++)
		if (tallies.items[i].subid != mySubid)
			tallies.items[keep++] = tallies.items[i];
	tallies.n = keep;
	warn_uncounted(ndelivered);
}

void
txmq_xact_init(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}
