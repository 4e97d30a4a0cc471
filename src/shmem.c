/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared state: per-subscription wakeups and counters, and the
 *	  notifications the worker owes.  Claims and delivery attempts are in
 *	  attempts.c.
 *
 * Slots.  Each subscription, topic and database in use gets a slot: for a
 * subscription, the condition variable that long-polling receivers sleep
 * on and committing senders signal, where its receives start (below) and
 * its counters; for a topic (sub_id 0), its counters (sent, checks) and the
 * notifications its worker owes; for a database (topic_id 0), its worker's
 * latch.  A subscription's slot is keyed by its id alone, which is unique
 * in its database, so that the worker can free it knowing only that.
 *
 * The table holds txmq.max_subscriptions slots, found through a hash of
 * their keys, and is bounded by what is in use, not by history: a drop
 * frees the slots of what it dropped when it commits (one a receiver still
 * holds when the receiver lets go; the worker's reaper frees any that a
 * late committer made again), and when no slot is free a
 * new one takes the slot of an idle one, chosen by a clock sweep as
 * PostgreSQL's buffer manager chooses a buffer: each use marks a slot
 * recent, the hand clears the mark and takes the first unmarked slot that
 * nobody holds.  A slot is held, and never evicted, while
 *
 *	- a backend holds a pointer to it beyond slots_lock: a receiver that
 *	  sleeps, or will, on its condition variable pins it first
 *	  (txmq_sub_cv) and unpins it after it has left the wait list;
 *	- its topic is owed a notification (notify_due or notify_forced);
 *	- a database's worker has left its latch in it.
 *
 * Everything else in a slot can be rebuilt, so an evicted slot is built
 * again, from scratch, at its next use.  Nothing is lost by that:
 *
 *	- wake-ups: a transaction that will wake a subscription at commit
 *	  holds nothing until then, and a wake that finds no slot has no one
 *	  to wake, since a receiver pins the slot before it looks at the
 *	  queue; a receiver that pins it later takes its snapshot after the
 *	  wake's commit, and sees what it committed;
 *	- where receives start: a new slot starts at the beginning, and a
 *	  receive records what it saw only into the slot it read its start
 *	  from (the build number in its token), never into a rebuilt one;
 *	- notifications owed: a slot that owes one is held;
 *	- counters: they restart at zero, and txmq.stats shows since when
 *	  each row's counters count (counters_since).  A subscription without
 *	  a slot has counted nothing since the last slot was evicted or
 *	  refused, so its counters are zero since then.
 *
 * Every use of a slot happens under slots_lock (shared for the slot's own
 * fields, which its mutex and atomics protect; exclusive to build, evict
 * or free one), except by a pinning receiver, which only sleeps on and
 * leaves the condition variable.  When every slot is held, a new one is
 * refused: its receivers poll every txmq.poll_interval, its topic gets
 * only the notifications that commits send, its events are not counted;
 * the server log and txmq.stats say how many slots were needed.
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
 * row (its post came after its commit).  Without a slot (every slot held)
 * the topic gets only the notifications that commits send.
 *
 * Without shared_preload_libraries none of this exists and every function
 * here is a no-op.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#define FULL_WALK_EVERY_US USECS_PER_SEC
#include "utils/hsearch.h"
#include "utils/memutils.h"

typedef struct SlotKey
{
	Oid			dboid;			/* InvalidOid: a free slot */
	int32		topic_id;		/* 0 for a subscription's slot */
	int32		sub_id;
} SlotKey;

/* The slot table's hash: which slot holds a key */
typedef struct SlotMapping
{
	SlotKey		key;
	int			slot;			/* index in SlotTable.slots */
} SlotMapping;

typedef struct Slot
{
	SlotKey		key;
	/* under slots_lock: whether it may be evicted (see the file header) */
	pg_atomic_uint32 pins;		/* receivers that hold it (txmq_sub_cv) */
	bool		recent;			/* used since the clock hand passed */
	bool		dropped;		/* free it when the last pin goes */
	int			next_free;		/* the free list, while free */
	uint64		build;			/* this slot's build, unique */
	TimestampTz built_at;		/* its counters count since then */
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

/* All under slots_lock (exclusive to change) but the atomics */
typedef struct SlotTable
{
	int			free_head;		/* first free slot, -1: none */
	int			hand;			/* the clock's */
	uint64		builds;			/* slots built since the table was set up */
	TimestampTz started;		/* when it was set up */
	TimestampTz lost_at;		/* last eviction or refusal, 0: none */
	TimestampTz warned_at;		/* last WARNING that slots ran out */
	uint64		refused_mark;	/* releases when every slot was held */
	pg_atomic_uint64 releases;	/* pins dropped, notifications taken ... */
	pg_atomic_uint32 unslotted; /* receivers waiting without a slot */
	pg_atomic_uint32 needed;	/* the most slots wanted at once, as seen */
	Slot		slots[FLEXIBLE_ARRAY_MEMBER];
} SlotTable;

typedef struct TxmqShared
{
	LWLock	   *slots_lock;
} TxmqShared;

static TxmqShared *shared = NULL;
static HTAB *slots = NULL;

static SlotTable *table = NULL;

static Size
slot_table_size(void)
{
	return add_size(offsetof(SlotTable, slots),
					mul_size(sizeof(Slot), txmq_max_subscriptions));
}

/* Every slot free, on the free list in order */
static void
init_slot_table(void)
{
	table->free_head = 0;
	table->hand = 0;
	table->builds = 0;
	table->started = GetCurrentTimestamp();
	table->lost_at = 0;
	table->warned_at = 0;
	table->refused_mark = PG_UINT64_MAX;
	pg_atomic_init_u64(&table->releases, 0);
	pg_atomic_init_u32(&table->unslotted, 0);
	pg_atomic_init_u32(&table->needed, 0);
	for (int i = 0; i < txmq_max_subscriptions; i++)
	{
		Slot	   *slot = &table->slots[i];

		memset(slot, 0, sizeof(*slot));
		pg_atomic_init_u32(&slot->pins, 0);
		for (int c = 0; c < NUM_TXMQ_COUNTERS; c++)
			pg_atomic_init_u64(&slot->counters[c], 0);
		SpinLockInit(&slot->mutex);
		slot->next_free = i + 1 < txmq_max_subscriptions ? i + 1 : -1;
	}
}

void
txmq_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(TxmqShared)));
	RequestAddinShmemSpace(MAXALIGN(slot_table_size()));
	RequestAddinShmemSpace(hash_estimate_size(txmq_max_subscriptions,
											  sizeof(SlotMapping)));
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

	table = ShmemInitStruct("txmq slot table", slot_table_size(), &found);
	if (!found)
		init_slot_table();
	info.keysize = sizeof(SlotKey);
	info.entrysize = sizeof(SlotMapping);
	slots = ShmemInitHash("txmq slots", txmq_max_subscriptions,
						  txmq_max_subscriptions, &info,
						  HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
}

/* ---- finding, building and evicting slots (see the file header) ---- */

/* How often at most the server log hears that every slot is held */
#define WARN_EVERY_US (10 * USECS_PER_SEC)

/* A refusal this backend must still report, once slots_lock is released */
static uint32 refused_needed = 0;

#define MAX_PINS 4

static Slot *pinned[MAX_PINS];	/* this backend's pins */
static int	npinned = 0;
static int	nunslotted = 0;		/* its waits that found no slot */

static SlotKey
slot_key(int32 topic_id, int32 sub_id)
{
	SlotKey		key;

	memset(&key, 0, sizeof(key));	/* hashed as bytes */
	key.dboid = MyDatabaseId;
	key.topic_id = sub_id != 0 ? 0 : topic_id;
	key.sub_id = sub_id;
	return key;
}

/* The slot holding key, or NULL; slots_lock held. */
static Slot *
find_slot(const SlotKey *key)
{
	SlotMapping *m = hash_search(slots, key, HASH_FIND, NULL);

	return m ? &table->slots[m->slot] : NULL;
}

/* Whether a slot in use must not be evicted now; slots_lock held. */
static bool
slot_held(Slot *slot)
{
	bool		held;

	if (pg_atomic_read_u32(&slot->pins) > 0)
		return true;
	if (slot->dropped)
		return false;			/* a dropped topic is owed nothing */
	SpinLockAcquire(&slot->mutex);
	held = slot->notify_due != DT_NOEND || slot->notify_forced ||
		slot->notifier != NULL;
	SpinLockRelease(&slot->mutex);
	return held;
}

/* Raise the most slots wanted at once to n, if it is lower. */
static void
raise_needed(uint32 n)
{
	txmq_raise_mark(&table->needed, n);
}

/* Put a slot nobody holds on the free list; slots_lock held exclusively. */
static void
free_slot(Slot *slot)
{
	hash_search(slots, &slot->key, HASH_REMOVE, NULL);
	slot->key.dboid = InvalidOid;
	slot->next_free = table->free_head;
	table->free_head = slot - table->slots;
}

/*
 * Take an idle slot by the clock sweep: the first that nobody holds and
 * that was not used since the hand last passed it.  Returns its index, -1
 * if every slot is held.  slots_lock held exclusively, so nothing changes
 * meanwhile; the free list is empty.
 */
static int
evict_slot(void)
{
	uint64		releases = pg_atomic_read_u64(&table->releases);

	/* every slot was held at the last sweep, and none has been let go */
	if (releases == table->refused_mark)
		return -1;
	for (int n = 0; n < 2 * txmq_max_subscriptions; n++)
	{
		int			i = table->hand;
		Slot	   *slot = &table->slots[i];

		table->hand = (i + 1) % txmq_max_subscriptions;
		if (slot_held(slot))
			continue;
		if (slot->recent && !slot->dropped)
		{
			slot->recent = false;
			continue;
		}
		hash_search(slots, &slot->key, HASH_REMOVE, NULL);
		table->lost_at = GetCurrentTimestamp();
		return i;
	}
	table->refused_mark = releases;
	return -1;
}

/*
 * Build a slot for key from scratch, in a free slot or an evicted one;
 * NULL if every slot is held.  slots_lock held exclusively.
 */
static Slot *
build_slot(const SlotKey *key)
{
	int			i = table->free_head;
	Slot	   *slot;
	SlotMapping *m;

	if (i >= 0)
		table->free_head = table->slots[i].next_free;
	else if ((i = evict_slot()) < 0)
		return NULL;
	slot = &table->slots[i];
	/* never NULL: the hash has an entry for every slot */
	m = hash_search(slots, key, HASH_ENTER_NULL, NULL);
	Assert(m != NULL);
	m->slot = i;
	slot->key = *key;
	Assert(pg_atomic_read_u32(&slot->pins) == 0);
	slot->recent = true;
	slot->dropped = false;
	slot->build = ++table->builds;
	slot->built_at = GetCurrentTimestamp();
	ConditionVariableInit(&slot->cv);
	for (int c = 0; c < NUM_TXMQ_COUNTERS; c++)
		pg_atomic_write_u64(&slot->counters[c], 0);
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
	return slot;
}

/*
 * Every slot is held and one more is wanted: note how many are needed (the
 * receivers waiting without a slot, and this one, unless it is one of
 * them), and have close_slot() warn if the log has not heard so lately.
 * slots_lock held exclusively.
 */
static void
note_refusal(void)
{
	TimestampTz now = GetCurrentTimestamp();
	uint32		needed = txmq_max_subscriptions +
		pg_atomic_read_u32(&table->unslotted) + (nunslotted > 0 ? 0 : 1);

	table->lost_at = now;
	raise_needed(needed);
	if (now - table->warned_at >= WARN_EVERY_US)
	{
		table->warned_at = now;
		refused_needed = needed;
	}
}

/*
 * The slot of (topic_id, sub_id) in this database, built if there is none
 * and create; NULL if there is none, or none could be had.  slots_lock is
 * held from here to close_slot(), also when this returns NULL.
 */
static Slot *
open_slot(int32 topic_id, int32 sub_id, bool create)
{
	SlotKey		key;
	Slot	   *slot;

	if (table == NULL)
		return NULL;
	key = slot_key(topic_id, sub_id);
	LWLockAcquire(shared->slots_lock, LW_SHARED);
	slot = find_slot(&key);
	if (slot == NULL && create)
	{
		LWLockRelease(shared->slots_lock);
		LWLockAcquire(shared->slots_lock, LW_EXCLUSIVE);
		slot = find_slot(&key);
		if (slot == NULL && (slot = build_slot(&key)) == NULL)
			note_refusal();
	}
	/* a read first: most uses find it marked, and need not write */
	if (slot != NULL && !slot->recent)
		slot->recent = true;
	return slot;
}

/* End what open_slot() began; say so if slots ran out (must not throw). */
static void
close_slot(void)
{
	uint32		needed = refused_needed;

	if (table == NULL)
		return;
	LWLockRelease(shared->slots_lock);
	if (needed == 0)
		return;
	refused_needed = 0;
	ereport(WARNING,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("txmq: all %d subscription slots are held, %u are needed",
					txmq_max_subscriptions, needed),
			 errdetail("Slots are held by receivers waiting on a subscription, by topics owed a notification and by the databases' workers. Until one is let go, a subscription without a slot is woken only every txmq.poll_interval, a topic without one gets only the notifications that commits send, and neither counts what happens meanwhile."),
			 errhint("Raise txmq.max_subscriptions to at least %u and restart.",
					 needed)));
}

/* ---- pins, and the slots of dropped topics and subscriptions ---- */


/* Drops to apply to the slots when the transaction commits */
typedef struct SlotDrop
{
	int32		topic_id;
	int32		sub_id;
	SubTransactionId subxact;	/* of the savepoint that dropped it */
} SlotDrop;

static SlotDrop *drops = NULL;	/* in TopTransactionContext */
static int	ndrops = 0;
static int	maxdrops = 0;

/* Let go of one pin of slot (slots_lock not held). */
static void
unpin(Slot *slot)
{
	bool		free_it;

	LWLockAcquire(shared->slots_lock, LW_SHARED);
	free_it = pg_atomic_sub_fetch_u32(&slot->pins, 1) == 0 && slot->dropped;
	pg_atomic_fetch_add_u64(&table->releases, 1);
	LWLockRelease(shared->slots_lock);
	if (!free_it)
		return;
	LWLockAcquire(shared->slots_lock, LW_EXCLUSIVE);
	/* unless someone pinned it meanwhile, or it was rebuilt for another */
	if (pg_atomic_read_u32(&slot->pins) == 0 && slot->dropped)
		free_slot(slot);
	LWLockRelease(shared->slots_lock);
}

/* At abort and exit: off the wait list, and every pin let go. */
static void
release_all(void)
{
	ConditionVariableCancelSleep();
	while (npinned > 0)
		unpin(pinned[--npinned]);
	pg_atomic_fetch_sub_u32(&table->unslotted, nunslotted);
	nunslotted = 0;
}

static void
release_at_exit(int code, Datum arg)
{
	release_all();
}

/*
 * A dropped topic or subscription has no use for its slot: free it now,
 * or as soon as the receivers that hold it let go.
 */
static void
free_dropped(int32 topic_id, int32 sub_id)
{
	SlotKey		key = slot_key(topic_id, sub_id);
	Slot	   *slot;

	LWLockAcquire(shared->slots_lock, LW_SHARED);
	slot = find_slot(&key);
	LWLockRelease(shared->slots_lock);
	if (slot == NULL)
		return;
	LWLockAcquire(shared->slots_lock, LW_EXCLUSIVE);
	slot = find_slot(&key);
	if (slot != NULL && pg_atomic_read_u32(&slot->pins) == 0)
		free_slot(slot);
	else if (slot != NULL)
		slot->dropped = true;
	LWLockRelease(shared->slots_lock);
}

static void
forget_drops(void)
{
	/* the memory goes with TopTransactionContext */
	drops = NULL;
	ndrops = 0;
	maxdrops = 0;
}

/*
 * A prepared transaction's drops are forgotten: their slots are evicted
 * when idle, and the worker's reaper frees those of subscriptions.
 */
static void
slots_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			for (int i = 0; i < ndrops; i++)
				free_dropped(drops[i].topic_id, drops[i].sub_id);
			forget_drops();
			break;
		case XACT_EVENT_ABORT:
			release_all();
			forget_drops();
			break;
		case XACT_EVENT_PREPARE:
			forget_drops();
			break;
		default:
			break;
	}
}

/*
 * A pin lasts only while one function sleeps, and nothing in it catches
 * an error: any abort, of a savepoint too, ends what pinned.
 */
static void
slots_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		release_all();
		while (ndrops > 0 && drops[ndrops - 1].subxact == mySubid)
			ndrops--;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		for (int i = ndrops - 1; i >= 0 && drops[i].subxact == mySubid; i--)
			drops[i].subxact = parentSubid;
}

static void
register_callbacks(void)
{
	static bool registered = false;

	if (registered)
		return;
	RegisterXactCallback(slots_xact_callback, NULL);
	RegisterSubXactCallback(slots_subxact_callback, NULL);
	on_shmem_exit(release_at_exit, (Datum) 0);
	registered = true;
}

/*
 * The condition variable a receiver of this subscription sleeps on,
 * pinned until txmq_sub_cv_release(); or NULL (then it polls).  The caller
 * gets on its wait list after this, and off it before the release.
 */
ConditionVariable *
txmq_sub_cv(int32 topic_id, int32 sub_id)
{
	Slot	   *slot;

	if (table == NULL)
		return NULL;
	register_callbacks();
	if (npinned == MAX_PINS)
		elog(ERROR, "txmq: too many subscription slots pinned");
	slot = open_slot(topic_id, sub_id, true);
	if (slot != NULL)
	{
		pg_atomic_fetch_add_u32(&slot->pins, 1);
		pinned[npinned++] = slot;
	}
	else
	{
		pg_atomic_fetch_add_u32(&table->unslotted, 1);
		nunslotted++;
	}
	close_slot();
	return slot ? &slot->cv : NULL;
}

/* The receiver that got cv from txmq_sub_cv() has left its wait list. */
void
txmq_sub_cv_release(ConditionVariable *cv)
{
	if (table == NULL)
		return;
	if (cv == NULL && nunslotted > 0)
	{
		pg_atomic_fetch_sub_u32(&table->unslotted, 1);
		nunslotted--;
	}
	for (int i = npinned - 1; cv != NULL && i >= 0; i--)
		if (&pinned[i]->cv == cv)
		{
			Slot	   *slot = pinned[i];

			pinned[i] = pinned[--npinned];
			unpin(slot);
			return;
		}
}

/*
 * When this transaction commits, free the slot of a topic (sub_id 0) or
 * subscription it drops (catalog.c).
 */
void
txmq_slots_drop_at_commit(int32 topic_id, int32 sub_id)
{
	if (table == NULL)
		return;
	register_callbacks();
	if (ndrops == maxdrops)
	{
		maxdrops = maxdrops ? maxdrops * 2 : 16;
		drops = drops ? repalloc(drops, sizeof(SlotDrop) * maxdrops) :
			MemoryContextAlloc(TopTransactionContext,
							   sizeof(SlotDrop) * maxdrops);
	}
	drops[ndrops].topic_id = topic_id;
	drops[ndrops].sub_id = sub_id;
	drops[ndrops].subxact = GetCurrentSubTransactionId();
	ndrops++;
}

/*
 * Free the slot of a subscription dropped earlier, if a transaction that
 * committed after the drop made it again (the worker's reaper).
 */
void
txmq_free_sub_slot(int32 sub_id)
{
	if (table != NULL)
		free_dropped(0, sub_id);
}

/* How full the slot table is, for txmq.stats; false without one. */
bool
txmq_slots_usage(TxmqUsage *usage)
{
	int			held = 0;

	if (table == NULL)
		return false;
	LWLockAcquire(shared->slots_lock, LW_SHARED);
	for (int i = 0; i < txmq_max_subscriptions; i++)
		if (table->slots[i].key.dboid != InvalidOid &&
			slot_held(&table->slots[i]))
			held++;
	LWLockRelease(shared->slots_lock);
	raise_needed(held + pg_atomic_read_u32(&table->unslotted));
	usage->capacity = txmq_max_subscriptions;
	usage->in_use = held;
	usage->needed = pg_atomic_read_u32(&table->needed);
	return true;
}

/* ---- what slots hold ---- */

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
 * txmq_scan_advance().  Without a slot, from the beginning.
 */
void
txmq_scan_start(int32 topic_id, int32 sub_id, TimestampTz now,
				TxmqScanStart *start)
{
	Slot	   *slot = open_slot(topic_id, sub_id, true);

	memset(start, 0, sizeof(*start));
	if (slot != NULL)
	{
		SpinLockAcquire(&slot->mutex);
		start->build = slot->build;
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
	close_slot();
}

/*
 * Record what a receive's fresh snapshot saw on its walk, unless a wake
 * came since the receive read its start, or the slot it read it from was
 * evicted.
 */
void
txmq_scan_advance(int32 topic_id, int32 sub_id, const TxmqScanStart *start,
				  const TxmqScanSeen *seen)
{
	Slot	   *slot;
	int64		ready_from;

	if (seen->first_visible < 0)
		return;
	/* no visible row was ready: the next one may follow the last */
	ready_from = seen->first_ready >= 0 ? seen->first_ready :
		seen->last_visible + 1;
	slot = open_slot(topic_id, sub_id, false);
	if (slot != NULL && slot->build == start->build)
	{
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
	close_slot();
}

/*
 * Wake receivers of a subscription that now has n more messages available,
 * the smallest of them from_id: one sleeper per message, everyone when
 * there are many.  Without a slot nobody sleeps on it.
 */
void
txmq_wake(int32 topic_id, int32 sub_id, int64 nmessages, int64 from_id)
{
	Slot	   *slot = open_slot(topic_id, sub_id, false);

	if (slot != NULL && nmessages > 0)
	{
		lower_scan_start(slot, from_id);
		if (nmessages >= 8)
			ConditionVariableBroadcast(&slot->cv);
		else
			for (int64 i = 0; i < nmessages; i++)
				ConditionVariableSignal(&slot->cv);
	}
	close_slot();
}

/*
 * The latch of the database's worker if a post due at due must set it:
 * the worker sleeps past due.  slots_lock held.
 */
static Latch *
notifier_to_wake(TimestampTz due)
{
	SlotKey		key = slot_key(0, 0);
	Slot	   *slot = find_slot(&key);
	Latch	   *latch = NULL;

	if (slot == NULL)
		return NULL;
	SpinLockAcquire(&slot->mutex);
	if (slot->notifier != NULL && slot->notifier_pid != MyProcPid &&
		due < slot->notifier_at)
		latch = slot->notifier;
	SpinLockRelease(&slot->mutex);
	return latch;
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
	Slot	   *slot = open_slot(topic_id, 0, true);
	Latch	   *latch = NULL;

	if (slot != NULL)
	{
		bool		earlier = false;

		SpinLockAcquire(&slot->mutex);
		if (due < slot->notify_due)
		{
			slot->notify_due = due;
			earlier = true;
		}
		slot->notify_forced |= forced;
		SpinLockRelease(&slot->mutex);
		if (earlier)
			latch = notifier_to_wake(due);
	}
	close_slot();
	if (latch)
		SetLatch(latch);
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
	Slot	   *slot = open_slot(0, 0, latch != NULL);

	if (slot != NULL)
	{
		bool		left = false;

		SpinLockAcquire(&slot->mutex);
		if (latch != NULL || slot->notifier_pid == MyProcPid)
		{
			left = latch == NULL && slot->notifier != NULL;
			slot->notifier = latch;
			slot->notifier_pid = latch ? MyProcPid : 0;
			slot->notifier_at = next;
		}
		SpinLockRelease(&slot->mutex);
		if (left)
			pg_atomic_fetch_add_u64(&table->releases, 1);
	}
	close_slot();
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
	int			n = 0;

	*next = DT_NOEND;
	if (table == NULL)
		return 0;
	LWLockAcquire(shared->slots_lock, LW_SHARED);
	for (int i = 0; i < txmq_max_subscriptions; i++)
	{
		Slot	   *slot = &table->slots[i];

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
	if (n > 0)
		pg_atomic_fetch_add_u64(&table->releases, 1);
	LWLockRelease(shared->slots_lock);
	return n;
}

void
txmq_count(int32 topic_id, int32 sub_id, TxmqCounter c, int64 delta)
{
	Slot	   *slot = open_slot(topic_id, sub_id, true);

	if (slot != NULL)
		pg_atomic_fetch_add_u64(&slot->counters[c], delta);
	close_slot();
}

/*
 * Copy the counters of one slot, and say since when they count: since
 * the slot was built, or, for a topic or subscription without one, since
 * the last time a slot was evicted or refused (or the table set up): any
 * event since would have found or built its slot.  False without
 * shared_preload_libraries.
 */
bool
txmq_read_counters(int32 topic_id, int32 sub_id, int64 *out,
				   TimestampTz *since)
{
	Slot	   *slot;

	if (table == NULL)
		return false;
	slot = open_slot(topic_id, sub_id, false);
	memset(out, 0, sizeof(int64) * NUM_TXMQ_COUNTERS);
	if (slot != NULL)
	{
		for (int i = 0; i < NUM_TXMQ_COUNTERS; i++)
			out[i] = (int64) pg_atomic_read_u64(&slot->counters[i]);
		*since = slot->built_at;
	}
	else
		*since = Max(table->started, table->lost_at);
	close_slot();
	return true;
}
