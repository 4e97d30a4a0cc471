/*-------------------------------------------------------------------------
 *
 * reclaim.c
 *	  Storage reclaim of the queue table, run by the database's worker.
 *
 * Every ack deletes a row of txmq.msg, so a busy queue produces dead
 * tuples at the rate it consumes, all of them at the head of the
 * (sub_id, msg_id) index where every receive starts its scan.
 * Autovacuum visits a database at most once per autovacuum_naptime
 * (a minute by default); by then a fast queue has left hundreds of
 * thousands of dead index entries for each receive to step over.  So the
 * worker vacuums txmq.msg itself as soon as txmq.vacuum_threshold dead
 * tuples (plus a fifth of the live ones) have accumulated.  The VACUUM skips the table rather than wait
 * when autovacuum (or anyone) is already vacuuming it.
 *
 * Expiry.  A subscription with a retention expires every message it has
 * not settled within that time of its sending (txmq_expire).
 *
 * Rows of dropped subscriptions are reaped here too: a transaction that
 * looked up a topic's subscriptions before one was dropped can insert rows
 * for it after the drop committed (taking a lock against every send to
 * close that window would cost every send).  Such a transaction can also
 * have given the subscription a shared-memory slot again, after its drop
 * freed it: the reaper frees that too.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/vacuum.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "pgstat.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/*
 * Vacuum txmq.msg if it has enough dead tuples.  Called outside any
 * transaction; VACUUM manages its own.
 */
void
txmq_reclaim_storage(void)
{
	Oid			relid;
	int64		dead = 0;
	int64		live = 0;

	StartTransactionCommand();
	relid = get_relname_relid("msg", get_namespace_oid("txmq", true));
	if (OidIsValid(relid))
	{
		dead = DatumGetInt64(DirectFunctionCall1(pg_stat_get_dead_tuples,
												 ObjectIdGetDatum(relid)));
		live = DatumGetInt64(DirectFunctionCall1(pg_stat_get_live_tuples,
												 ObjectIdGetDatum(relid)));
	}

	/*
	 * Like autovacuum, in proportion to the table: a long backlog being
	 * drained is not vacuumed over and over, a short busy queue is.
	 */
	if (txmq_vacuum_threshold > 0 &&
		dead >= txmq_vacuum_threshold + live / 5)
	{
		VacuumStmt *stmt = makeNode(VacuumStmt);
		ParseState *pstate = make_parsestate(NULL);

		stmt->is_vacuumcmd = true;
		stmt->options = list_make1(makeDefElem("skip_locked", NULL, -1));
		stmt->rels = list_make1(makeVacuumRelation(makeRangeVar("txmq", "msg", -1),
													 relid, NIL));
		pgstat_report_activity(STATE_RUNNING, "txmq: vacuuming txmq.msg");
		ExecVacuum(pstate, stmt, true);
	}
	CommitTransactionCommand();
}

/* Messages expired per subscription and round (the round's transaction) */
#define EXPIRE_BATCH 1000

/*
 * Expire up to EXPIRE_BATCH messages of sub_id sent before now minus
 * retention, to the dead letters if dead_letter, else nowhere; returns
 * how many.
 * The walk goes in id order, the order of sending, and stops at the first
 * message sent since cutoff, so a round reads what it expires and one
 * row more (ids and clock readings of sends microseconds apart may
 * disagree: such a row expires a round later).  What is in flight is
 * skipped, never waited for: a lease still running (its consumer may yet
 * settle it), a row a receive deleted but has not committed, or one being
 * changed; each expires in a later round if it comes back.
 */
static int
expire_sub(int32 topic_id, int32 sub_id, Datum retention, TimestampTz now,
		   bool dead_letter)
{
	TimestampTz cutoff = now - 1000 *
		txmq_interval_ms(DatumGetIntervalP(retention), "retention", 0,
						 MAX_RETENTION_MS);
	Relation	heap = table_open(txmq_relid("msg"), RowExclusiveLock);
	Relation	pkey = index_open(txmq_primary_key_index(heap),
								  RowExclusiveLock);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	TxmqHeldRow *rows = NULL;
	CommandId	cid;
	Snapshot	snapshot;
	IndexScanDesc scan;
	int			n = 0;

	CommandCounterIncrement();
	cid = GetCurrentCommandId(true);
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	scan = txmq_begin_sub_scan(heap, pkey, snapshot, sub_id, 0);
	while (n < EXPIRE_BATCH &&
		   index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		Datum	   *values;
		TM_FailureData tmfd;
		HeapTuple	row;

		slot_getallattrs(slot);
		values = slot->tts_values;
		if (DatumGetTimestampTz(values[MSG_CREATED_AT - 1]) >= cutoff)
			break;
		if (DatumGetBool(values[MSG_LEASED - 1]) &&
			DatumGetTimestampTz(values[MSG_VT - 1]) > now)
			continue;
		row = dead_letter ? txmq_received_row(slot, CurrentMemoryContext) : NULL;
		if (table_tuple_delete(heap, &slot->tts_tid, cid, snapshot,
							   InvalidSnapshot, false, &tmfd, false) != TM_Ok)
			continue;
		if (rows == NULL)
			rows = palloc(sizeof(TxmqHeldRow) * EXPIRE_BATCH);
		rows[n].sub_id = sub_id;
		rows[n].msg_id = DatumGetInt64(values[MSG_MSG_ID - 1]);
		rows[n].attempt = DatumGetInt32(values[MSG_ATTEMPT - 1]);
		rows[n].row = row;
		n++;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(pkey, NoLock);
	table_close(heap, NoLock);

	if (n == 0)
		return 0;
	if (dead_letter)
	{
		char	   *error = psprintf("expired: not settled within the subscription's retention of %s",
									 DatumGetCString(DirectFunctionCall1(interval_out,
																		 retention)));

		for (int i = 0; i < n; i++)
			txmq_held_dead_letter(&rows[i], rows[i].attempt, error);
		txmq_xact_tally(topic_id, sub_id, CNT_DEAD_LETTERED, n);
	}
	txmq_xact_tally(topic_id, sub_id, CNT_EXPIRED, n);
	pfree(rows);
	return n;
}

/*
 * Expire what the subscriptions with a retention did not settle within
 * it.  Returns whether some subscription has more to expire at once.
 * Within a transaction; nothing before a database is updated to 0.5.
 */
bool
txmq_expire(TimestampTz now)
{
	TxmqOwnerScope scope;
	SPITupleTable *subs;
	bool		more = false;
	int			nsubs;

	if (get_attnum(txmq_relid("subscription"), "retention") == InvalidAttrNumber)
		return false;
	txmq_scope_enter(&scope, true);
	nsubs = txmq_exec(PLAN_EXPIRING_SUBS, NULL, NULL, 0);
	subs = SPI_tuptable;		/* the dead letters' statements run too */
	for (int i = 0; i < nsubs; i++)
	{
		Datum		cols[4];
		bool		nulls[4];

		heap_deform_tuple(subs->vals[i], subs->tupdesc, cols, nulls);
		if (expire_sub(DatumGetInt32(cols[1]), DatumGetInt32(cols[0]),
					   cols[2], now, DatumGetBool(cols[3])) == EXPIRE_BATCH)
			more = true;
	}
	txmq_scope_leave(&scope);
	return more;
}

#define DROPPED_MEMORY_US USECS_PER_DAY

/*
 * Delete the rows of sub_id from txmq.name, whose primary key leads with
 * sub_id.  Walking that key costs one index probe when there are none,
 * the usual case; a DELETE statement would be planned from statistics in
 * which the few live subscriptions own every row, as a scan of the whole
 * table, every round.
 */
static void
delete_sub_rows(const char *name, int32 sub_id)
{
	Relation	heap = table_open(txmq_relid(name), RowExclusiveLock);
	Relation	pkey = index_open(txmq_primary_key_index(heap),
								  RowExclusiveLock);
	Snapshot	snapshot;
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	IndexScanDesc scan;

	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	scan = txmq_begin_sub_scan(heap, pkey, snapshot, sub_id, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		TM_FailureData tmfd;

		/* a row someone else deleted or updated meanwhile is gone anyway */
		(void) table_tuple_delete(heap, &slot->tts_tid,
								  GetCurrentCommandId(true), snapshot,
								  InvalidSnapshot, true, &tmfd, false);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(pkey, NoLock);
	table_close(heap, NoLock);
}

/*
 * Delete rows inserted for dropped subscriptions, and forget drops older
 * than a day (no sender transaction runs that long).  Within a transaction.
 */
void
txmq_reap_dropped(TimestampTz now)
{
	TxmqOwnerScope scope;
	Datum		arg = TimestampTzGetDatum(now - DROPPED_MEMORY_US);
	int			n;

	txmq_scope_enter(&scope, true);
	n = txmq_exec(PLAN_REAP_DROPPED, &arg, NULL, 0);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		int32		sub_id = DatumGetInt32(txmq_col(i, 1, &isnull));

		delete_sub_rows("msg", sub_id);
		delete_sub_rows("dead_letter", sub_id);
		txmq_free_sub_slot(sub_id);
	}
	txmq_scope_leave(&scope);
}
