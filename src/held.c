/*-------------------------------------------------------------------------
 *
 * held.c
 *	  The rows of messages a transaction received and still holds.
 *
 * A receive deletes the row it delivers and keeps a copy of it, a received
 * row (TXMQ_ROW_* columns), for as long as its transaction holds the
 * message (xact.c).  What becomes of the message is written from that
 * copy: put back into the queue (a lease at commit, a nack's backoff), or
 * moved to the dead letters.  These functions write; the ledger in xact.c
 * decides when and keeps the account.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* The descriptor of a received row, TXMQ_ROW_* columns. */
TupleDesc
txmq_row_desc(void)
{
	static TupleDesc desc = NULL;

	if (desc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		desc = CreateTemplateTupleDesc(TXMQ_ROW_NATTS);
		TupleDescInitEntry(desc, TXMQ_ROW_MSG_ID, "msg_id", INT8OID, -1, 0);
		TupleDescInitEntry(desc, TXMQ_ROW_PAYLOAD, "payload", JSONBOID, -1, 0);
		TupleDescInitEntry(desc, TXMQ_ROW_HEADERS, "headers", JSONBOID, -1, 0);
		TupleDescInitEntry(desc, TXMQ_ROW_KEY, "key", TEXTOID, -1, 0);
		TupleDescInitEntry(desc, TXMQ_ROW_ATTEMPT, "attempt", INT4OID, -1, 0);
		TupleDescInitEntry(desc, TXMQ_ROW_CREATED_AT, "created_at",
						   TIMESTAMPTZOID, -1, 0);
		TupleDescInitEntry(desc, TXMQ_ROW_LAST_ERROR, "last_error",
						   TEXTOID, -1, 0);
		TupleDescInitEntry(desc, TXMQ_ROW_PRODUCER_GROUP, "producer_group",
						   TEXTOID, -1, 0);
		MemoryContextSwitchTo(old);
	}
	return desc;
}

/*
 * A received row whose last_error says that crashed of its attempts so
 * far were cut short by a crash of the server (attempts.c): a lease
 * written from it, or its dead letter, carries that.  In
 * TopTransactionContext, as received rows are; the old one is freed.
 */
HeapTuple
txmq_row_interrupted(HeapTuple row, int32 crashed, int32 attempts)
{
	int			col = TXMQ_ROW_LAST_ERROR;
	Datum		value;
	bool		isnull = false;
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	HeapTuple	result;

	value = CStringGetTextDatum(psprintf("interrupted by a server crash: %d of %d delivery attempts",
										 crashed, attempts));
	result = heap_modify_tuple_by_cols(row, txmq_row_desc(), 1, &col,
									   &value, &isnull);
	MemoryContextSwitchTo(old);
	heap_freetuple(row);
	return result;
}

/*
 * The received row (TXMQ_ROW_* columns) of the txmq.msg row in slot, in
 * cxt: TopTransactionContext for a receive, whose transaction keeps it
 * while it holds the message (xact.c).  It must outlive the row's delete,
 * which takes TOASTed values with it: those are fetched now.
 */
HeapTuple
txmq_received_row(TupleTableSlot *slot, MemoryContext cxt)
{
	static const int from[TXMQ_ROW_NATTS] = {
		MSG_MSG_ID, MSG_PAYLOAD, MSG_HEADERS, MSG_KEY, MSG_ATTEMPT,
		MSG_CREATED_AT, MSG_LAST_ERROR, MSG_PRODUCER_GROUP
	};
	TupleDesc	desc = txmq_row_desc();
	Datum		values[TXMQ_ROW_NATTS];
	bool		nulls[TXMQ_ROW_NATTS];
	MemoryContext old;
	HeapTuple	row;

	for (int i = 0; i < TXMQ_ROW_NATTS; i++)
	{
		values[i] = slot->tts_values[from[i] - 1];
		nulls[i] = slot->tts_isnull[from[i] - 1];
		if (!nulls[i] && TupleDescAttr(desc, i)->attlen == -1 &&
			VARATT_IS_EXTERNAL(DatumGetPointer(values[i])))
			values[i] = PointerGetDatum(detoast_external_attr((struct varlena *)
															  DatumGetPointer(values[i])));
	}
	old = MemoryContextSwitchTo(cxt);
	row = heap_form_tuple(desc, values, nulls);
	MemoryContextSwitchTo(old);
	return row;
}

/* A held message straight to the dead letters, with attempts and error. */
void
txmq_held_dead_letter(const TxmqHeldRow *held, int32 attempts,
					  const char *error)
{
	Datum		row[TXMQ_ROW_NATTS];
	bool		rownulls[TXMQ_ROW_NATTS];
	Datum		args[9];
	bool		nulls[9] = {0};

	heap_deform_tuple(held->row, txmq_row_desc(), row, rownulls);
	args[0] = Int32GetDatum(held->sub_id);
	args[1] = Int64GetDatum(held->msg_id);
	args[2] = row[TXMQ_ROW_CREATED_AT - 1];
	args[3] = row[TXMQ_ROW_PAYLOAD - 1];
	args[4] = row[TXMQ_ROW_HEADERS - 1];
	nulls[4] = rownulls[TXMQ_ROW_HEADERS - 1];
	args[5] = row[TXMQ_ROW_KEY - 1];
	nulls[5] = rownulls[TXMQ_ROW_KEY - 1];
	args[6] = row[TXMQ_ROW_PRODUCER_GROUP - 1];
	nulls[6] = rownulls[TXMQ_ROW_PRODUCER_GROUP - 1];
	args[7] = Int32GetDatum(attempts);
	args[8] = error ? CStringGetTextDatum(error)
		: row[TXMQ_ROW_LAST_ERROR - 1];
	nulls[8] = error == NULL && rownulls[TXMQ_ROW_LAST_ERROR - 1];
	txmq_exec(PLAN_DEAD_LETTER_ROW, args, nulls, 0);
}

static Datum
array_of(Datum *values, bool *nulls, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs,
											  type, typlen, typbyval,
											  typalign));
}

/*
 * Put held messages back into the queue, in one statement: due at their
 * lease_until, as leases with their receipts (at commit) or not (nack);
 * error, if given, replaces last_error.
 */
void
txmq_held_restore(const TxmqHeldRow *held, int n, bool leased,
				  const char *error)
{
	enum
	{
		SUB, MSG, VT, ATTEMPT, LEASED, CREATED, PAYLOAD, HEADERS, KEY, GROUP,
		ERROR_TEXT, RECEIPT, NCOLS
	};
	static const Oid types[NCOLS] = {
		INT4OID, INT8OID, TIMESTAMPTZOID, INT4OID, BOOLOID, TIMESTAMPTZOID,
		JSONBOID, JSONBOID, TEXTOID, TEXTOID, TEXTOID, UUIDOID
	};
	/* where each column comes from in the row, 0 for the entry's own */
	static const int from_row[NCOLS] = {
		0, 0, 0, 0, 0, TXMQ_ROW_CREATED_AT, TXMQ_ROW_PAYLOAD,
		TXMQ_ROW_HEADERS, TXMQ_ROW_KEY, TXMQ_ROW_PRODUCER_GROUP,
		TXMQ_ROW_LAST_ERROR, 0
	};
	Datum	   *cols[NCOLS];
	bool	   *colnulls[NCOLS];
	Datum		args[NCOLS];
	TxmqOwnerScope scope;

	for (int c = 0; c < NCOLS; c++)
	{
		cols[c] = palloc(sizeof(Datum) * n);
		colnulls[c] = palloc0(sizeof(bool) * n);
	}
	for (int i = 0; i < n; i++)
	{
		Datum		row[TXMQ_ROW_NATTS];
		bool		rownulls[TXMQ_ROW_NATTS];

		heap_deform_tuple(held[i].row, txmq_row_desc(), row, rownulls);
		for (int c = CREATED; c <= ERROR_TEXT; c++)
		{
			cols[c][i] = row[from_row[c] - 1];
			colnulls[c][i] = rownulls[from_row[c] - 1];
		}
		cols[SUB][i] = Int32GetDatum(held[i].sub_id);
		cols[MSG][i] = Int64GetDatum(held[i].msg_id);
		cols[VT][i] = TimestampTzGetDatum(held[i].lease_until);
		cols[ATTEMPT][i] = Int32GetDatum(held[i].attempt);
		cols[LEASED][i] = BoolGetDatum(leased);
		if (error)
		{
			cols[ERROR_TEXT][i] = CStringGetTextDatum(error);
			colnulls[ERROR_TEXT][i] = false;
		}
		/* a receipt names a lease: a nacked row has none */
		cols[RECEIPT][i] = UUIDPGetDatum(&held[i].receipt);
		colnulls[RECEIPT][i] = !leased;
	}
	for (int c = 0; c < NCOLS; c++)
		args[c] = array_of(cols[c], colnulls[c], n, types[c]);
	txmq_scope_enter(&scope, true);
	txmq_exec(txmq_msg_has_receipts() ? PLAN_RESTORE : PLAN_RESTORE_0_3,
			  args, NULL, 0);
	txmq_scope_leave(&scope);
}
