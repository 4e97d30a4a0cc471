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
 * Idempotent send.  A topic with a dedup_window remembers each dedup key
 * sent to it, with the message that took it, in txmq.dedup until the
 * window has passed, and a send with a key it holds enqueues nothing and
 * returns that message's id.  The key is a row under a unique index, so
 * it is taken in the sender's transaction: a second sender waits for the
 * first's commit or abort, as any insert would, and goes through if the
 * first aborts; a crash loses nothing that committed.  A half message
 * takes its key when it is sent and gives it back if it is rolled back
 * (half.c).  The worker deletes keys whose window has passed, along an
 * index on their expiry (worker.c), so the table holds about a window's
 * worth of keys.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "funcapi.h"
#include "miscadmin.h"
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

/* A dedup key must fit the index, as keys must (MAX_KEY_BYTES). */
void
txmq_check_dedup_key(Datum key)
{
	if (VARSIZE_ANY_EXHDR(DatumGetTextPP(key)) > MAX_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("txmq: dedup_key is longer than %d bytes",
						MAX_KEY_BYTES)));
}

/*
 * Take dedup key key of topic for msg_id (of a half message, if half),
 * sent at now; within txmq_scope_enter.  Returns msg_id, or the id of the
 * message that holds the key within its window (see the file header).
 */
int64
txmq_dedup_claim(const TxmqTopic *topic, Datum key, int64 msg_id, bool half,
				 TimestampTz now)
{
	int64		window_ms = txmq_topic_dedup_ms(topic);
	Datum		args[6];
	bool		isnull;

	if (window_ms == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: topic \"%s\" has no dedup_window, so it cannot take a dedup_key",
						topic->name),
				 errhint("Its owner can set one with txmq.alter_topic(topic, dedup_window => ...).")));
	args[0] = Int32GetDatum(topic->topic_id);
	args[1] = key;
	args[2] = Int64GetDatum(msg_id);
	args[3] = TimestampTzGetDatum(now + window_ms * 1000);
	args[4] = BoolGetDatum(half);
	args[5] = TimestampTzGetDatum(now);
	if (txmq_exec(PLAN_DEDUP_CLAIM, args, NULL, 0) == 1)
		return msg_id;
	/* the holder has committed (or is this transaction) and locked */
	if (txmq_exec(PLAN_DEDUP_HOLDER, args, NULL, 1) != 1)
		elog(ERROR, "txmq: dedup key of topic %d vanished", topic->topic_id);
	return DatumGetInt64(txmq_col(0, 1, &isnull));
}

/* A half message was rolled back: its dedup key, if any, is free again. */
void
txmq_dedup_release(int64 msg_id)
{
	Datum		arg = Int64GetDatum(msg_id);

	if (txmq_relation_exists("dedup"))
		txmq_exec(PLAN_DEDUP_RELEASE, &arg, NULL, 0);
}

/* The worker: delete the dedup keys whose window passed by now. */
#define DEDUP_RECLAIM_BATCH 10000

void
txmq_dedup_reclaim(TimestampTz now)
{
	TxmqOwnerScope scope;
	Datum		args[2];

	if (!txmq_relation_exists("dedup"))
		return;
	args[0] = TimestampTzGetDatum(now);
	args[1] = Int32GetDatum(DEDUP_RECLAIM_BATCH);
	txmq_scope_enter(&scope, true);
	while (txmq_exec(PLAN_DEDUP_EXPIRED, args, NULL, 0) == DEDUP_RECLAIM_BATCH)
		CHECK_FOR_INTERRUPTS();
	txmq_scope_leave(&scope);
}

/*
 * Take the dedup keys of the n messages ids (keys[i], none where
 * keynulls[i]).  A message whose key is held keeps its place in ids with
 * the holder's id; the others are new, and go to new_ids and, in order,
 * to the front of payloads.  Returns how many are new.
 */
static int
claim_keys(const TxmqTopic *topic, int64 *ids, Datum *payloads, int n,
		   const Datum *keys, const bool *keynulls, TimestampTz now,
		   int64 *new_ids)
{
	int			nnew = 0;

	for (int i = 0; i < n; i++)
	{
		int64		holder = keynulls[i] ? ids[i] :
			txmq_dedup_claim(topic, keys[i], ids[i], false, now);

		if (holder != ids[i])
		{
			ids[i] = holder;
			continue;
		}
		new_ids[nnew] = ids[i];
		payloads[nnew++] = payloads[i];
	}
	return nnew;
}

/*
 * send and send_batch: (topic, payload(s), headers, key, delay), and the
 * dedup keys of the payloads (NULL: none).  Returns the message ids.
 */
static int64 *
send_payloads(FunctionCallInfo fcinfo, Datum *payloads, int n,
			  const Datum *keys, const bool *keynulls)
{
	char	   *name = txmq_arg_name(fcinfo, 0, "topic");
	int64		delay_ms = txmq_arg_ms(fcinfo, 4, "delay", 0, MAX_DELAY_MS, 0);
	TimestampTz now = GetCurrentTimestamp();
	bool		argnulls[3] = {PG_ARGISNULL(2), PG_ARGISNULL(3), true};
	TxmqOwnerScope scope;
	TxmqTopic	topic;
	int64	   *ids;
	int64	   *new_ids;
	int			nnew = n;

	txmq_check_headers_key(fcinfo, 2);
	for (int i = 0; i < n; i++)
	{
		txmq_check_payload(DatumGetJsonbP(payloads[i]), "payload", false);
		if (keys && !keynulls[i])
			txmq_check_dedup_key(keys[i]);
	}

	txmq_scope_enter(&scope, true);
	txmq_lookup_topic(name, TXMQ_SEND, &topic);
	ids = txmq_next_msg_ids(n);
	new_ids = ids;
	if (keys)
	{
		new_ids = palloc(sizeof(int64) * n);
		nnew = claim_keys(&topic, ids, payloads, n, keys, keynulls, now,
						  new_ids);
	}
	if (nnew > 0)
		txmq_deliver(&topic, new_ids, payloads, nnew,
					 argnulls[0] ? (Datum) 0 : PG_GETARG_DATUM(2),
					 argnulls[1] ? (Datum) 0 : PG_GETARG_DATUM(3),
					 (Datum) 0, argnulls, now, now + delay_ms * 1000);
	txmq_scope_leave(&scope);
	return ids;
}

/* send(topic, payload, headers, key, delay, dedup_key) */
Datum
txmq_send(PG_FUNCTION_ARGS)
{
	Datum		payload;
	bool		has_key = PG_NARGS() > 5 && !PG_ARGISNULL(5);
	Datum		key = has_key ? PG_GETARG_DATUM(5) : (Datum) 0;
	bool		keynull = false;

	payload = PointerGetDatum(txmq_arg_payload(fcinfo, 1));
	PG_RETURN_INT64(send_payloads(fcinfo, &payload, 1,
								  has_key ? &key : NULL, &keynull)[0]);
}

/*
 * send_batch's dedup_keys, argument argno: NULL, or one key (or null, for
 * none) for each of n payloads, in their order; *keys, *keynulls.
 */
static void
arg_dedup_keys(FunctionCallInfo fcinfo, int argno, int n, Datum **keys,
			   bool **keynulls)
{
	ArrayType  *arr;
	int			nkeys;

	*keys = NULL;
	*keynulls = NULL;
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, keys, keynulls,
					  &nkeys);
	if (ARR_NDIM(arr) > 1 || nkeys != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: dedup_keys must be a one-dimensional array with one key for each payload"),
				 errhint("Give the key of each payload in the order of payloads, null for a payload without one, or no dedup_keys.")));
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
	Datum	   *keys;
	bool	   *keynulls;

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
	arg_dedup_keys(fcinfo, 5, n, &keys, &keynulls);
	if (n == 0)
		return (Datum) 0;

	ids = send_payloads(fcinfo, payloads, n, keys, keynulls);
	for (int i = 0; i < n; i++)
	{
		Datum		v = Int64GetDatum(ids[i]);
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
	}
	return (Datum) 0;
}
