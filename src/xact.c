/*-------------------------------------------------------------------------
 *
 * xact.c
 *	  What the current transaction owes at its end.
 *
 * A receive deletes the rows it delivers (receive.c) and records them in
 * this transaction's ledger, kept here with their rows (held.c).  What
 * else must happen depends on how the transaction ends:
 *
 *	- acked in the same transaction: nothing; the delete was the ack;
 *	- nacked or rejected in the same transaction: the row was already put
 *	  back with a backoff, or into the dead letters, when that was called;
 *	- still held at commit: the pre-commit callback puts the rows back as
 *	  leases, all of them in one INSERT (lease mode);
 *	- the transaction, or the savepoint that received them, aborts: the
 *	  delete is undone, so the messages are available again at once, and
 *	  the attempt is counted (attempts.c).
 *
 * So a consumer that receives and acks in one transaction writes exactly
 * one row deletion per message.
 *
 * No consumer ever waits for another one.  Only one transaction at a
 * time changes a message's row, and the others skip the row meanwhile:
 * receivers claim rows in shared memory (attempts.c) and never wait for a
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
 * Aborted attempts (attempts.c) go with the right to change the row.
 * Whoever changes a message's row takes the message's count over: a
 * receive adds it to the attempt number, a nack or dead letter of a
 * leased message writes it into the row, an ack drops it with the
 * message.  If that is undone (the transaction or the savepoint aborts),
 * the count goes back, plus one if the consumer was given the message; a
 * receive that only dead-lettered an exhausted message delivered nothing,
 * so its abort adds none.  What a transaction took over, and the attempt
 * it makes, are marked with its xid before the consumer sees the message,
 * so that a crash, which runs no abort, still counts them (attempts.c).
 * So a commit has nothing to count, and each place that changes a
 * message before its transaction ends is safe:
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
 * The ledger.  Its entries, one per message received or settled here, lie
 * in an array in the order they were made.  Most transactions make a few
 * (a receive of one message, its ack), and for them a look along the
 * array finds a message, or a held key, faster than building hash tables
 * would; once a transaction has made INDEX_AFTER entries, they are found
 * by (subscription, message) through a hash table, and for ordered
 * subscriptions the keys held are counted in a second one, built then and
 * kept to the transaction's end: a receive and ack of N messages costs
 * O(N).  Whatever a savepoint did was done after it began, so it lies at
 * the end of the arrays: a level marks where each savepoint that wrote
 * here began, and its rollback undoes what lies past the mark, its
 * release hands the mark to the enclosing level.  Callers reach the
 * entries only through the functions below.
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
#include "common/hashfn.h"
#include "utils/hsearch.h"
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
} Tally;

typedef struct Claim
{
	int32		sub_id;
	int64		msg_id;
} Claim;

/*
 * A message received or settled here.  held.sub_id and held.msg_id name
 * it; the rest of held is set if it was received here.
 */
typedef struct Entry
{
	TxmqHeldRow held;
	int32		topic_id;
	bool		received_here;	/* else: settled here, received earlier */
	bool		delivered;		/* received here and given to the caller */
	bool		notify;			/* its topic has notify on (if received here) */
	bool		settled;
	int32		taken;			/* aborted attempts taken over (attempts.c) */
	const text *key;			/* its key, if received here with one */
	int			older;			/* the message's previous entry, or -1 (set
								 * once indexed) */
} Entry;

/* Where a savepoint that wrote to the ledger began (see the file header) */
typedef struct Level
{
	SubTransactionId subid;
	int			nentries;
	int			nsettled;
	int			ntallies;
} Level;

/* The ledger is indexed once it has this many entries (file header). */
#define INDEX_AFTER 32

/* by_msg: the newest entry of a message */
typedef struct MsgTag
{
	int32		sub_id;
	int64		msg_id;
} MsgTag;

typedef struct MsgSlot
{
	MsgTag		tag;
	int			newest;
} MsgSlot;

/* by_key: how many messages of a subscription with a key are held */
typedef struct KeyTag
{
	int32		sub_id;
	const text *key;
} KeyTag;

typedef struct KeySlot
{
	KeyTag		tag;
	int			nheld;
} KeySlot;

/* Growable arrays in TopTransactionContext, emptied at transaction end. */
#define ARRAY_OF(type) struct { type *items; int n; int max; }
#define APPEND(a) \
	((a).n == (a).max ? \
	 (void) ((a).items = grow((a).items, &(a).max, sizeof(*(a).items))) : \
	 (void) 0, \
	 &(a).items[(a).n++])

static ARRAY_OF(Entry) entries;
static ARRAY_OF(int) settled;	/* entries settled here, in order */
static ARRAY_OF(Tally) tallies;
static ARRAY_OF(Claim) claims;	/* taken by the receive now running */
static ARRAY_OF(Level) levels;
static HTAB *by_msg;			/* NULL until indexed */
static HTAB *by_key;

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
	memset(&entries, 0, sizeof(entries));
	memset(&settled, 0, sizeof(settled));
	memset(&tallies, 0, sizeof(tallies));
	memset(&claims, 0, sizeof(claims));
	memset(&levels, 0, sizeof(levels));
	by_msg = NULL;
	by_key = NULL;
}

/* Before anything is added: mark where the current savepoint began. */
static void
enter_level(void)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	Level	   *level;

	if (levels.n > 0 && levels.items[levels.n - 1].subid == subid)
		return;
	level = APPEND(levels);
	level->subid = subid;
	level->nentries = entries.n;
	level->nsettled = settled.n;
	level->ntallies = tallies.n;
}

static uint32
key_hash(const void *key, Size keysize)
{
	const KeyTag *k = key;

	return hash_combine(murmurhash32((uint32) k->sub_id),
						hash_bytes((const unsigned char *) VARDATA_ANY(k->key),
								   VARSIZE_ANY_EXHDR(k->key)));
}

/* byte for byte, as texteq compares in txmq.msg's collation */
static int
key_match(const void *key1, const void *key2, Size keysize)
{
	const KeyTag *a = key1;
	const KeyTag *b = key2;

	if (a->sub_id != b->sub_id ||
		VARSIZE_ANY_EXHDR(a->key) != VARSIZE_ANY_EXHDR(b->key))
		return 1;
	return memcmp(VARDATA_ANY(a->key), VARDATA_ANY(b->key),
				  VARSIZE_ANY_EXHDR(a->key));
}

static MsgSlot *
msg_slot(int32 sub_id, int64 msg_id, HASHACTION action, bool *found)
{
	MsgTag		tag;

	/* hashed as bytes: no padding may differ */
	memset(&tag, 0, sizeof(tag));
	tag.sub_id = sub_id;
	tag.msg_id = msg_id;
	return hash_search(by_msg, &tag, action, found);
}

/* Index entry i, the newest so far, by its message. */
static void
index_entry(int i)
{
	Entry	   *e = &entries.items[i];
	MsgSlot    *slot;
	bool		found;

	slot = msg_slot(e->held.sub_id, e->held.msg_id, HASH_ENTER, &found);
	e->older = found ? slot->newest : -1;
	slot->newest = i;
}

/* Count e's key, if it has one, as held once more (+1) or less (-1). */
static void
count_key(const Entry *e, int delta)
{
	KeyTag		tag;
	KeySlot    *slot;
	bool		found;

	if (e->key == NULL || by_key == NULL)
		return;
	tag.sub_id = e->held.sub_id;
	tag.key = e->key;
	slot = hash_search(by_key, &tag, HASH_ENTER, &found);
	if (!found)
		slot->nheld = 0;
	slot->nheld += delta;
}

/* The ledger has grown past INDEX_AFTER entries: build its hash tables. */
static void
build_index(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(MsgTag);
	ctl.entrysize = sizeof(MsgSlot);
	ctl.hcxt = TopTransactionContext;
	by_msg = hash_create("txmq ledger", 4 * INDEX_AFTER, &ctl,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(KeyTag);
	ctl.entrysize = sizeof(KeySlot);
	ctl.hash = key_hash;
	ctl.match = key_match;
	by_key = hash_create("txmq ledger keys", INDEX_AFTER, &ctl,
						 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE |
						 HASH_CONTEXT);
	for (int i = 0; i < entries.n; i++)
	{
		index_entry(i);
		if (!entries.items[i].settled)
			count_key(&entries.items[i], 1);
	}
}

/* The newest of the first n entries that is of a message, or -1. */
static int
entry_before(int n, int32 sub_id, int64 msg_id)
{
	for (int i = n - 1; i >= 0; i--)
		if (entries.items[i].held.msg_id == msg_id &&
			entries.items[i].held.sub_id == sub_id)
			return i;
	return -1;
}

/* The newest entry of a message, or -1 */
static int
entry_newest(int32 sub_id, int64 msg_id)
{
	MsgSlot    *slot;

	if (by_msg == NULL)
		return entry_before(entries.n, sub_id, msg_id);
	slot = msg_slot(sub_id, msg_id, HASH_FIND, NULL);
	return slot ? slot->newest : -1;
}

/* The entry of the same message made before entry i, or -1 */
static int
entry_older(int i)
{
	const Entry *e = &entries.items[i];

	if (by_msg == NULL)
		return entry_before(i, e->held.sub_id, e->held.msg_id);
	return e->older;
}

/*
 * The index of this transaction's entry of a message it received and
 * still holds, or (if settled) also of one it has settled since; or -1.
 */
static int
find_received(int32 sub_id, int64 msg_id, bool settled)
{
	for (int i = entry_newest(sub_id, msg_id); i >= 0; i = entry_older(i))
	{
		const Entry *e = &entries.items[i];

		if (e->received_here && (settled || !e->settled))
			return i;
	}
	return -1;
}

/*
 * The entry of a message held here, as find_received; with a receipt,
 * only if it names the delivery held (see receive.c).
 */
static int
find_delivery(int32 sub_id, int64 msg_id, const pg_uuid_t *receipt)
{
	int			i = find_received(sub_id, msg_id, false);

	if (i >= 0 && receipt != NULL &&
		memcmp(receipt->data, entries.items[i].held.receipt.data,
			   UUID_LEN) != 0)
		return -1;
	return i;
}

/* The entry of a message held here, which the caller knows it is. */
static int
held_entry(int32 sub_id, int64 msg_id)
{
	int			i = find_received(sub_id, msg_id, false);

	if (i < 0)
		elog(ERROR, "txmq: message " INT64_FORMAT " is not held", msg_id);
	return i;
}

/* A new entry of a message, the newest: the caller fills it in. */
static Entry *
add_entry(int32 topic_id, int32 sub_id, int64 msg_id)
{
	Entry	   *e;

	enter_level();
	e = APPEND(entries);
	memset(e, 0, sizeof(*e));
	e->topic_id = topic_id;
	e->held.sub_id = sub_id;
	e->held.msg_id = msg_id;
	if (by_msg != NULL)
		index_entry(entries.n - 1);
	else if (entries.n > INDEX_AFTER)
		build_index();
	return e;
}

/* A held message is settled: acked, nacked or dead-lettered. */
static void
settle(int i)
{
	enter_level();
	entries.items[i].settled = true;
	*APPEND(settled) = i;
	count_key(&entries.items[i], -1);
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
		if (find_received(claims.items[i].sub_id, claims.items[i].msg_id,
						  true) < 0)
		{
			txmq_unclaim(claims.items[i].sub_id, claims.items[i].msg_id);
			lost++;
		}
	claims.n = 0;
	return lost;
}

/*
 * A receive of sub deleted a message, its row a received row in
 * TopTransactionContext, which the ledger keeps; delivered, if the caller
 * was given it, with attempt and a lease until lease_until.
 */
void
txmq_xact_received(const TxmqSub *sub, int64 msg_id, int32 attempt,
				   int32 taken, bool delivered, const pg_uuid_t *receipt,
				   TimestampTz lease_until, HeapTuple row)
{
	Entry	   *e = add_entry(sub->topic.topic_id, sub->sub_id, msg_id);
	bool		isnull;
	Datum		key;

	e->held.attempt = attempt;
	e->held.receipt = *receipt;
	e->held.lease_until = lease_until;
	e->held.row = row;
	e->received_here = true;
	e->delivered = delivered;
	e->notify = sub->topic.notify;	/* for its lease or rollback */
	e->taken = taken;
	key = heap_getattr(row, TXMQ_ROW_KEY, txmq_row_desc(), &isnull);
	if (!isnull)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		e->key = DatumGetTextPP(key);
		MemoryContextSwitchTo(old);
	}
	count_key(e, 1);
}

/*
 * Does this transaction hold a message it received (the delivery receipt
 * names, if not NULL)?  If so, *attempt is its delivery attempt.
 */
bool
txmq_xact_holding(int32 sub_id, int64 msg_id, const pg_uuid_t *receipt,
				  int32 *attempt)
{
	int			i = find_delivery(sub_id, msg_id, receipt);

	if (i >= 0 && attempt)
		*attempt = entries.items[i].held.attempt;
	return i >= 0;
}

/* Does this transaction hold a message of sub_id with this key? */
bool
txmq_xact_holds_key(int32 sub_id, text *key)
{
	KeyTag		tag;
	KeySlot    *slot;

	tag.sub_id = sub_id;
	tag.key = key;
	if (by_key == NULL)
	{
		for (int i = 0; i < entries.n; i++)
		{
			const Entry *e = &entries.items[i];
			KeyTag		held = {e->held.sub_id, e->key};

			if (e->key != NULL && !e->settled &&
				key_match(&tag, &held, sizeof(KeyTag)) == 0)
				return true;
		}
		return false;
	}
	slot = hash_search(by_key, &tag, HASH_FIND, NULL);
	return slot != NULL && slot->nheld > 0;
}

/* Ack a message if this transaction holds it (so); whether it did. */
bool
txmq_xact_ack_held(int32 sub_id, int64 msg_id, const pg_uuid_t *receipt)
{
	int			i = find_delivery(sub_id, msg_id, receipt);

	if (i >= 0)
		settle(i);
	return i >= 0;
}

/*
 * A message leased earlier was acked, nacked or dead-lettered by this
 * transaction: the caller has locked and written its row, which carries
 * its aborted attempts now, or they went with it.
 */
void
txmq_xact_settled_leased(int32 topic_id, int32 sub_id, int64 msg_id)
{
	Entry	   *e = add_entry(topic_id, sub_id, msg_id);

	/* settled as it was made: undone with it */
	e->settled = true;
	e->taken = txmq_take_aborted(sub_id, msg_id, 0, NULL);
}

/* Nack a held message: back into the queue, due at due. */
void
txmq_xact_nack_held(int32 sub_id, int64 msg_id, TimestampTz due,
					const char *error)
{
	int			i = held_entry(sub_id, msg_id);

	/* a copy: if a savepoint undoes the nack, the lease stands */
	TxmqHeldRow nacked = entries.items[i].held;

	nacked.lease_until = due;
	txmq_held_restore(&nacked, 1, false, error);
	settle(i);
}

/* Move a held message of sub to its dead letters. */
void
txmq_xact_dead_letter_held(const TxmqSub *sub, int64 msg_id, int32 attempts,
						   const char *error)
{
	int			i = held_entry(sub->sub_id, msg_id);

	txmq_held_dead_letter(&entries.items[i].held, attempts, error);
	settle(i);
	txmq_xact_tally(sub->topic.topic_id, sub->sub_id, CNT_DEAD_LETTERED, 1);
}

/* Extend the lease of a message if this transaction holds it; whether. */
bool
txmq_xact_extend_held(int32 sub_id, int64 msg_id, const pg_uuid_t *receipt,
					  TimestampTz until)
{
	int			i = find_delivery(sub_id, msg_id, receipt);

	if (i >= 0)
		entries.items[i].held.lease_until = until;
	return i >= 0;
}

static Tally *
tally(int32 topic_id, int32 sub_id, int kind, int64 delta, int64 from_id)
{
	Tally	   *t;

	enter_level();
	t = APPEND(tallies);
	t->topic_id = topic_id;
	t->sub_id = sub_id;
	t->kind = kind;
	t->delta = delta;
	t->from_id = from_id;
	t->due = 0;
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
	Tally	   *last;

	enter_level();
	/* the last tally, if the current savepoint made it */
	last = tallies.n > levels.items[levels.n - 1].ntallies ?
		&tallies.items[tallies.n - 1] : NULL;
	/* a loop of delayed sends: one entry, the earliest */
	if (last && last->kind == DUE && last->topic_id == topic_id)
		last->due = Min(last->due, due);
	else
		tally(topic_id, 0, DUE, 0, 0)->due = due;
}

static int
cmp_sub_msg(const void *a, const void *b)
{
	const TxmqHeldRow *x = &entries.items[*(const int *) a].held;
	const TxmqHeldRow *y = &entries.items[*(const int *) b].held;

	if (x->sub_id != y->sub_id)
		return (x->sub_id > y->sub_id) - (x->sub_id < y->sub_id);
	return (x->msg_id > y->msg_id) - (x->msg_id < y->msg_id);
}

/* Put every message still held back as a lease, in one statement. */
static void
write_leases(void)
{
	int		   *held = palloc(sizeof(int) * (entries.n + 1));
	TxmqHeldRow *rows;
	int			n = 0;

	for (int i = 0; i < entries.n; i++)
		if (entries.items[i].received_here && !entries.items[i].settled)
			held[n++] = i;
	if (n == 0)
		return;
	rows = palloc(sizeof(TxmqHeldRow) * n);
	for (int i = 0; i < n; i++)
		rows[i] = entries.items[held[i]].held;

	/* the commit path has no active snapshot of its own */
	PushActiveSnapshot(GetTransactionSnapshot());
	txmq_held_restore(rows, n, true, NULL);
	PopActiveSnapshot();

	/*
	 * A waiting receiver must learn when these leases run out: one wake
	 * per subscription, from its smallest id; and a listener too, when the
	 * first of them runs out.
	 */
	qsort(held, n, sizeof(int), cmp_sub_msg);
	for (int i = 0; i < n; i++)
	{
		const Entry *e = &entries.items[held[i]];
		TimestampTz first = e->held.lease_until;
		int			j;

		if (i > 0 && e->held.sub_id == entries.items[held[i - 1]].held.sub_id)
			continue;
		txmq_xact_wake(e->topic_id, e->held.sub_id, 1, e->held.msg_id);
		for (j = i + 1;
			 j < n && entries.items[held[j]].held.sub_id == e->held.sub_id;
			 j++)
			first = Min(first, entries.items[held[j]].held.lease_until);
		if (e->notify)
			txmq_xact_due(e->topic_id, first);
	}
}

/* Pre-commit work is done: the commit record comes next (attempts.c). */
static void
mark_committing(void)
{
	int32	   *sub_ids;
	int64	   *msg_ids;

	if (entries.n == 0)
		return;
	sub_ids = palloc(sizeof(int32) * entries.n);
	msg_ids = palloc(sizeof(int64) * entries.n);
	for (int i = 0; i < entries.n; i++)
	{
		sub_ids[i] = entries.items[i].held.sub_id;
		msg_ids[i] = entries.items[i].held.msg_id;
	}
	txmq_attempts_committing(sub_ids, msg_ids, entries.n);
}

static void
apply_at_commit(void)
{
	for (int i = 0; i < entries.n; i++)
		txmq_attempts_committed(entries.items[i].held.sub_id,
								entries.items[i].held.msg_id);
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
 * The topics whose worker must notify after a rollback, each posted once:
 * posting per message would let the worker take the first post and find a
 * second one after its round, notifying twice.
 */
#define MAX_REPOSTS 16

typedef struct Reposts
{
	int			n;
	int32		topic_id[MAX_REPOSTS];
	bool		forced[MAX_REPOSTS];
} Reposts;

static void
repost(Reposts *r, int32 topic_id, bool forced)
{
	for (int i = 0; i < r->n; i++)
		if (r->topic_id[i] == topic_id)
		{
			r->forced[i] |= forced;
			return;
		}
	if (r->n == MAX_REPOSTS)
	{
		txmq_notify_post(topic_id, DT_NOBEGIN, forced);
		return;
	}
	r->topic_id[r->n] = topic_id;
	r->forced[r->n] = forced;
	r->n++;
}

/*
 * What entry e did was rolled back: the aborted attempts it took go back,
 * plus one if the consumer was given the message, and a received message
 * is free again.  Returns whether the consumer was given it.
 */
static bool
undo(const Entry *e, Reposts *r)
{
	int32		sub_id = e->held.sub_id;
	int64		msg_id = e->held.msg_id;

	txmq_attempts_aborted(sub_id, msg_id, e->taken + (e->delivered ? 1 : 0),
						  e->delivered);
	if (e->received_here)
		txmq_wake(e->topic_id, sub_id, 1, msg_id);

	/*
	 * The rollback cannot notify: the worker must.  A received message is
	 * receivable again now.  A leased one whose settling is undone is again
	 * what it was, which is receivable only if its lease ran out meanwhile:
	 * the worker notifies if any row of its topic is due (its query knows
	 * whether the topic has notify on; this callback cannot look).
	 */
	if (e->received_here && e->notify)
		repost(r, e->topic_id, true);
	else if (!e->received_here)
		repost(r, e->topic_id, false);
	return e->received_here && e->delivered;
}

/* Undo the entries from first on; returns how many were delivered. */
static int
undo_from(int first)
{
	Reposts		r = {0};
	int			ndelivered = 0;

	for (int i = first; i < entries.n; i++)
		ndelivered += undo(&entries.items[i], &r);
	for (int i = 0; i < r.n; i++)
		txmq_notify_post(r.topic_id[i], DT_NOBEGIN, r.forced[i]);
	return ndelivered;
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

/* Drop the newest entry, which was undone (and from the hash tables). */
static void
forget_newest(void)
{
	const Entry *e = &entries.items[entries.n - 1];
	MsgSlot    *slot;

	if (by_msg == NULL)
	{
		entries.n--;
		return;
	}
	slot = msg_slot(e->held.sub_id, e->held.msg_id, HASH_FIND, NULL);
	Assert(slot != NULL && slot->newest == entries.n - 1);
	if (e->older >= 0)
		slot->newest = e->older;
	else
		hash_search(by_msg, &slot->tag, HASH_REMOVE, NULL);
	if (!e->settled)
		count_key(e, -1);
	entries.n--;
}

/*
 * The savepoint of the innermost level rolled back: undo what it added
 * and settled, and its tallies.  Returns how many messages it delivered.
 */
static int
roll_back_level(void)
{
	const Level *level = &levels.items[levels.n - 1];
	int			ndelivered;

	/* what settled them was rolled back with the savepoint */
	for (int s = level->nsettled; s < settled.n; s++)
	{
		Entry	   *e = &entries.items[settled.items[s]];

		e->settled = false;
		count_key(e, 1);
	}
	ndelivered = undo_from(level->nentries);
	while (entries.n > level->nentries)
		forget_newest();
	settled.n = level->nsettled;
	tallies.n = level->ntallies;
	levels.n--;
	return ndelivered;
}

static void
release_claims(void)
{
	for (int i = 0; i < claims.n; i++)
		txmq_unclaim(claims.items[i].sub_id, claims.items[i].msg_id);
	claims.n = 0;
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			write_leases();
			mark_committing();
			break;
		case XACT_EVENT_PRE_PREPARE:
			for (int i = 0; i < entries.n; i++)
				if (entries.items[i].received_here)
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
				int			ndelivered;

				release_claims();
				ndelivered = undo_from(0);
				reset();
				warn_uncounted(ndelivered);
			}
			break;
		case XACT_EVENT_PREPARE:
			/*
			 * only sends and settles of leased messages get here: rows are
			 * prepared, wakeups dropped, and the settled rows carry what
			 * their settles took over (lost if rolled back, as a lease is)
			 */
			for (int i = 0; i < entries.n; i++)
				txmq_attempts_committed(entries.items[i].held.sub_id,
										entries.items[i].held.msg_id);
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
	Level	   *level = levels.n > 0 ? &levels.items[levels.n - 1] : NULL;
	bool		mine = level != NULL && level->subid == mySubid;

	if (event == SUBXACT_EVENT_COMMIT_SUB && mine)
	{
		/* what it did is the enclosing savepoint's now */
		if (levels.n > 1 && levels.items[levels.n - 2].subid == parentSubid)
			levels.n--;
		else
			level->subid = parentSubid;
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		release_claims();
		warn_uncounted(mine ? roll_back_level() : 0);
	}
}

void
txmq_xact_init(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}
