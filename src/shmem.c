/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared state: per-subscription wakeups and counters, and the
 *	  notifications the worker owes.  Claims and delivery attempts are in
 *	  attempts.c.
 *
 * Slots.  Each (database, topic, subscription) in use gets a slot with a
 * condition variable that long-polling receivers sleep on and committing
 * senders signal, and with the statistics counters.  topic-level counters
 * (sent, checks) live in the slot with sub_id 0.  Slots are never freed:
 * ids are never reused, and a freed condition variable could still have
 * sleepers.  When the table is full, new subscriptions fall back to polling
 * and have no counters (a WARNING says so once per backend).
 *
 * A slot also keeps where a receive starts its walk along the
 * subscription's primary key.  Every receive deletes the rows it takes,
 * and until VACUUM removes their index entries each later receive would
 * step over all of them again: draining a backlog would cost quadratic
 * time.  Delayed and leased rows at the head would be stepped over by
 * every receive too.  So a receive records what its snapshot saw: the id
 * of the first visible row (everything before it was deleted or not yet
 * committed), the id of the first visible row that was due, and the
 * earliest due time of the visible rows in between.  The next receive
 * starts at the first due row while that time has not come, else at the
 * first visible row.
 *
 * Whatever makes a row visible or due again out of turn (a sender or a
 * restored lease committing, a nack, a lease extended, a redrive, a
 * receive rolling back) wakes the subscription at commit, and every wake
 * lowers both starts to the smallest id it concerns.  A receive may only
 * record what it saw if no wake came since it read the start, before
 * taking its snapshot (the token), and only from a fresh snapshot.  The
 * rare paths that make rows visible without a wake (COMMIT PREPARED of a
 * send, rows written by hand) are covered by time: at most once a second
 * a receive walks from the beginning.
 *
 * Notifications owed by the worker.  A message that becomes receivable
 * when no transaction commits (a delay, backoff or lease running out, a
 * receive rolling back) must still be announced on txmq_<topic>.  The
 * transaction that makes such a message due later posts its due time in
 * the topic's slot (sub_id 0) when it commits, and one whose rollback makes
 * messages receivable posts a forced notification; each slot keeps the
 * earliest.  The database's worker takes what has come due (worker.c),
 * asks the table whether anything did fall due and when the next row will,
 * and posts that back.  A post that lowers a slot's time wakes the worker,
 * whose latch and next look are in the database's slot (topic_id 0).
 * So for every row due in the future either its slot's time is no later,
 * or the worker, which reset the slot before taking its snapshot, sees the
 * row (its post came after its commit).  Without a slot (table full) the
 * topic gets only the notifications that commits send.
 *
 * Without shared_preload_libraries none of this exists and every function
 * here is a no-op.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#define FULL_WALK_EVERY_US USECS_PER_SEC
#include "utils/hsearch.h"

typedef struct SlotKey
{
	Oid			dboid;
	int32		topic_id;
	int32		sub_id;
} SlotKey;

typedef struct Slot
{
	SlotKey		key;
	ConditionVariable cv;
	pg_atomic_uint64 counters[NUM_TXMQ_COUNTERS];
	/* where a receive's walk starts (see the file header) */
	slock_t		mutex;			/* protects the fields below */
	int64		scan_from;		/* no visible row before this id */
	int64		ready_from;		/* none due before ready_after below */
	TimestampTz ready_after;
	TimestampTz full_walk_at;	/* when a walk last started at 0 */
	uint64		lowered;		/* wakes so far */
	/* a topic's slot (sub_id 0): what its worker owes NOTIFY listeners */
	TimestampTz notify_due;		/* earliest due time posted, or DT_NOEND */
	bool		notify_forced;	/* notify even if no row turns out due */
	/* the database's slot (topic_id 0): the worker that sends them */
	Latch	   *notifier;		/* its latch, NULL while there is none */
	int			notifier_pid;
	TimestampTz notifier_at;	/* when it next looks; DT_NOEND: looking */
} Slot;

typedef struct TxmqShared
{
	LWLock	   *slots_lock;
} TxmqShared;

static TxmqShared *shared = NULL;
static HTAB *slots = NULL;

static void wake_notifier(TimestampTz due);

void
txmq_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(TxmqShared)));
	RequestAddinShmemSpace(hash_estimate_size(txmq_max_subscriptions,
											  sizeof(Slot)));
	RequestNamedLWLockTranche("txmq", 1);
}

void
txmq_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("txmq", sizeof(TxmqShared), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("txmq");

		shared->slots_lock = &locks[0].lock;
	}

	info.keysize = sizeof(SlotKey);
	info.entrysize = sizeof(Slot);
	slots = ShmemInitHash("txmq slots", txmq_max_subscriptions,
						  txmq_max_subscriptions, &info,
						  HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
}

/* Find (or create) the slot of a subscription; NULL if unavailable. */
static Slot *
get_slot(int32 topic_id, int32 sub_id, bool create)
{
	static bool warned = false;
	SlotKey		key;
	Slot	   *slot;
	bool		found;

	if (slots == NULL)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	key.topic_id = topic_id;
	key.sub_id = sub_id;

	LWLockAcquire(shared->slots_lock, LW_SHARED);
	slot = hash_search(slots, &key, HASH_FIND, NULL);
	LWLockRelease(shared->slots_lock);
	if (slot != NULL || !create)
		return slot;

	LWLockAcquire(shared->slots_lock, LW_EXCLUSIVE);
	slot = hash_search(slots, &key, HASH_ENTER_NULL, &found);
	if (slot != NULL && !found)
	{
		ConditionVariableInit(&slot->cv);
		for (int i = 0; i < NUM_TXMQ_COUNTERS; i++)
			pg_atomic_init_u64(&slot->counters[i], 0);
		SpinLockInit(&slot->mutex);
		slot->scan_from = 0;
		slot->ready_from = 0;
		slot->ready_after = 0;
		slot->full_walk_at = 0;
		slot->lowered = 0;
		slot->notify_due = DT_NOEND;
		slot->notify_forced = false;
		slot->notifier = NULL;
		slot->notifier_pid = 0;
		slot->notifier_at = DT_NOEND;
	}
	LWLockRelease(shared->slots_lock);

	if (slot == NULL && !warned)
	{
		warned = true;
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("txmq: all %d subscription slots are in use",
						txmq_max_subscriptions),
				 errdetail("New subscriptions poll every txmq.poll_interval "
						   "instead of being woken at commit, and have no "
						   "counters."),
				 errhint("Raise txmq.max_subscriptions and restart.")));
	}
	return slot;
}

/*
 * The condition variable a receiver of this subscription sleeps on, or NULL
 * (then it polls).  The topic id is part of the key because counters are;
 * callers pass the subscription's topic.
 */
ConditionVariable *
txmq_sub_cv(int32 topic_id, int32 sub_id)
{
	Slot	   *slot = get_slot(topic_id, sub_id, true);

	return slot ? &slot->cv : NULL;
}

/* A wake: rows from from_id on may be visible or due again. */
static void
lower_scan_start(Slot *slot, int64 from_id)
{
	SpinLockAcquire(&slot->mutex);
	slot->scan_from = Min(slot->scan_from, from_id);
	slot->ready_from = Min(slot->ready_from, from_id);
	slot->lowered++;
	SpinLockRelease(&slot->mutex);
}

/*
 * Where a receive of sub at time now starts its walk along the primary
 * key.  Call before taking the snapshot; *start goes back to
 * txmq_scan_advance().
 */
void
txmq_scan_start(int32 topic_id, int32 sub_id, TimestampTz now,
				TxmqScanStart *start)
{
	Slot	   *slot = get_slot(topic_id, sub_id, true);

	memset(start, 0, sizeof(*start));
	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	start->token = slot->lowered;
	if (now - slot->full_walk_at >= FULL_WALK_EVERY_US)
		slot->full_walk_at = now;	/* from 0: see the file header */
	else if (now < slot->ready_after)
	{
		start->from_id = slot->ready_from;
		start->past_waiting = true;
	}
	else
		start->from_id = slot->scan_from;
	SpinLockRelease(&slot->mutex);
}

/*
 * Record what a receive's fresh snapshot saw on its walk, unless a wake
 * came since the receive read its start.
 */
void
txmq_scan_advance(int32 topic_id, int32 sub_id, const TxmqScanStart *start,
				  const TxmqScanSeen *seen)
{
	Slot	   *slot = get_slot(topic_id, sub_id, false);
	int64		ready_from;

	if (slot == NULL || seen->first_visible < 0)
		return;
	/* no visible row was ready: the next one may follow the last */
	ready_from = seen->first_ready >= 0 ? seen->first_ready :
		seen->last_visible + 1;
	SpinLockAcquire(&slot->mutex);
	if (slot->lowered == start->token)
	{
		if (start->past_waiting)
			slot->ready_after = Min(slot->ready_after, seen->due_at);
		else
		{
			slot->scan_from = seen->first_visible;
			slot->ready_after = seen->due_at;
		}
		slot->ready_from = ready_from;
	}
	SpinLockRelease(&slot->mutex);
}

/*
 * Wake receivers of a subscription that now has n more messages available,
 * the smallest of them from_id: one sleeper per message, everyone when
 * there are many.
 */
void
txmq_wake(int32 topic_id, int32 sub_id, int64 nmessages, int64 from_id)
{
	Slot	   *slot = get_slot(topic_id, sub_id, false);

	if (slot == NULL || nmessages <= 0)
		return;
	lower_scan_start(slot, from_id);
	if (nmessages >= 8)
		ConditionVariableBroadcast(&slot->cv);
	else
		for (int64 i = 0; i < nmessages; i++)
			ConditionVariableSignal(&slot->cv);
}

/*
 * Messages of a topic with notify on fall due at due (its transaction has
 * committed), or, forced, are receivable again now without a commit: its
 * worker must NOTIFY then.  Called from commit and abort paths: must not
 * throw.
 */
void
txmq_notify_post(int32 topic_id, TimestampTz due, bool forced)
{
	Slot	   *slot = get_slot(topic_id, 0, true);
	bool		earlier = false;

	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	if (due < slot->notify_due)
	{
		slot->notify_due = due;
		earlier = true;
	}
	slot->notify_forced |= forced;
	SpinLockRelease(&slot->mutex);
	if (earlier)
		wake_notifier(due);
}

/*
 * The database's worker (worker.c), which sends the notifications, says
 * when it next looks (DT_NOEND: it is looking now, so every post must wake
 * it); a post due sooner sets its latch.  latch NULL: it exits (must not
 * throw; a worker that never was the notifier changes nothing).  Without a
 * slot for the database the worker only looks when it would anyway.
 */
void
txmq_notifier_at(Latch *latch, TimestampTz next)
{
	Slot	   *slot = get_slot(0, 0, latch != NULL);

	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	if (latch != NULL || slot->notifier_pid == MyProcPid)
	{
		slot->notifier = latch;
		slot->notifier_pid = latch ? MyProcPid : 0;
		slot->notifier_at = next;
	}
	SpinLockRelease(&slot->mutex);
}

/* A post is due at due: wake the database's worker if it sleeps past it. */
static void
wake_notifier(TimestampTz due)
{
	Slot	   *slot = get_slot(0, 0, false);
	Latch	   *latch = NULL;

	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	if (slot->notifier != NULL && slot->notifier_pid != MyProcPid &&
		due < slot->notifier_at)
		latch = slot->notifier;
	SpinLockRelease(&slot->mutex);
	if (latch)
		SetLatch(latch);
}

/*
 * For this database's worker: take (and clear) up to max topics whose
 * notification time has come by now into fires; *next is the earliest time
 * of those left, DT_NOEND if none.
 */
int
txmq_notify_take(TimestampTz now, TxmqNotifyFire *fires, int max,
				 TimestampTz *next)
{
	HASH_SEQ_STATUS seq;
	Slot	   *slot;
	int			n = 0;

	*next = DT_NOEND;
	if (slots == NULL)
		return 0;
	LWLockAcquire(shared->slots_lock, LW_SHARED);
	hash_seq_init(&seq, slots);
	while ((slot = hash_seq_search(&seq)) != NULL)
	{
		if (slot->key.dboid != MyDatabaseId || slot->key.sub_id != 0)
			continue;
		SpinLockAcquire(&slot->mutex);
		if (!slot->notify_forced && slot->notify_due > now)
			*next = Min(*next, slot->notify_due);
		else if (n == max)
			*next = Min(*next, now);	/* the next round takes it */
		else
		{
			fires[n].topic_id = slot->key.topic_id;
			fires[n].since = slot->notify_due;
			fires[n].forced = slot->notify_forced;
			n++;
			slot->notify_due = DT_NOEND;
			slot->notify_forced = false;
		}
		SpinLockRelease(&slot->mutex);
	}
	LWLockRelease(shared->slots_lock);
	return n;
}

void
txmq_count(int32 topic_id, int32 sub_id, TxmqCounter c, int64 delta)
{
	Slot	   *slot = get_slot(topic_id, sub_id, true);

	if (slot != NULL)
		pg_atomic_fetch_add_u64(&slot->counters[c], delta);
}

/*
 * Copy the counters of one slot.  A subscription or topic without a slot
 * has counted nothing since the server started (all zero), unless the
 * table is full: then it may have had events that found no slot, so its
 * counters are unknown and this returns false.  Slots are never freed, so
 * a table that was full when an event found no slot is full still.
 */
bool
txmq_read_counters(int32 topic_id, int32 sub_id, int64 *out)
{
	Slot	   *slot = get_slot(topic_id, sub_id, false);

	if (slot == NULL)
	{
		long		used;

		if (slots == NULL)
			return false;
		LWLockAcquire(shared->slots_lock, LW_SHARED);
		used = hash_get_num_entries(slots);
		LWLockRelease(shared->slots_lock);
		memset(out, 0, sizeof(int64) * NUM_TXMQ_COUNTERS);
		return used < txmq_max_subscriptions;
	}
	for (int i = 0; i < NUM_TXMQ_COUNTERS; i++)
		out[i] = (int64) pg_atomic_read_u64(&slot->counters[i]);
	return true;
}
