/*-------------------------------------------------------------------------
 *
 * event.c
 *	  txmq.event: the payload of a message that several subscriptions
 *	  share, stored once (docs/storage.md, step 2).
 *
 * A send to a topic with more than one subscription writes the payload,
 * headers and producer group into one txmq.event row, and for each
 * subscription a txmq.msg row without them (payload NULL) that names the
 * event by its topic and msg_id.  A topic with one subscription keeps
 * them in the subscription's row, as before 0.6: a second row would only
 * cost it.  A receive that takes a row without a payload reads the event
 * with the same snapshot (txmq_event_fetch).
 *
 * The worker deletes an event once no subscription has a row of it
 * (txmq_reclaim_events).  That is decided from one snapshot, and is safe
 * because a row of an event is only ever written by the send that writes
 * the event, or by a transaction that deletes the subscription's previous
 * row of it (a lease written at commit, a nack's backoff: the received row
 * remembers that it is shared, held.c).  So at any snapshot a subscription
 * that has not settled the message has exactly one visible row of it, and
 * once none is visible none can come back; a redrive copies the dead
 * letter's own payload into its row.  Conversely a receive whose snapshot
 * sees a row sees its event: the worker deleted none that a row visible
 * to an older snapshot still named.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* txmq.event's columns, in table order */
static const char *const event_columns[EVENT_NATTS] = {
	"topic_id", "msg_id", "payload", "headers", "producer_group"
};

static void
check_layout(Relation heap)
{
	TupleDesc	desc = RelationGetDescr(heap);

	if (desc->natts != EVENT_NATTS)
		elog(ERROR, "txmq: table txmq.event does not have %d columns",
			 EVENT_NATTS);
	for (int i = 0; i < EVENT_NATTS; i++)
		if (strcmp(NameStr(TupleDescAttr(desc, i)->attname),
				   event_columns[i]) != 0)
			elog(ERROR, "txmq: column %d of table txmq.event is not \"%s\"",
				 i + 1, event_columns[i]);
}

/* Whether the database has txmq.event: not until it is updated to 0.6. */
bool
txmq_events_exist(void)
{
	return txmq_relation_exists("event");
}

/* A reader of events with snapshot; opens the table at its first fetch. */
void
txmq_event_reader_init(TxmqEventReader *reader, Snapshot snapshot)
{
	reader->heap = NULL;
	reader->snapshot = snapshot;
}

/*
 * The event of message msg_id of topic_id, in the reader's slot (valid
 * until the next fetch).  A row without a payload always has its event
 * (see the file header): one missing is corruption.
 */
TupleTableSlot *
txmq_event_fetch(TxmqEventReader *reader, int32 topic_id, int64 msg_id)
{
	ScanKeyData keys[2];

	if (reader->heap == NULL)
	{
		reader->heap = table_open(txmq_relid("event"), AccessShareLock);
		check_layout(reader->heap);
		reader->pkey = index_open(txmq_primary_key_index(reader->heap),
								  AccessShareLock);
		reader->slot = table_slot_create(reader->heap, NULL);
		reader->scan = txmq_index_beginscan(reader->heap, reader->pkey,
											reader->snapshot, 2, 0);
	}
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(topic_id));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(msg_id));
	index_rescan(reader->scan, keys, 2, NULL, 0);
	if (!index_getnext_slot(reader->scan, ForwardScanDirection, reader->slot))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("txmq: the payload of message " INT64_FORMAT " of topic %d is missing",
						msg_id, topic_id)));
	slot_getallattrs(reader->slot);
	return reader->slot;
}

void
txmq_event_reader_end(TxmqEventReader *reader)
{
	if (reader->heap == NULL)
		return;
	index_endscan(reader->scan);
	ExecDropSingleTupleTableSlot(reader->slot);
	index_close(reader->pkey, NoLock);
	table_close(reader->heap, NoLock);
	reader->heap = NULL;
}

/*
 * The worker's walk over the events: where the next one starts, and how
 * many events one round looks at.  It goes round the table in key order,
 * a batch per round, and starts again at the beginning when it reaches
 * the end; an event whose sender committed after the walk passed its key
 * is found the next time round.
 */
#define EVENT_RECLAIM_BATCH 10000

static int32 walk_topic = 0;
static int64 walk_msg_id = 0;

/*
 * Begin a walk over the events of topic_id from from_id on or, if
 * later_topics, over those of every later topic.
 */
static IndexScanDesc
begin_walk(Relation heap, Relation pkey, Snapshot snapshot, int32 topic_id,
		   int64 from_id, bool later_topics)
{
	ScanKeyData keys[2];
	IndexScanDesc scan;
	int			nkeys = later_topics ? 1 : 2;

	if (later_topics)
		ScanKeyInit(&keys[0], 1, BTGreaterStrategyNumber, F_INT4GT,
					Int32GetDatum(topic_id));
	else
		ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ,
					Int32GetDatum(topic_id));
	ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE,
				Int64GetDatum(from_id));
	scan = txmq_index_beginscan(heap, pkey, snapshot, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	return scan;
}

/* The subscriptions of topic_id, in *sub_ids; within txmq_scope_enter. */
static int
topic_subs(int32 topic_id, int32 **sub_ids)
{
	Datum		arg = Int32GetDatum(topic_id);
	int			n = txmq_exec(PLAN_TOPIC_SUBS, &arg, NULL, 0);

	*sub_ids = palloc(sizeof(int32) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		(*sub_ids)[i] = DatumGetInt32(txmq_col(i, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	return n;
}

/* Whether one of the n subscriptions sub_ids has a row of msg_id. */
static bool
has_rows(IndexScanDesc probe, TupleTableSlot *slot, const int32 *sub_ids,
		 int n, int64 msg_id)
{
	for (int i = 0; i < n; i++)
	{
		ScanKeyData keys[2];

		ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ,
					Int32GetDatum(sub_ids[i]));
		ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT8EQ,
					Int64GetDatum(msg_id));
		index_rescan(probe, keys, 2, NULL, 0);
		if (index_getnext_slot(probe, ForwardScanDirection, slot))
			return true;
	}
	return false;
}

/*
 * Delete the events that no subscription has a row of any more, looking
 * at up to EVENT_RECLAIM_BATCH of them from where the last round stopped.
 * Returns whether it should go on at once (a full batch, some deleted).
 * Within a transaction; nothing before a database is updated to 0.6.
 */
bool
txmq_reclaim_events(void)
{
	TxmqOwnerScope scope;
	Relation	heap;
	Relation	pkey;
	Relation	msg;
	Relation	msg_pkey;
	TupleTableSlot *slot;
	TupleTableSlot *msg_slot;
	IndexScanDesc scan;
	IndexScanDesc probe;
	Snapshot	snapshot;
	CommandId	cid;
	int32		topic_id = -1;
	int32	   *sub_ids = NULL;
	int			nsubs = 0;
	int			visited = 0;
	int			deleted = 0;
	bool		later_topics = false;

	if (!txmq_events_exist())
		return false;
	txmq_scope_enter(&scope, true);
	heap = table_open(txmq_relid("event"), RowExclusiveLock);
	check_layout(heap);
	pkey = index_open(txmq_primary_key_index(heap), RowExclusiveLock);
	msg = table_open(txmq_relid("msg"), AccessShareLock);
	msg_pkey = index_open(txmq_primary_key_index(msg), AccessShareLock);
	slot = table_slot_create(heap, NULL);
	msg_slot = table_slot_create(msg, NULL);
	CommandCounterIncrement();
	cid = GetCurrentCommandId(true);
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	probe = txmq_index_beginscan(msg, msg_pkey, snapshot, 2, 0);
	scan = begin_walk(heap, pkey, snapshot, walk_topic, walk_msg_id, false);
	for (;;)
	{
		int64		msg_id;
		bool		isnull;
		TM_FailureData tmfd;

		if (visited == EVENT_RECLAIM_BATCH)
			break;
		if (!index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			index_endscan(scan);
			scan = NULL;
			if (later_topics)
			{
				/* the end: the next round starts again from the beginning */
				walk_topic = 0;
				walk_msg_id = 0;
				break;
			}
			later_topics = true;
			scan = begin_walk(heap, pkey, snapshot, walk_topic, 0, true);
			continue;
		}
		CHECK_FOR_INTERRUPTS();
		visited++;
		msg_id = DatumGetInt64(slot_getattr(slot, EVENT_MSG_ID, &isnull));
		if (DatumGetInt32(slot_getattr(slot, EVENT_TOPIC_ID, &isnull)) != topic_id)
		{
			topic_id = DatumGetInt32(slot_getattr(slot, EVENT_TOPIC_ID, &isnull));
			if (sub_ids)
				pfree(sub_ids);
			nsubs = topic_subs(topic_id, &sub_ids);
		}
		walk_topic = topic_id;
		walk_msg_id = msg_id + 1;
		if (has_rows(probe, msg_slot, sub_ids, nsubs, msg_id))
			continue;
		/* nobody else deletes events: a failure would be a concurrent walk */
		if (table_tuple_delete(heap, &slot->tts_tid, cid, snapshot,
							   InvalidSnapshot, false, &tmfd,
							   false) == TM_Ok)
			deleted++;
	}
	if (scan)
		index_endscan(scan);
	index_endscan(probe);
	ExecDropSingleTupleTableSlot(msg_slot);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(msg_pkey, NoLock);
	table_close(msg, NoLock);
	index_close(pkey, NoLock);
	table_close(heap, NoLock);
	txmq_scope_leave(&scope);
	return visited == EVENT_RECLAIM_BATCH && deleted > 0;
}
