/*-------------------------------------------------------------------------
 *
 * send.c
 *	  send() and send_batch(): messages that commit with the caller.
 *
 * A send inserts one row per subscription of the topic in the caller's
 * transaction, so it becomes visible exactly when (and if) the caller
 * commits.  Receivers waiting on the topic's subscriptions are woken at
 * commit (xact.c), and NOTIFY txmq_<topic> is queued if the topic wants it:
 * at commit for messages receivable then, or by the worker when delayed
 * ones fall due (xact.c).
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(txmq_send);
PG_FUNCTION_INFO_V1(txmq_send_batch);

/* Draw n message ids, allocated to outlive txmq_scope_leave(). */
int64 *
txmq_next_msg_ids(int n)
{
	Oid			seq = txmq_relid("msg_id_seq");
	int64	   *ids = SPI_palloc(sizeof(int64) * n);

	for (int i = 0; i < n; i++)
		ids[i] = nextval_internal(seq, false);
	return ids;
}

/*
 * Insert one row per subscription for each message and owe the
 * subscriptions a wakeup; returns the number of rows.  Used by send,
 * send_batch and commit_half, within txmq_scope_enter.
 */
int
txmq_deliver(const TxmqTopic *topic, int64 *ids, Datum *payloads, int n,
			 Datum headers, Datum key, Datum producer_group,
			 const bool *argnulls, TimestampTz created_at, TimestampTz vt)
{
	int32	   *subs;
	int			nsubs = txmq_topic_subscriptions(topic, &subs);
	Datum		args[8];
	bool		nulls[8] = {0};

	args[2] = TimestampTzGetDatum(vt);
	args[3] = TimestampTzGetDatum(created_at);
	args[4] = headers;
	args[5] = key;
	args[6] = producer_group;
	nulls[4] = argnulls[0];
	nulls[5] = argnulls[1];
	nulls[6] = argnulls[2];
	if (nsubs == 1 && n == 1)
	{
		args[0] = Int32GetDatum(subs[0]);
		args[1] = Int64GetDatum(ids[0]);
		args[7] = payloads[0];
		txmq_exec(PLAN_SEND_ONE, args, nulls, 0);
	}
	else if (nsubs > 0)
	{
		Datum	   *sub_datums = palloc(sizeof(Datum) * nsubs);
		Datum	   *id_datums = palloc(sizeof(Datum) * n);

		for (int i = 0; i < nsubs; i++)
			sub_datums[i] = Int32GetDatum(subs[i]);
		for (int i = 0; i < n; i++)
			id_datums[i] = Int64GetDatum(ids[i]);
		args[0] = PointerGetDatum(construct_array(sub_datums, nsubs, INT4OID,
												  4, true, TYPALIGN_INT));
		args[1] = PointerGetDatum(construct_array(id_datums, n, INT8OID, 8,
												  FLOAT8PASSBYVAL,
												  TYPALIGN_DOUBLE));
		args[7] = PointerGetDatum(construct_array(payloads, n, JSONBOID, -1,
												  false, TYPALIGN_INT));
		txmq_exec(PLAN_SEND, args, nulls, 0);
	}

	/* a delayed message needs only one waiter to note its due time */
	for (int i = 0; i < nsubs; i++)
		txmq_xact_wake(topic->topic_id, subs[i], vt > created_at ? 1 : n,
					   ids[0]);
	txmq_xact_tally(topic->topic_id, 0, CNT_SENT, n);
	/* a listener told before the delay has passed would find nothing */
	if (vt <= GetCurrentTimestamp())
		txmq_notify_topic(topic);
	else if (topic->notify && nsubs > 0)
		txmq_xact_due(topic->topic_id, vt);
	return n * nsubs;
}

/*
 * Check the optional arguments shared by send and send_batch and by
 * send_half: headers (argno), key (argno + 1).
 */
void
txmq_check_headers_key(FunctionCallInfo fcinfo, int argno)
{
	if (!PG_ARGISNULL(argno))
		txmq_check_payload(PG_GETARG_JSONB_P(argno), "headers", true);
	if (!PG_ARGISNULL(argno + 1) &&
		VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(argno + 1)) > MAX_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("txmq: key is longer than %d bytes", MAX_KEY_BYTES)));
}

/*
 * send and send_batch: (topic, payload(s), headers, key, delay).
 * Returns the new message ids.
 */
static int64 *
send_payloads(FunctionCallInfo fcinfo, Datum *payloads, int n)
{
	char	   *name = txmq_arg_name(fcinfo, 0, "topic");
	int64		delay_ms = txmq_arg_ms(fcinfo, 4, "delay", 0, MAX_DELAY_MS, 0);
	TimestampTz now = GetCurrentTimestamp();
	bool		argnulls[3] = {PG_ARGISNULL(2), PG_ARGISNULL(3), true};
	TxmqOwnerScope scope;
	TxmqTopic	topic;
	int64	   *ids;

	txmq_check_headers_key(fcinfo, 2);
	for (int i = 0; i < n; i++)
		txmq_check_payload(DatumGetJsonbP(payloads[i]), "payload", false);

	txmq_scope_enter(&scope, true);
	txmq_lookup_topic(name, TXMQ_SEND, &topic);
	ids = txmq_next_msg_ids(n);
	txmq_deliver(&topic, ids, payloads, n,
				 argnulls[0] ? (Datum) 0 : PG_GETARG_DATUM(2),
				 argnulls[1] ? (Datum) 0 : PG_GETARG_DATUM(3),
				 (Datum) 0, argnulls, now, now + delay_ms * 1000);
	txmq_scope_leave(&scope);
	return ids;
}

Datum
txmq_send(PG_FUNCTION_ARGS)
{
	Datum		payload;

	payload = PointerGetDatum(txmq_arg_payload(fcinfo, 1));
	PG_RETURN_INT64(send_payloads(fcinfo, &payload, 1)[0]);
}

Datum
txmq_send_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr;
	Datum	   *payloads;
	bool	   *nulls;
	int			n;
	int64	   *ids;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	txmq_require_arg(fcinfo, 1, "payloads", NULL);
	arr = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("txmq: payloads must be a one-dimensional array")));
	deconstruct_array(arr, JSONBOID, -1, false, TYPALIGN_INT,
					  &payloads, &nulls, &n);
	if (n > txmq_max_batch)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("txmq: a batch of %d messages is too large", n),
				 errhint("The limit is txmq.max_batch = %d.", txmq_max_batch)));
	for (int i = 0; i < n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("txmq: payload %d of the batch is null", i + 1)));
	if (n == 0)
		return (Datum) 0;

	ids = send_payloads(fcinfo, payloads, n);
	for (int i = 0; i < n; i++)
	{
		Datum		v = Int64GetDatum(ids[i]);
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
	}
	return (Datum) 0;
}
