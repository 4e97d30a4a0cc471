/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  The rows of the txmq.stats view: what the tables say (ready, delayed,
 *	  in flight, dead, half messages, the oldest ready message's age) and
 *	  the shared-memory counters since the server started (shmem.c), for
 *	  the topics and subscriptions the caller may see, and how full the
 *	  server's attempt table is (attempts.c).
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/htup_details.h"
#include "funcapi.h"

PG_FUNCTION_INFO_V1(txmq_stats);

/* PLAN_STATS: topic_id, owner, sub_id, then the view's first columns */
#define STATS_HIDDEN_COLS 3
#define STATS_QUERY_COLS 11
#define STATS_COLS 20

/*
 * Rows of the txmq.stats view: the topics and subscriptions the caller
 * may see (owns, or holds a grant on), with the shared-memory counters
 * (NULL without shared_preload_libraries).
 */
Datum
txmq_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		now = TimestampTzGetDatum(GetCurrentTimestamp());
	TxmqOwnerScope scope;
	SPITupleTable *rows;
	int			nrows;
	int			n;
	int64		tracked;
	int64		skips;
	bool		tracking = txmq_attempts_usage(&tracked, &skips);

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
		bool		topic_known;
		bool		sub_known;

		heap_deform_tuple(rows->vals[i], rows->tupdesc, cols, colnulls);
		topic.topic_id = DatumGetInt32(cols[0]);
		topic.owner = DatumGetObjectId(cols[1]);
		sub_id = DatumGetInt32(cols[2]);
		if (!txmq_has_privilege(&topic, sub_id, TXMQ_RECEIVE) &&
			!txmq_has_privilege(&topic, 0, TXMQ_SEND))
			continue;

		/* topic .. oldest_ready_age come straight from the query */
		for (int c = STATS_HIDDEN_COLS; c < STATS_QUERY_COLS; c++)
		{
			values[c - STATS_HIDDEN_COLS] = cols[c];
			nulls[c - STATS_HIDDEN_COLS] = colnulls[c];
		}
		/* NULL where unknown: not preloaded, or no slot (see shmem.c) */
		topic_known = txmq_read_counters(topic.topic_id, 0, tc);
		sub_known = sub_id == 0 ||
			txmq_read_counters(topic.topic_id, sub_id, sc);
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
		/* server-wide, the same in every row */
		nulls[n] = nulls[n + 1] = !tracking;
		values[n++] = Int64GetDatum(tracked);
		values[n++] = Int64GetDatum(skips);
		Assert(n == STATS_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 values, nulls);
	}
	txmq_scope_leave(&scope);
	return (Datum) 0;
}
