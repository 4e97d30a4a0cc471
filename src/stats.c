/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  The rows of the txmq.stats view: what the tables say (ready, delayed,
 *	  in flight, dead, half messages, the oldest ready message's age) and
 *	  the shared-memory counters and since when they count (shmem.c), for
 *	  the topics and subscriptions the caller may see; then one row for
 *	  each fixed-size shared table, saying how full it is.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(txmq_stats);

/* PLAN_STATS: topic_id, owner, sub_id, then the view's first columns */
#define STATS_HIDDEN_COLS 3
#define STATS_QUERY_COLS 11
#define STATS_COLS 24
/* the last, expired: not in the 0.4 definition */
#define STATS_EXPIRED (STATS_COLS - 1)
/* the rows of the shared tables: the columns before expired */
#define STATS_USAGE_COLS 4
#define STATS_USAGE_FIRST (STATS_EXPIRED - STATS_USAGE_COLS)

/* One row: how full the shared table sized by setting is. */
static void
put_usage_row(ReturnSetInfo *rsinfo, const char *setting,
			  const TxmqUsage *usage)
{
	Datum		values[STATS_COLS] = {0};
	bool		nulls[STATS_COLS];
	int			n = STATS_USAGE_FIRST;

	memset(nulls, true, sizeof(nulls));
	memset(&nulls[n], false, sizeof(bool) * STATS_USAGE_COLS);
	values[n] = CStringGetTextDatum(setting);
	values[n + 1] = Int64GetDatum(usage->capacity);
	values[n + 2] = Int64GetDatum(usage->in_use);
	values[n + 3] = Int64GetDatum(usage->needed);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * The rows of the shared tables, shown to every caller as the server's
 * own statistics views are: counts over all databases that name nothing
 * in them.  None without shared_preload_libraries.
 */
static void
put_usage_rows(ReturnSetInfo *rsinfo)
{
	TxmqUsage	usage;

	if (txmq_slots_usage(&usage))
		put_usage_row(rsinfo, "txmq.max_subscriptions", &usage);
	if (txmq_workers_usage(&usage))
		put_usage_row(rsinfo, "txmq.max_workers", &usage);
	if (txmq_attempts_usage(&usage))
		put_usage_row(rsinfo, "txmq.max_tracked_messages", &usage);
}

/*
 * Rows of the txmq.stats view: the topics and subscriptions the caller
 * may see (owns, or holds a grant on; every one for members of
 * pg_read_all_stats, as PostgreSQL's statistics views show them
 * everything: a monitoring role needs no grant that could send), with the
 * shared-memory counters (NULL without shared_preload_libraries).
 */
Datum
txmq_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		now = TimestampTzGetDatum(GetCurrentTimestamp());
	TxmqOwnerScope scope;
	SPITupleTable *rows;
	bool		sees_all = has_privs_of_role(GetUserId(),
											 ROLE_PG_READ_ALL_STATS);
	int			nrows;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	txmq_scope_enter(&scope, false);
	nrows = txmq_exec(PLAN_STATS, &now, NULL, 0);
	rows = SPI_tuptable;		/* txmq_has_privilege() runs queries too */
	for (int i = 0; i < nrows; i++)
	{
		Datum		cols[STATS_QUERY_COLS];
		bool		colnulls[STATS_QUERY_COLS];
		Datum		values[STATS_COLS];
		bool		nulls[STATS_COLS] = {0};
		TxmqTopic	topic;
		int32		sub_id;
		int64		tc[NUM_TXMQ_COUNTERS] = {0};
		int64		sc[NUM_TXMQ_COUNTERS] = {0};
		TimestampTz topic_since;
		TimestampTz sub_since = 0;
		bool		topic_known;
		bool		sub_known;

		heap_deform_tuple(rows->vals[i], rows->tupdesc, cols, colnulls);
		topic.topic_id = DatumGetInt32(cols[0]);
		topic.owner = DatumGetObjectId(cols[1]);
		sub_id = DatumGetInt32(cols[2]);
		if (!sees_all &&
			!txmq_has_privilege(&topic, sub_id, TXMQ_RECEIVE) &&
			!txmq_has_privilege(&topic, 0, TXMQ_SEND))
			continue;

		/* topic .. oldest_ready_age come straight from the query */
		for (int c = STATS_HIDDEN_COLS; c < STATS_QUERY_COLS; c++)
		{
			values[c - STATS_HIDDEN_COLS] = cols[c];
			nulls[c - STATS_HIDDEN_COLS] = colnulls[c];
		}
		/* NULL where not kept: without shared_preload_libraries */
		topic_known = txmq_read_counters(topic.topic_id, 0, tc, &topic_since);
		sub_known = sub_id == 0 ||
			txmq_read_counters(topic.topic_id, sub_id, sc, &sub_since);
		n = STATS_QUERY_COLS - STATS_HIDDEN_COLS;
		values[n++] = Int64GetDatum(tc[CNT_SENT]);
		values[n++] = Int64GetDatum(sc[CNT_DELIVERED]);
		values[n++] = Int64GetDatum(sc[CNT_ACKED]);
		values[n++] = Int64GetDatum(sc[CNT_NACKED]);
		values[n++] = Int64GetDatum(sc[CNT_DEAD_LETTERED]);
		values[n++] = Int64GetDatum(tc[CNT_CHECKS_COMMIT] +
									tc[CNT_CHECKS_ROLLBACK] +
									tc[CNT_CHECKS_UNKNOWN]);
		values[n++] = Int64GetDatum(tc[CNT_CHECKS_COMMIT]);
		values[n++] = Int64GetDatum(tc[CNT_CHECKS_ROLLBACK]);
		values[n++] = Int64GetDatum(tc[CNT_CHECKS_UNKNOWN]);
		for (int c = STATS_QUERY_COLS - STATS_HIDDEN_COLS; c < n; c++)
			nulls[c] = !sub_known;
		/* sent and checks* are the topic's */
		nulls[STATS_QUERY_COLS - STATS_HIDDEN_COLS] = !topic_known;
		for (int c = n - 4; c < n; c++)
			nulls[c] = !topic_known;
		values[n++] = BoolGetDatum(txmq_worker_running());
		/* the row's counters all count since the later of the two */
		nulls[n] = !topic_known;
		values[n++] = TimestampTzGetDatum(Max(topic_since, sub_since));
		for (; n < STATS_COLS; n++)
			nulls[n] = true;
		values[STATS_EXPIRED] = Int64GetDatum(sc[CNT_EXPIRED]);
		nulls[STATS_EXPIRED] = !sub_known;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 values, nulls);
	}
	txmq_scope_leave(&scope);
	/* not for the 0.3 definition, until ALTER EXTENSION txmq UPDATE */
	if (rsinfo->setDesc->natts > STATS_USAGE_FIRST)
		put_usage_rows(rsinfo);
	return (Datum) 0;
}
