/*-------------------------------------------------------------------------
 *
 * peek.c
 *	  peek: the messages a receive of a subscription would deliver next,
 *	  in the order it would take them, shown without taking them.
 *
 * It walks the subscription the way receive does (receive.c's
 * txmq_look_ready): due rows, in id order, not held back by an earlier
 * message of their key in an ordered subscription, not being taken by
 * another consumer right now, and not out of deliveries (a receive would
 * dead-letter those).  Nothing is claimed, leased or written, so what it
 * shows may be gone by the time a consumer receives.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/htup_details.h"
#include "funcapi.h"

PG_FUNCTION_INFO_V1(txmq_peek);

/*
 * The columns of peek's rows: the first ones of a received row
 * (TXMQ_ROW_*), with attempt the number its next delivery would have.
 */
#define PEEK_NATTS TXMQ_ROW_LAST_ERROR

Datum
txmq_peek(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			max = txmq_arg_max_messages(fcinfo, 2);
	TxmqOwnerScope scope;
	TxmqSub		sub;
	HeapTuple  *rows;
	int			n;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	Assert(rsinfo->setDesc->natts == PEEK_NATTS);
	txmq_scope_enter_sub(fcinfo, TXMQ_RECEIVE, false, &scope, &sub);
	rows = palloc(sizeof(HeapTuple) * max);
	n = txmq_look_ready(&sub, max, rows);
	for (int i = 0; i < n; i++)
	{
		Datum		values[TXMQ_ROW_NATTS];
		bool		nulls[TXMQ_ROW_NATTS];
		int64		msg_id;

		heap_deform_tuple(rows[i], txmq_row_desc(), values, nulls);
		msg_id = DatumGetInt64(values[TXMQ_ROW_MSG_ID - 1]);
		values[TXMQ_ROW_ATTEMPT - 1] =
			Int32GetDatum(txmq_next_attempt(&sub, msg_id,
											DatumGetInt32(values[TXMQ_ROW_ATTEMPT - 1])));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 values, nulls);
	}
	txmq_scope_leave(&scope);
	return (Datum) 0;
}
