/*-------------------------------------------------------------------------
 *
 * msg.c
 *	  txmq.msg as the C code reads it: its column layout, checked against
 *	  the catalog, and the walk over one subscription's rows in id order
 *	  along the primary key (receive.c, reclaim.c).
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/stratnum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/* ... and their names, as the extension's script creates them */
static const char *const msg_columns[MSG_NATTS] = {
	"sub_id", "msg_id", "vt", "attempt", "leased", "created_at", "payload",
	"headers", "key", "producer_group", "last_error", "receipt"
};

/*
 * receive reads txmq.msg's columns by number: they must be the ones
 * MSG_* names, or every receive would deliver garbage.  Before 0.4 the
 * table ends before receipt, which receive does not read.
 */
void
txmq_msg_check_layout(Relation heap)
{
	TupleDesc	desc = RelationGetDescr(heap);

	if (desc->natts != MSG_NATTS && desc->natts != MSG_NATTS - 1)
		elog(ERROR, "txmq: table txmq.msg does not have %d columns",
			 MSG_NATTS);
	for (int i = 0; i < desc->natts; i++)
		if (strcmp(NameStr(TupleDescAttr(desc, i)->attname),
				   msg_columns[i]) != 0)
			elog(ERROR, "txmq: column %d of table txmq.msg is not \"%s\"",
				 i + 1, msg_columns[i]);
}

/*
 * Whether txmq.msg keeps the receipts of leases: not until the database
 * is updated to 0.4.
 */
bool
txmq_msg_has_receipts(void)
{
	return get_attnum(txmq_relid("msg"), "receipt") != InvalidAttrNumber;
}

/*
 * Begin a walk, in id order, over the rows of sub_id in txmq table heap
 * (txmq.msg or txmq.dead_letter) along its primary key pkey.
 */
IndexScanDesc
txmq_begin_sub_scan(Relation heap, Relation pkey, Snapshot snapshot,
					int32 sub_id, int64 from_id)
{
	ScanKeyData keys[2];
	IndexScanDesc scan;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(sub_id));
	ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE,
				Int64GetDatum(from_id));
	scan = txmq_index_beginscan(heap, pkey, snapshot, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	return scan;
}
