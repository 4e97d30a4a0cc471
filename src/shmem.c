/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared state: per-subscription wakeups and counters, and the delivery
 *	  attempts of transactions that aborted.
 *
 * Slots.  Each (database, topic, subscription) in use gets a slot with a
 * condition variable that long-polling receivers sleep on and committing
 * senders signal, and with the statistics counters.  topic-level counters
 * (sent, checks) live in the slot with sub_id 0.  Slots are never freed:
 * ids are never reused, and a freed condition variable could still have
 * sleepers.  When the table is full, new subscriptions fall back to polling
 * and have no counters (a WARNING says so once per backend).
 *
 * Aborted attempts.  A consumer that receives and acks in one transaction
 * writes no lease, so if it aborts nothing in the database records the
 * attempt.  The abort callback records it here instead, keyed by message,
 * and the next receive adds it to the attempt count; it is forgotten when
 * a lease commits (the row then carries the count) or the message is
 * settled.  This memory does not survive a server restart: after one, a
 * poison message gets at most max_deliveries further attempts.
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
#include "storage/lwlock.h"
#include "storage/shmem.h"
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
} Slot;

typedef struct AttemptKey
{
	Oid			dboid;
	int32		sub_id;
	int64		msg_id;
} AttemptKey;

typedef struct Attempt
{
	AttemptKey	key;
	int32		aborted;
} Attempt;

typedef struct TxmqShared
{
	LWLock	   *slots_lock;
	LWLock	   *attempts_lock;
	pg_atomic_uint32 nattempts; /* lets the common case skip the lock */
} TxmqShared;

static TxmqShared *shared = NULL;
static HTAB *slots = NULL;
static HTAB *attempts = NULL;

void
txmq_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(TxmqShared)));
	RequestAddinShmemSpace(hash_estimate_size(txmq_max_subscriptions,
											  sizeof(Slot)));
	RequestAddinShmemSpace(hash_estimate_size(txmq_max_tracked_attempts,
											  sizeof(Attempt)));
	RequestAddinShmemSpace(txmq_worker_shmem_size());
	RequestNamedLWLockTranche("txmq", 2);
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
		shared->attempts_lock = &locks[1].lock;
		pg_atomic_init_u32(&shared->nattempts, 0);
	}

	info.keysize = sizeof(SlotKey);
	info.entrysize = sizeof(Slot);
	slots = ShmemInitHash("txmq slots", txmq_max_subscriptions,
						  txmq_max_subscriptions, &info,
						  HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	info.keysize = sizeof(AttemptKey);
	info.entrysize = sizeof(Attempt);
	attempts = ShmemInitHash("txmq aborted attempts",
							 txmq_max_tracked_attempts,
							 txmq_max_tracked_attempts, &info,
							 HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	txmq_worker_shmem_init();
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

/*
 * Wake receivers of a subscription that now has n more messages available:
 * one sleeper per message, everyone when there are many.
 */
void
txmq_wake(int32 topic_id, int32 sub_id, int64 nmessages)
{
	Slot	   *slot = get_slot(topic_id, sub_id, false);

	if (slot == NULL || nmessages <= 0)
		return;
	if (nmessages >= 8)
		ConditionVariableBroadcast(&slot->cv);
	else
		for (int64 i = 0; i < nmessages; i++)
			ConditionVariableSignal(&slot->cv);
}

void
txmq_count(int32 topic_id, int32 sub_id, TxmqCounter c, int64 delta)
{
	Slot	   *slot = get_slot(topic_id, sub_id, true);

	if (slot != NULL)
		pg_atomic_fetch_add_u64(&slot->counters[c], delta);
}

/* Copy the counters of one slot; false if there are none. */
bool
txmq_read_counters(int32 topic_id, int32 sub_id, int64 *out)
{
	Slot	   *slot = get_slot(topic_id, sub_id, false);

	if (slot == NULL)
		return false;
	for (int i = 0; i < NUM_TXMQ_COUNTERS; i++)
		out[i] = (int64) pg_atomic_read_u64(&slot->counters[i]);
	return true;
}

static AttemptKey
attempt_key(int32 sub_id, int64 msg_id)
{
	AttemptKey	key;

	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	key.sub_id = sub_id;
	key.msg_id = msg_id;
	return key;
}

int32
txmq_aborted_attempts(int32 sub_id, int64 msg_id)
{
	AttemptKey	key;
	Attempt    *a;
	int32		n = 0;

	if (attempts == NULL || pg_atomic_read_u32(&shared->nattempts) == 0)
		return 0;
	key = attempt_key(sub_id, msg_id);
	LWLockAcquire(shared->attempts_lock, LW_SHARED);
	a = hash_search(attempts, &key, HASH_FIND, NULL);
	if (a != NULL)
		n = a->aborted;
	LWLockRelease(shared->attempts_lock);
	return n;
}

/* Called from the abort path: must not throw. */
void
txmq_add_aborted_attempt(int32 sub_id, int64 msg_id)
{
	AttemptKey	key;
	Attempt    *a;
	bool		found;

	if (attempts == NULL)
		return;
	key = attempt_key(sub_id, msg_id);
	LWLockAcquire(shared->attempts_lock, LW_EXCLUSIVE);
	a = hash_search(attempts, &key, HASH_ENTER_NULL, &found);
	if (a != NULL)
	{
		if (!found)
		{
			a->aborted = 0;
			pg_atomic_fetch_add_u32(&shared->nattempts, 1);
		}
		a->aborted++;
	}
	LWLockRelease(shared->attempts_lock);
}

void
txmq_forget_attempts(int32 sub_id, int64 msg_id)
{
	AttemptKey	key;
	bool		found;

	if (attempts == NULL || pg_atomic_read_u32(&shared->nattempts) == 0)
		return;
	key = attempt_key(sub_id, msg_id);
	LWLockAcquire(shared->attempts_lock, LW_EXCLUSIVE);
	hash_search(attempts, &key, HASH_REMOVE, &found);
	if (found)
		pg_atomic_fetch_sub_u32(&shared->nattempts, 1);
	LWLockRelease(shared->attempts_lock);
}
