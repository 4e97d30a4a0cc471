/*-------------------------------------------------------------------------
 *
 * txmq.c
 *	  Module initialisation and configuration.
 *
 * Loaded through shared_preload_libraries, txmq reserves shared memory for
 * commit-time wakeups, statistics counters and claims, maps the file that
 * keeps delivery attempts across crashes (attempts.c), and registers the launcher of its per-database background workers.
 * Loaded on demand instead, everything but those still works: long polls
 * fall back to polling, counters read as NULL and check-back does not run.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

int			txmq_max_payload_bytes = 1024 * 1024;
int			txmq_max_batch = 10000;
int			txmq_poll_interval_ms = 100;
int			txmq_max_subscriptions = 1024;
int			txmq_max_tracked_messages = 65536;
int			txmq_worker_naptime_ms = 1000;
int			txmq_max_workers = 8;
int			txmq_check_timeout_ms = 5000;
int			txmq_half_retention_s = 86400;
int			txmq_vacuum_threshold = 10000;
bool		txmq_preloaded = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;

static void
txmq_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	txmq_shmem_request();
	txmq_attempts_request();
	txmq_worker_shmem_request();
}

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
txmq_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	txmq_shmem_startup();
	txmq_attempts_startup();
	txmq_worker_shmem_startup();
}

static void
define_gucs(void)
{
	DefineCustomIntVariable("txmq.max_payload_bytes",
							"Largest payload (jsonb bytes) send accepts.",
							NULL, &txmq_max_payload_bytes,
							1024 * 1024, 16, 256 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("txmq.max_batch",
							"Most messages one send_batch or receive handles.",
							NULL, &txmq_max_batch,
							10000, 1, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("txmq.poll_interval",
							"How often a waiting receive re-checks when no "
							"commit-time wakeup is available.",
							"Used without shared_preload_libraries, and as "
							"the upper bound of one sleep otherwise.",
							&txmq_poll_interval_ms,
							100, 1, 60000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("txmq.check_timeout",
							"Statement timeout of one check function call.",
							NULL, &txmq_check_timeout_ms,
							5000, 1, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("txmq.worker_naptime",
							"Longest sleep of a txmq worker between rounds.",
							NULL, &txmq_worker_naptime_ms,
							1000, 10, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("txmq.half_retention",
							"How long resolved half messages are kept so that "
							"late commit_half / rollback_half calls get a "
							"consistent answer.",
							NULL, &txmq_half_retention_s,
							86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("txmq.vacuum_threshold",
							"Dead tuples in txmq.msg that make the worker "
							"vacuum it (0: leave it to autovacuum).",
							NULL, &txmq_vacuum_threshold,
							10000, 0, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("txmq.max_workers",
							"Most databases served by a txmq worker.",
							NULL, &txmq_max_workers,
							8, 1, 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("txmq.max_subscriptions",
							"Subscriptions (over all databases) that get "
							"commit-time wakeups and counters.",
							NULL, &txmq_max_subscriptions,
							1024, 16, 1000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("txmq.max_tracked_messages",
							"Messages that can be claimed by receivers, be "
							"in a delivery attempt or have aborted attempts "
							"at one time.",
							NULL, &txmq_max_tracked_messages,
							65536, 128, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
}

void
_PG_init(void)
{
	define_gucs();
	MarkGUCPrefixReserved("txmq");
	txmq_xact_init();
	txmq_plans_init();
	txmq_scope_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	txmq_preloaded = true;

	/*
	 * The launcher and every worker take a background worker slot, from
	 * the max_worker_processes that the logical replication launcher,
	 * parallel query and other extensions share.  With the defaults (8
	 * and 8) fewer databases get a worker than txmq.max_workers promises:
	 * say so once at start, the launcher warns again when a start fails.
	 */
	if (max_worker_processes < txmq_max_workers + 2)
		ereport(LOG,
				(errmsg("txmq: max_worker_processes = %d leaves room for at most %d txmq workers (txmq.max_workers = %d)",
						max_worker_processes,
						Max(max_worker_processes - 2, 0), txmq_max_workers),
				 errdetail("txmq's launcher takes a slot, the logical replication launcher another, and parallel query borrows from the rest."),
				 errhint("Set max_worker_processes to at least txmq.max_workers + 2 plus max_parallel_workers if every database with txmq should get its worker.")));
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = txmq_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = txmq_shmem_startup_hook;
	txmq_register_launcher();
}
