/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The launcher and the per-database workers.
 *
 * Launcher.  A static background worker, registered when txmq is in
 * shared_preload_libraries.  It connects to no database, reads pg_database
 * every txmq.worker_naptime and starts one dynamic worker for each
 * connectable, non-template database, at most txmq.max_workers at a time.
 * A worker that finds no txmq extension in its database says so in shared
 * memory and exits; the launcher then leaves that database alone until
 * CREATE EXTENSION txmq there pokes it (the install script calls
 * txmq._poke_launcher(), which acts at commit), so a new installation gets
 * its worker at once, without a restart.  A database created later from a
 * template that has txmq is found by the next scan.
 *
 * Turns.  When a database waits for a worker that cannot start (all
 * txmq.max_workers run, or no background worker slot is free), the worker
 * that has served its database longest, if for WORKER_TURN_NAPTIMES
 * naptimes, is asked to leave it after its round, and the database whose
 * worker started longest ago (or never) goes first.  So no guarantee
 * depends on the worker table having room: every database gets its
 * check-back, notifications and reaping in turn, only later.  A worker
 * starting in a database does everything a gap in service may have
 * missed: it notifies each topic with messages already due, and checks
 * each half message that is due.
 *
 * Workers are registered BGW_NEVER_RESTART and supervised by the launcher
 * instead of the postmaster: it hears of every start and exit
 * (bgw_notify_pid), restarts a worker that exited no sooner than
 * WORKER_RESTART_MS after that worker's start, and terminates the workers
 * of databases that are gone.  After a crash the postmaster forgets dynamic
 * workers and restarts the launcher, which starts them again.  Shared
 * memory records which process serves which database, so that a second
 * worker for a database (possible only around a launcher restart) exits.
 *
 * Workers.  A round (at most txmq.worker_naptime apart, sooner when the
 * next half message falls due) checks the due half messages, each in a
 * transaction of its own so that a bad message or check function cannot
 * hold up the others (half.c does the checking), deletes resolved half
 * messages older than txmq.half_retention and dedup keys whose window
 * has passed (send.c), expires messages past their subscription's
 * retention (reclaim.c), and forgets the delivery attempts of messages
 * that are gone (attempts.c).  Other timed maintenance belongs in
 * worker_round() too.
 *
 * Notifications.  Between rounds, and as soon as one is due, the worker
 * sends the NOTIFYs that no committing transaction can: for messages whose
 * delay, backoff or lease ran out, and for messages a rollback made
 * receivable again.  Transactions post when that will be in the topic's
 * shared slot (shmem.c) and set the worker's latch if it would sleep past
 * it.  notify_round() takes the topics whose time came, and in one
 * transaction asks for each whether a row fell due since its posted time
 * and when its next row will (a few index probes per subscription, see
 * PLAN_NOTIFY_DUE), NOTIFYs those with a row due, once each, and posts
 * their next times back.  Its cost follows the topics that have something
 * due, not the size of the queues.  Rounds are at least NOTIFY_GAP_MS
 * apart, so that leases running out one after another cost one
 * transaction per gap, not one each.  Once per naptime the worker also
 * reads which topics there are: at its start, and for a topic restored
 * since, it has a round for everything already due (see
 * refresh_known_topics).
 *
 * DROP DATABASE.  dropdb() takes an AccessExclusiveLock on the database
 * and then waits up to 5 s for the other sessions to leave; it does not
 * signal background workers.  So before every round and every message, a
 * worker tries the lock a new session takes (RowExclusiveLock, released at
 * once); if it cannot have it, someone is dropping, renaming, moving or
 * copying the database, and the worker exits to get out of the way.  The
 * launcher tries the same lock before it starts a worker.  A drop still
 * fails if one check function runs longer than those 5 s; keep
 * txmq.check_timeout below that.  DROP EXTENSION: the next round finds the
 * extension gone and the worker exits.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(txmq_poke_launcher_sql);

PGDLLEXPORT void txmq_launcher_main(Datum main_arg);
PGDLLEXPORT void txmq_worker_main(Datum main_arg);

#define LAUNCHER_RESTART_S 5	/* postmaster restarts a crashed launcher */
#define WORKER_RESTART_MS 2000	/* least time between starts of a worker */
#define WORKER_BATCH 100		/* half messages looked at per round */
#define MAX_POKES 16
#define NOTIFY_BATCH 256		/* topics notified per transaction */
#define NOTIFY_GAP_MS 10		/* least time between notify rounds */
#define WORKER_TURN_NAPTIMES 10 /* a worker's turn when databases wait */

typedef struct WorkerSlot
{
	Oid			dboid;			/* InvalidOid: free */
	pid_t		pid;			/* the worker serving dboid; 0 once it exits */
	bool		no_extension;	/* it exited: txmq is not installed */
	bool		poked;			/* CREATE EXTENSION committed meanwhile */
	Latch	   *latch;			/* the worker's */
	TimestampTz started;		/* when it took the slot */
	bool		yield;			/* asked to leave for a waiting database */
} WorkerSlot;

typedef struct WorkerShared
{
	slock_t		mutex;
	Latch	   *launcher_latch; /* NULL while no launcher runs */
	int			npokes;
	bool		pokes_lost;		/* more than MAX_POKES: retry them all */
	Oid			pokes[MAX_POKES];	/* where CREATE EXTENSION committed */
	int			needed;			/* most databases that wanted a worker */
	WorkerSlot	slots[FLEXIBLE_ARRAY_MEMBER];	/* txmq_max_workers */
} WorkerShared;

/* The launcher's own record of a database. */
typedef struct LaunchedDb
{
	Oid			dboid;			/* hash key */
	BackgroundWorkerHandle *handle; /* NULL: no worker registered */
	TimestampTz last_start;		/* when one was last tried */
	TimestampTz served_at;		/* when one last started, 0: never */
	bool		not_installed;	/* leave it alone until poked */
	bool		present;		/* in pg_database at the last scan */
} LaunchedDb;

static WorkerShared *wshared = NULL;

/* this worker's slot, and why it exits */
static WorkerSlot *my_slot = NULL;
static bool exit_no_extension = false;

static bool poke_at_commit = false;

/*
 * Every topic, as this worker last read them (ids sorted), and when it
 * read them (the start of that round's transaction).
 */
static int32 *known_topics = NULL;
static int	n_known_topics = 0;
static TimestampTz known_topics_read_at = 0;

static Size
worker_shmem_size(void)
{
	return add_size(offsetof(WorkerShared, slots),
					mul_size(sizeof(WorkerSlot), txmq_max_workers));
}

/* From the shmem_request_hook (txmq.c). */
void
txmq_worker_shmem_request(void)
{
	RequestAddinShmemSpace(worker_shmem_size());
}

/* From the shmem_startup_hook (txmq.c). */
void
txmq_worker_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	wshared = ShmemInitStruct("txmq workers", worker_shmem_size(), &found);
	if (!found)
	{
		memset(wshared, 0, worker_shmem_size());
		SpinLockInit(&wshared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
txmq_register_launcher(void)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = LAUNCHER_RESTART_S;
	strlcpy(w.bgw_library_name, "txmq", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "txmq_launcher_main", BGW_MAXLEN);
	strlcpy(w.bgw_name, "txmq launcher", BGW_MAXLEN);
	strlcpy(w.bgw_type, "txmq launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&w);
}

/* Whether a txmq worker serves this database now. */
bool
txmq_worker_running(void)
{
	bool		running = false;

	if (wshared == NULL)
		return false;
	SpinLockAcquire(&wshared->mutex);
	for (int i = 0; i < txmq_max_workers; i++)
		if (wshared->slots[i].dboid == MyDatabaseId &&
			wshared->slots[i].pid != 0)
			running = true;
	SpinLockRelease(&wshared->mutex);
	return running;
}

/* How full the launcher's worker table is, for txmq.stats. */
bool
txmq_workers_usage(TxmqUsage *usage)
{
	int			in_use = 0;

	if (wshared == NULL)
		return false;
	SpinLockAcquire(&wshared->mutex);
	for (int i = 0; i < txmq_max_workers; i++)
		in_use += wshared->slots[i].pid != 0;
	usage->needed = Max(wshared->needed, in_use);
	SpinLockRelease(&wshared->mutex);
	usage->capacity = txmq_max_workers;
	usage->in_use = in_use;
	return true;
}

/*
 * Whether a new session could enter database dboid now: false while a
 * DROP, RENAME, SET TABLESPACE or a copy of it (CREATE DATABASE ... TEMPLATE)
 * waits for its sessions to leave.  Within a transaction.
 */
static bool
database_available(Oid dboid)
{
	LOCKTAG		tag;

	/* LockSharedObject()'s tag; PostgreSQL 15 has no conditional variant */
	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, dboid, 0);
	if (LockAcquire(&tag, RowExclusiveLock, false, true) ==
		LOCKACQUIRE_NOT_AVAIL)
		return false;
	LockRelease(&tag, RowExclusiveLock, false);
	return true;
}

static void
reload_config_if_asked(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* ---- poking the launcher at CREATE EXTENSION ---- */

static void
poke_now(void)
{
	Latch	   *latch;

	SpinLockAcquire(&wshared->mutex);
	for (int i = 0; i < txmq_max_workers; i++)
		if (wshared->slots[i].dboid == MyDatabaseId)
			wshared->slots[i].poked = true;
	if (wshared->npokes < MAX_POKES)
		wshared->pokes[wshared->npokes++] = MyDatabaseId;
	else
		wshared->pokes_lost = true;
	latch = wshared->launcher_latch;
	SpinLockRelease(&wshared->mutex);
	if (latch)
		SetLatch(latch);
}

/* After commit, when the extension is visible to a new worker. */
static void
poke_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && poke_at_commit)
		poke_now();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
		poke_at_commit = false;
}

/* Have the launcher (re)consider this database when this transaction commits. */
static void
poke_launcher(void)
{
	static bool registered = false;

	if (!registered)
	{
		RegisterXactCallback(poke_callback, NULL);
		registered = true;
	}
	poke_at_commit = true;
}

/*
 * txmq._poke_launcher(), called by CREATE EXTENSION: get this database a
 * worker, or say that there will be none.
 */
Datum
txmq_poke_launcher_sql(PG_FUNCTION_ARGS)
{
	if (wshared == NULL)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("txmq is not in shared_preload_libraries: half messages will not be checked back"),
				 errdetail("Sending and receiving work; long polls poll, txmq.stats shows no counters and worker_running = false."),
				 errhint("Add txmq to shared_preload_libraries and restart the server.")));
	else
		poke_launcher();
	PG_RETURN_VOID();
}

/* ---- the per-database worker ---- */

/* Exit callback: leave the slot, saying why if the launcher should know. */
static void
release_slot(int code, Datum arg)
{
	txmq_notifier_at(NULL, DT_NOEND);
	SpinLockAcquire(&wshared->mutex);
	if (my_slot->pid == MyProcPid)
	{
		my_slot->pid = 0;
		my_slot->no_extension = exit_no_extension;
		if (!exit_no_extension)
			my_slot->dboid = InvalidOid;
	}
	SpinLockRelease(&wshared->mutex);
}

/* Take this database's slot; false if another worker serves it. */
static bool
claim_slot(void)
{
	WorkerSlot *free_slot = NULL;

	SpinLockAcquire(&wshared->mutex);
	for (int i = 0; i < txmq_max_workers; i++)
	{
		WorkerSlot *s = &wshared->slots[i];

		if (s->dboid == MyDatabaseId)
			my_slot = s;
		else if (s->dboid == InvalidOid && free_slot == NULL)
			free_slot = s;
	}
	if (my_slot == NULL)
		my_slot = free_slot;
	if (my_slot != NULL && my_slot->pid != 0)
		my_slot = NULL;
	if (my_slot != NULL)
	{
		my_slot->dboid = MyDatabaseId;
		my_slot->pid = MyProcPid;
		my_slot->no_extension = false;
		my_slot->poked = false;
		my_slot->latch = MyLatch;
		my_slot->started = GetCurrentTimestamp();
		my_slot->yield = false;
	}
	SpinLockRelease(&wshared->mutex);
	if (my_slot == NULL)
		return false;
	on_shmem_exit(release_slot, (Datum) 0);
	return true;
}

static void
begin_xact(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_xact(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* Exit, from within a transaction, if the database must be left alone. */
static void
exit_if_unwanted(void)
{
	bool		available = database_available(MyDatabaseId);

	exit_no_extension = available &&
		!OidIsValid(get_extension_oid("txmq", true));
	if (available && !exit_no_extension)
		return;
	if (exit_no_extension)
		txmq_attempts_forget_database(MyDatabaseId);
	if (!available)
		ereport(LOG,
				(errmsg("txmq worker leaves database \"%s\" for a DROP, ALTER or copy of it",
						get_database_name(MyDatabaseId))));
	end_xact();
	proc_exit(0);
}

/* Log errors in the check of msg_id with its id. */
/* After an error in a round: report it and leave the transaction. */
static void
recover(void)
{
	HOLD_INTERRUPTS();
	EmitErrorReport();
	AbortOutOfAnyTransaction();
	FlushErrorState();
	RESUME_INTERRUPTS();
}

static void
check_error_context(void *arg)
{
	errcontext("txmq worker checking half message " INT64_FORMAT,
			   *(int64 *) arg);
}

/* Check one message in a transaction of its own; errors are logged. */
static void
check_one(int64 msg_id)
{
	ErrorContextCallback callback;

	begin_xact("txmq: checking a half message");
	exit_if_unwanted();
	callback.callback = check_error_context;
	callback.arg = &msg_id;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	PG_TRY();
	{
		txmq_check_half(msg_id, GetCurrentTimestamp());
		end_xact();
	}
	PG_CATCH();
	{
		/* as autovacuum does for a table: report, clean up, go on */
		recover();
	}
	PG_END_TRY();
	error_context_stack = callback.previous;
}

static int
cmp_int32(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;

	return (x > y) - (x < y);
}

/*
 * Read which topics there are.  Those with notify on get a notification
 * round for whatever of theirs is due already at the worker's start (no
 * slot may remember what fell due while no worker ran), and later if the
 * worker never saw them and they are older than its last read: their
 * rows came by other ways than txmq's functions (a restore).  A topic
 * created since the last read needs none, since every row it has came
 * through a function that notifies at commit, and a round would notify
 * that again; nor does a topic whose notify was turned on, since
 * alter_topic notifies then.  Within a transaction.
 */
static void
refresh_known_topics(void)
{
	TxmqOwnerScope scope;
	TimestampTz read_at = GetCurrentTransactionStartTimestamp();
	int32	   *ids;
	int			n;

	txmq_scope_enter(&scope, false);
	n = txmq_exec(PLAN_TOPICS, NULL, NULL, 0);
	ids = MemoryContextAlloc(TopMemoryContext, sizeof(int32) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		bool		notify;
		TimestampTz created_at;

		ids[i] = DatumGetInt32(txmq_col(i, 1, &isnull));
		notify = DatumGetBool(txmq_col(i, 2, &isnull));
		created_at = DatumGetTimestampTz(txmq_col(i, 3, &isnull));
		if (notify &&
			(known_topics == NULL ||
			 (created_at < known_topics_read_at &&
			  bsearch(&ids[i], known_topics, n_known_topics, sizeof(int32),
					  cmp_int32) == NULL)))
			txmq_notify_post(ids[i], DT_NOBEGIN, false);
	}
	txmq_scope_leave(&scope);
	if (known_topics)
		pfree(known_topics);
	known_topics = ids;
	n_known_topics = n;
	known_topics_read_at = read_at;
}

/* One round of timed work; returns how long to sleep (ms) afterwards. */
static long
worker_round(void)
{
	int64		ids[WORKER_BATCH];
	TimestampTz now;
	TimestampTz next_due;
	bool		more_expired;
	int			n;

	begin_xact("txmq: looking for due half messages");
	exit_if_unwanted();
	now = GetCurrentTimestamp();
	n = txmq_half_due(now, WORKER_BATCH, ids, &next_due);
	txmq_half_reclaim(now - (TimestampTz) txmq_half_retention_s * USECS_PER_SEC);
	txmq_dedup_reclaim(now);
	txmq_reap_dropped(now);
	more_expired = txmq_expire(now);
	txmq_attempts_sweep();
	refresh_known_topics();
	end_xact();

	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		reload_config_if_asked();
		check_one(ids[i]);
	}
	txmq_reclaim_storage();
	pgstat_report_activity(STATE_IDLE, NULL);
	if (n == WORKER_BATCH || more_expired)
		return 0;
	now = GetCurrentTimestamp();
	if (next_due <= now)
		return 0;
	return Min((next_due - now + 999) / 1000, (TimestampTz) txmq_worker_naptime_ms);
}

/*
 * NOTIFY the topics in fires whose time came (see the file header), and
 * return the earliest next time posted back.  Within a transaction; the
 * notifications go out when it commits.
 */
static TimestampTz
notify_fired(TxmqNotifyFire *fires, int n, TimestampTz now)
{
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *sinces = palloc(sizeof(Datum) * n);
	Datum	   *forced = palloc(sizeof(Datum) * n);
	Datum		args[4];
	TxmqOwnerScope scope;
	TimestampTz earliest = DT_NOEND;
	int			rows;

	for (int i = 0; i < n; i++)
	{
		ids[i] = Int32GetDatum(fires[i].topic_id);
		sinces[i] = TimestampTzGetDatum(fires[i].since);
		forced[i] = BoolGetDatum(fires[i].forced);
	}
	args[0] = PointerGetDatum(construct_array(ids, n, INT4OID, 4, true,
											  TYPALIGN_INT));
	args[1] = PointerGetDatum(construct_array(sinces, n, TIMESTAMPTZOID, 8,
											  FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
	args[2] = PointerGetDatum(construct_array(forced, n, BOOLOID, 1, true,
											  TYPALIGN_CHAR));
	args[3] = TimestampTzGetDatum(now);

	txmq_scope_enter(&scope, false);
	rows = txmq_exec(PLAN_NOTIFY_DUE, args, NULL, 0);
	for (int i = 0; i < rows; i++)
	{
		TxmqTopic	topic;
		bool		isnull;
		Datum		next;

		topic.topic_id = DatumGetInt32(txmq_col(i, 1, &isnull));
		topic.notify = true;
		text_to_cstring_buffer(DatumGetTextPP(txmq_col(i, 2, &isnull)),
							   topic.name, sizeof(topic.name));
		if (DatumGetBool(txmq_col(i, 3, &isnull)))
			txmq_notify_topic(&topic);
		next = txmq_col(i, 4, &isnull);
		if (isnull)
			continue;
		/* a post of the worker's own does not set its latch */
		txmq_notify_post(topic.topic_id, DatumGetTimestampTz(next), false);
		earliest = Min(earliest, DatumGetTimestampTz(next));
	}
	txmq_scope_leave(&scope);
	return earliest;
}

/*
 * Send the notifications that have come due; returns when the next ones
 * do (DT_NOEND: none known).
 */
static TimestampTz
notify_round(void)
{
	static TimestampTz not_before = 0;
	TxmqNotifyFire fires[NOTIFY_BATCH];
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next;
	int			n;

	if (now < not_before)
		return not_before;

	/* from here until it sleeps again, every post sets the latch */
	txmq_notifier_at(MyLatch, DT_NOEND);

	n = txmq_notify_take(now, fires, NOTIFY_BATCH, &next);
	if (n == 0)
		return next;
	not_before = now + NOTIFY_GAP_MS * (TimestampTz) 1000;

	begin_xact("txmq: notifying listeners of messages now due");
	exit_if_unwanted();
	PG_TRY();
	{
		next = Min(next, notify_fired(fires, n, now));
		end_xact();
	}
	PG_CATCH();
	{
		/* report, and try those topics again after a naptime */
		recover();
		not_before = now + txmq_worker_naptime_ms * (TimestampTz) 1000;
		for (int i = 0; i < n; i++)
			txmq_notify_post(fires[i].topic_id, fires[i].since,
							 fires[i].forced);
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);

	/*
	 * Posts by others since the take have set the latch (the next look
	 * is DT_NOEND): the next call takes them, not sooner than the gap.
	 */
	return Max(next, not_before);
}

/*
 * Whether the launcher asked this worker to leave its database to one
 * that waits for a worker (see the file header).  Asked between rounds.
 */
static bool
turn_is_over(void)
{
	bool		over;

	SpinLockAcquire(&wshared->mutex);
	over = my_slot->yield;
	SpinLockRelease(&wshared->mutex);
	return over;
}

void
txmq_worker_main(Datum main_arg)
{
	TimestampTz round_at;		/* when the next full round is due */

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	/* the statement timeout of check functions cancels with SIGINT */
	pqsignal(SIGINT, StatementCancelHandler);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg),
											  InvalidOid, 0);
	if (!claim_slot())
		proc_exit(0);			/* another worker serves this database */

	round_at = 0;

	for (;;)
	{
		TimestampTz now;
		TimestampTz wake;

		CHECK_FOR_INTERRUPTS();
		reload_config_if_asked();
		if (GetCurrentTimestamp() >= round_at)
		{
			long		ms = worker_round();

			round_at = GetCurrentTimestamp() + ms * (TimestampTz) 1000;
		}
		wake = Min(round_at, notify_round());
		if (turn_is_over())
			proc_exit(0);

		/* committers whose due time comes sooner set the latch */
		txmq_notifier_at(MyLatch, wake);

		now = GetCurrentTimestamp();
		if (wake > now)
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 (long) ((wake - now + 999) / 1000),
							 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---- the launcher ---- */

static void
forget_launcher(int code, Datum arg)
{
	SpinLockAcquire(&wshared->mutex);
	wshared->launcher_latch = NULL;
	SpinLockRelease(&wshared->mutex);
}

/* Mark the databases a worker could serve present in dbs. */
static void
read_databases(HTAB *dbs)
{
	HASH_SEQ_STATUS seq;
	LaunchedDb *db;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	hash_seq_init(&seq, dbs);
	while ((db = hash_seq_search(&seq)) != NULL)
		db->present = false;

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database d = (Form_pg_database) GETSTRUCT(tup);
		bool		found;

		if (!d->datallowconn || d->datistemplate ||
			database_is_invalid_form(d))
			continue;
		db = hash_search(dbs, &d->oid, HASH_ENTER, &found);
		if (!found)
		{
			db->handle = NULL;
			db->last_start = 0;
			db->served_at = 0;
			db->not_installed = false;
		}
		db->present = true;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* CREATE EXTENSION: start a worker without waiting out WORKER_RESTART_MS */
static void
retry_now(LaunchedDb *db)
{
	db->not_installed = false;
	db->last_start = 0;
}

/*
 * Take in what workers and CREATE EXTENSION left in shared memory: which
 * databases have no txmq, and which have just got it.
 */
static void
absorb_reports(HTAB *dbs)
{
	HASH_SEQ_STATUS seq;
	LaunchedDb *db;

	SpinLockAcquire(&wshared->mutex);
	for (int i = 0; i < txmq_max_workers; i++)
	{
		WorkerSlot *s = &wshared->slots[i];

		if (s->dboid == InvalidOid || s->pid != 0)
			continue;
		db = hash_search(dbs, &s->dboid, HASH_FIND, NULL);
		if (db != NULL && s->no_extension && !s->poked)
			db->not_installed = true;
		s->dboid = InvalidOid;
	}
	for (int i = 0; i < wshared->npokes; i++)
	{
		db = hash_search(dbs, &wshared->pokes[i], HASH_FIND, NULL);
		if (db != NULL)
			retry_now(db);
	}
	if (wshared->pokes_lost)
	{
		hash_seq_init(&seq, dbs);
		while ((db = hash_seq_search(&seq)) != NULL)
			retry_now(db);
	}
	wshared->npokes = 0;
	wshared->pokes_lost = false;
	SpinLockRelease(&wshared->mutex);
}

/* Whether some worker (maybe one an earlier launcher started) serves dboid. */
static bool
served(Oid dboid)
{
	bool		result = false;

	SpinLockAcquire(&wshared->mutex);
	for (int i = 0; i < txmq_max_workers; i++)
		if (wshared->slots[i].dboid == dboid && wshared->slots[i].pid != 0)
			result = true;
	SpinLockRelease(&wshared->mutex);
	return result;
}

static BackgroundWorkerHandle *
start_worker(Oid dboid)
{
	static bool warned = false;
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	MemoryContext old;
	bool		ok;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "txmq", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "txmq_worker_main", BGW_MAXLEN);
	snprintf(w.bgw_name, BGW_MAXLEN, "txmq worker for database %u", dboid);
	strlcpy(w.bgw_type, "txmq worker", BGW_MAXLEN);
	w.bgw_main_arg = ObjectIdGetDatum(dboid);
	w.bgw_notify_pid = MyProcPid;

	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&w, &handle);
	MemoryContextSwitchTo(old);
	if (!ok && !warned)
	{
		/* within launcher_scan's transaction */
		char	   *dbname = get_database_name(dboid);

		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("txmq launcher could not start a worker for database \"%s\": no background worker slot is free",
						dbname ? dbname : "?"),
				 errdetail("max_worker_processes = %d is shared by txmq's launcher and workers, parallel query, logical replication and other extensions.",
						   max_worker_processes),
				 errhint("Raise max_worker_processes (restart): txmq needs one more than the databases it serves.")));
	}
	warned |= !ok;
	return ok ? handle : NULL;
}

/*
 * Of the databases that should have a worker and have none, the one whose
 * worker started longest ago (or never), or NULL.  Not one whose last
 * start was tried less than WORKER_RESTART_MS ago.
 */
static LaunchedDb *
next_waiting(HTAB *dbs, TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	LaunchedDb *db;
	LaunchedDb *next = NULL;

	hash_seq_init(&seq, dbs);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		if (db->handle != NULL || db->not_installed || !db->present ||
			now < db->last_start + WORKER_RESTART_MS * (TimestampTz) 1000 ||
			served(db->dboid))
			continue;
		if (next == NULL || db->served_at < next->served_at)
			next = db;
	}
	return next;
}

/*
 * A database waits for a worker that cannot start: ask the worker that
 * has served its database longest, if for a whole turn, to leave it (it
 * does between its rounds), unless one is leaving already.  So every
 * database gets a worker in turn, however many there are.
 */
static void
end_a_turn(TimestampTz now)
{
	TimestampTz turn = (TimestampTz) WORKER_TURN_NAPTIMES *
		txmq_worker_naptime_ms * 1000;
	WorkerSlot *oldest = NULL;
	Latch	   *latch = NULL;

	SpinLockAcquire(&wshared->mutex);
	for (int i = 0; i < txmq_max_workers; i++)
	{
		WorkerSlot *s = &wshared->slots[i];

		if (s->pid == 0)
			continue;
		if (s->yield)
		{
			oldest = NULL;
			break;
		}
		if (now - s->started >= turn &&
			(oldest == NULL || s->started < oldest->started))
			oldest = s;
	}
	if (oldest != NULL)
	{
		oldest->yield = true;
		latch = oldest->latch;
	}
	SpinLockRelease(&wshared->mutex);
	if (latch)
		SetLatch(latch);
}

/* Note how many databases want a worker now, served or not. */
static void
count_wanted(HTAB *dbs)
{
	HASH_SEQ_STATUS seq;
	LaunchedDb *db;
	int			wanted = 0;

	hash_seq_init(&seq, dbs);
	while ((db = hash_seq_search(&seq)) != NULL)
		wanted += db->present && !db->not_installed;
	SpinLockAcquire(&wshared->mutex);
	wshared->needed = Max(wshared->needed, wanted);
	SpinLockRelease(&wshared->mutex);
}

/* One look at the databases: start, restart and stop workers. */
static void
launcher_scan(HTAB *dbs)
{
	static bool warned = false;
	HASH_SEQ_STATUS seq;
	LaunchedDb *db;
	TimestampTz now = GetCurrentTimestamp();
	int			running = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	read_databases(dbs);
	absorb_reports(dbs);

	hash_seq_init(&seq, dbs);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		pid_t		pid;

		if (db->handle != NULL &&
			GetBackgroundWorkerPid(db->handle, &pid) == BGWH_STOPPED)
		{
			pfree(db->handle);
			db->handle = NULL;
		}
		if (db->handle != NULL && !db->present)
			TerminateBackgroundWorker(db->handle);
		else if (db->handle == NULL && !db->present)
			hash_search(dbs, &db->dboid, HASH_REMOVE, NULL);
		running += db->handle != NULL;
	}

	/* the databases that have waited longest first */
	while ((db = next_waiting(dbs, now)) != NULL)
	{
		if (running >= txmq_max_workers)
		{
			if (!warned)
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("txmq launcher: all %d workers are busy, some databases wait for one",
								txmq_max_workers),
						 errdetail("The databases take turns: a worker that has served its database for %d times txmq.worker_naptime leaves it to one that waits.",
								   WORKER_TURN_NAPTIMES),
						 errhint("Raise txmq.max_workers and restart.")));
			warned = true;
			break;
		}
		if (!database_available(db->dboid))
		{
			db->last_start = now;	/* look again after WORKER_RESTART_MS */
			continue;
		}
		db->handle = start_worker(db->dboid);
		if (db->handle == NULL)
			break;				/* no background worker slot: it stays first */
		db->last_start = db->served_at = now;
		running++;
	}
	if (db != NULL)
		end_a_turn(now);
	count_wanted(dbs);
	CommitTransactionCommand();
}

void
txmq_launcher_main(Datum main_arg)
{
	HASHCTL		info;
	HTAB	   *dbs;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	SpinLockAcquire(&wshared->mutex);
	wshared->launcher_latch = MyLatch;
	SpinLockRelease(&wshared->mutex);
	on_shmem_exit(forget_launcher, (Datum) 0);

	info.keysize = sizeof(Oid);
	info.entrysize = sizeof(LaunchedDb);
	dbs = hash_create("txmq databases", 64, &info, HASH_ELEM | HASH_BLOBS);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		reload_config_if_asked();
		launcher_scan(dbs);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 txmq_worker_naptime_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
