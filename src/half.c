/*-------------------------------------------------------------------------
 *
 * half.c
 *	  Half messages: send_half, commit_half, rollback_half, pending_checks,
 *	  half_messages, and the check-back of one message, which the worker
 *	  runs (worker.c) and txmq._check_half() exposes for tests.
 *
 * A half message is one row of txmq.half, written in the producer's
 * transaction and invisible to every subscription.  It leaves state 'half'
 * exactly once, through a conditional UPDATE ... WHERE state = 'half':
 * commit_half, rollback_half and a check-back's decision all go that way.
 * When two of them race, the second UPDATE waits for the first one's row
 * lock; if the first commits, the second finds the row resolved and
 * updates nothing.  So the first to commit wins, and the loser then reads
 * the final state: the same outcome is a no-op, the other one is an error
 * for commit_half / rollback_half and nothing for a check-back.
 * Committing inserts the message into every subscription of the topic in
 * the same transaction, under the id send_half returned.
 *
 * A check-back never holds the row lock while it asks.  It reads the row,
 * decides (from local_xid's fate, by calling the topic's check function as
 * the topic's owner, or by asking the producer group with NOTIFY), and only
 * then records the answer with the conditional UPDATE.
 *
 * Resolved rows are kept for txmq.half_retention, so that late or repeated
 * answers get a consistent reply, and then deleted by the worker.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/xact.h"
#include "commands/async.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timeout.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(txmq_send_half);
PG_FUNCTION_INFO_V1(txmq_commit_half);
PG_FUNCTION_INFO_V1(txmq_rollback_half);
PG_FUNCTION_INFO_V1(txmq_pending_checks);
PG_FUNCTION_INFO_V1(txmq_half_messages);
PG_FUNCTION_INFO_V1(txmq_check_half_now);

typedef enum HalfState
{
	HALF_PENDING,
	HALF_COMMITTED,
	HALF_ROLLED_BACK,
	HALF_DEAD_LETTER,
	HALF_GONE					/* no such row (any more) */
} HalfState;

/* txmq.half.state, by HalfState */
static const char *const state_names[] = {
	"half", "committed", "rolled_back", "dead_letter"
};

/* Columns of HALF_RET (plans.c) */
enum
{
	RET_STATE,
	RET_TOPIC_ID,
	RET_OWNER,
	RET_NOTIFY,
	RET_TOPIC,
	RET_PAYLOAD,
	RET_HEADERS,
	RET_KEY,
	RET_GROUP,
	RET_CREATED_AT,
	RET_CHECK_COUNT,
	NUM_RET_COLS
};

/* Listings start with the topic's id and owner (PLAN_HALF_LIST ...) */
#define LIST_HIDDEN_COLS 2
#define LIST_MAX_COLS 11

/* What a check-back needs to know about one message, read before asking. */
typedef struct HalfCheck
{
	int64		msg_id;
	bool		has_xid;
	FullTransactionId local_xid;
	char	   *function;		/* the topic's check function, or NULL */
	Oid			function_oid;	/* InvalidOid if it no longer exists */
	Oid			owner;
	char	   *group;			/* producer group, or NULL */
	Datum		message;		/* txmq.message */
} HalfCheck;

static HalfState
parse_state(Datum state)
{
	char	   *s = TextDatumGetCString(state);

	for (int i = 0; i < lengthof(state_names); i++)
		if (strcmp(s, state_names[i]) == 0)
			return (HalfState) i;
	elog(ERROR, "txmq: unexpected half message state \"%s\"", s);
	return HALF_GONE;			/* keep the compiler quiet */
}

static int64
arg_msg_id(FunctionCallInfo fcinfo)
{
	txmq_require_arg(fcinfo, 0, "msg_id", NULL);
	return PG_GETARG_INT64(0);
}

static void
no_such_half(int64 msg_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("txmq: half message " INT64_FORMAT " does not exist",
					msg_id),
			 errhint("It was not sent with txmq.send_half(), its topic was "
					 "dropped, or it was resolved longer than "
					 "txmq.half_retention ago.")));
}

/*
 * pg_xact_status() of xid: "committed", "aborted", "in progress", or NULL
 * when the transaction is too old to tell.  Errors for a future xid.
 */
static const char *
xact_status(FullTransactionId xid)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		status;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = FullTransactionIdGetDatum(xid);
	fcinfo->args[0].isnull = false;
	status = pg_xact_status(fcinfo);
	return fcinfo->isnull ? NULL : TextDatumGetCString(status);
}

/* ---- resolving ---- */

/* Dead letters of every subscription, for a message out of checks. */
static void
dead_letter_half(int64 msg_id, int32 topic_id, int32 checks)
{
	Datum		args[2];
	int			n;

	args[0] = Int64GetDatum(msg_id);
	args[1] = CStringGetTextDatum(psprintf("half message unresolved after %d checks",
										   checks));
	n = txmq_exec(PLAN_HALF_DEAD_LETTER, args, NULL, 0);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		txmq_xact_tally(topic_id, DatumGetInt32(txmq_col(i, 1, &isnull)),
						CNT_DEAD_LETTERED, 1);
	}
}

/*
 * A conditional update just changed the message's row (HALF_RET, row 0 of
 * SPI_tuptable): deliver it if it is now committed, dead-letter it if its
 * checks ran out.  Returns the new state.
 */
static HalfState
apply_resolution(int64 msg_id)
{
	Datum		cols[NUM_RET_COLS];
	bool		nulls[NUM_RET_COLS];
	HalfState	state;
	int32		topic_id;

	heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
					  cols, nulls);
	state = parse_state(cols[RET_STATE]);
	topic_id = DatumGetInt32(cols[RET_TOPIC_ID]);
	if (state == HALF_COMMITTED)
	{
		TxmqTopic	topic;
		bool		argnulls[3] = {nulls[RET_HEADERS], nulls[RET_KEY],
		nulls[RET_GROUP]};

		topic.topic_id = topic_id;
		topic.owner = DatumGetObjectId(cols[RET_OWNER]);
		topic.notify = DatumGetBool(cols[RET_NOTIFY]);
		text_to_cstring_buffer(DatumGetTextPP(cols[RET_TOPIC]), topic.name,
							   sizeof(topic.name));
		/*
		 * Receivable at once: vt = created_at, as for an undelayed send,
		 * keeps the row out of msg_due_idx (see PLAN_NOTIFY_DUE).
		 */
		txmq_deliver(&topic, &msg_id, &cols[RET_PAYLOAD], 1,
					 cols[RET_HEADERS], cols[RET_KEY], cols[RET_GROUP],
					 argnulls, DatumGetTimestampTz(cols[RET_CREATED_AT]),
					 DatumGetTimestampTz(cols[RET_CREATED_AT]));
	}
	else if (state == HALF_DEAD_LETTER)
		dead_letter_half(msg_id, topic_id,
						 DatumGetInt32(cols[RET_CHECK_COUNT]));
	else if (state == HALF_ROLLED_BACK)
		txmq_dedup_release(msg_id);	/* as if never sent: may be sent again */
	return state;
}

/* The state of a message, HALF_GONE if there is none; in the owner scope. */
static HalfState
current_state(int64 msg_id)
{
	Datum		arg = Int64GetDatum(msg_id);
	bool		isnull;

	if (txmq_exec(PLAN_HALF_BY_ID, &arg, NULL, 1) == 0)
		return HALF_GONE;
	return parse_state(txmq_col(0, 1, &isnull));
}

/*
 * Resolve a message the producer's way, unless something resolved it
 * first; returns the state it ends in.  Within txmq_scope_enter.
 */
static HalfState
resolve(int64 msg_id, HalfState to)
{
	Datum		args[3];

	args[0] = Int64GetDatum(msg_id);
	args[1] = CStringGetTextDatum(state_names[to]);
	args[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	if (txmq_exec(PLAN_HALF_RESOLVE, args, NULL, 1) == 1)
		return apply_resolution(msg_id);
	return current_state(msg_id);
}

static void
already_resolved(int64 msg_id, HalfState state, HalfState wanted)
{
	static const char *const hints[] = {
		[HALF_COMMITTED] = "It was committed, by commit_half or by "
		"check-back, and delivered to the topic's subscriptions.",
		[HALF_ROLLED_BACK] = "It was rolled back, by rollback_half or by "
		"check-back; send a new message instead.",
		[HALF_DEAD_LETTER] = "Its checks ran out and it went to the dead "
		"letters of the topic's subscriptions; see txmq.dead_letters() "
		"and txmq.redrive().",
	};

	static const char *const resolved[] = {
		[HALF_COMMITTED] = "committed",
		[HALF_ROLLED_BACK] = "rolled back",
		[HALF_DEAD_LETTER] = "dead-lettered",
	};

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("txmq: cannot %s half message " INT64_FORMAT ": it is already %s",
					wanted == HALF_COMMITTED ? "commit" : "roll back",
					msg_id, resolved[state]),
			 errhint("%s", hints[state])));
}

/* commit_half / rollback_half */
static void
producer_resolves(FunctionCallInfo fcinfo, HalfState wanted)
{
	int64		msg_id = arg_msg_id(fcinfo);
	Datum		arg = Int64GetDatum(msg_id);
	TxmqOwnerScope scope;
	TxmqTopic	topic;
	HalfState	state;
	bool		isnull;

	txmq_scope_enter(&scope, true);
	if (txmq_exec(PLAN_HALF_BY_ID, &arg, NULL, 1) == 0)
		no_such_half(msg_id);
	txmq_lookup_topic(TextDatumGetCString(txmq_col(0, 2, &isnull)),
					  TXMQ_SEND, &topic);
	state = resolve(msg_id, wanted);
	if (state == HALF_GONE)
		no_such_half(msg_id);
	if (state != wanted)
		already_resolved(msg_id, state, wanted);
	txmq_scope_leave(&scope);
}

Datum
txmq_commit_half(PG_FUNCTION_ARGS)
{
	producer_resolves(fcinfo, HALF_COMMITTED);
	PG_RETURN_VOID();
}

Datum
txmq_rollback_half(PG_FUNCTION_ARGS)
{
	producer_resolves(fcinfo, HALF_ROLLED_BACK);
	PG_RETURN_VOID();
}

/* ---- sending ---- */

/* local_xid must name a transaction whose fate can be looked up. */
static void
check_local_xid(FullTransactionId xid)
{
	if (xact_status(xid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: local_xid " UINT64_FORMAT " is too old to be checked",
						U64FromFullTransactionId(xid)),
				 errhint("Pass pg_current_xact_id() of the producer's running "
						 "local transaction.")));
}

/*
 * send_half(topic, payload, headers, key, producer_group, local_xid,
 * dedup_key): store a half message, first checked check_after from now;
 * with a dedup key held by a message within its topic's dedup_window,
 * store nothing and return that message's id (send.c).
 */
Datum
txmq_send_half(PG_FUNCTION_ARGS)
{
	char	   *name = txmq_arg_name(fcinfo, 0, "topic");
	Datum		args[8];
	bool		nulls[8] = {0};
	TxmqOwnerScope scope;
	TxmqTopic	topic;
	bool		has_dedup_key = PG_NARGS() > 6 && !PG_ARGISNULL(6);
	int64		holder;

	txmq_check_payload(txmq_arg_payload(fcinfo, 1), "payload", false);
	txmq_check_headers_key(fcinfo, 2);
	if (has_dedup_key)
		txmq_check_dedup_key(PG_GETARG_DATUM(6));
	/* arguments 2 .. 5 are $4 .. $7 */
	for (int i = 2; i <= 5; i++)
		nulls[i + 1] = PG_ARGISNULL(i);
	/* the group becomes part of a NOTIFY channel: a name, like topics */
	if (!nulls[5])
		args[5] = CStringGetTextDatum(txmq_arg_name(fcinfo, 4,
													"producer group"));
	if (!nulls[6])
		check_local_xid(PG_GETARG_FULLTRANSACTIONID(5));

	txmq_scope_enter(&scope, true);
	txmq_lookup_topic(name, TXMQ_SEND, &topic);
	args[0] = Int64GetDatum(txmq_next_msg_ids(1)[0]);
	args[1] = Int32GetDatum(topic.topic_id);
	args[2] = PG_GETARG_DATUM(1);
	args[3] = nulls[3] ? (Datum) 0 : PG_GETARG_DATUM(2);
	args[4] = nulls[4] ? (Datum) 0 : PG_GETARG_DATUM(3);
	args[6] = nulls[6] ? (Datum) 0 : PG_GETARG_DATUM(5);
	args[7] = TimestampTzGetDatum(GetCurrentTimestamp());
	holder = has_dedup_key ?
		txmq_dedup_claim(&topic, PG_GETARG_DATUM(6), DatumGetInt64(args[0]),
						 true, DatumGetTimestampTz(args[7])) :
		DatumGetInt64(args[0]);
	if (holder != DatumGetInt64(args[0]))
	{
		txmq_scope_leave(&scope);
		PG_RETURN_INT64(holder);
	}
	if (txmq_exec(PLAN_HALF_INSERT, args, nulls, 0) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: topic \"%s\" has no check function, so a half message needs a producer_group or a local_xid",
						name),
				 errhint("Without them nobody could be asked whether to commit it.")));
	txmq_scope_leave(&scope);
	PG_RETURN_DATUM(args[0]);
}

/* ---- listings ---- */

/* Return the rows of SPI_tuptable on topics the caller may send to. */
static void
return_sendable_rows(FunctionCallInfo fcinfo, int nrows)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SPITupleTable *rows = SPI_tuptable; /* privilege checks run queries */

	for (int i = 0; i < nrows; i++)
	{
		Datum		cols[LIST_MAX_COLS];
		bool		nulls[LIST_MAX_COLS];
		TxmqTopic	topic;

		heap_deform_tuple(rows->vals[i], rows->tupdesc, cols, nulls);
		topic.topic_id = DatumGetInt32(cols[0]);
		topic.owner = DatumGetObjectId(cols[1]);
		if (txmq_has_privilege(&topic, 0, TXMQ_SEND))
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
								 cols + LIST_HIDDEN_COLS,
								 nulls + LIST_HIDDEN_COLS);
	}
}

/* pending_checks(producer_group): what the group is asked about. */
Datum
txmq_pending_checks(PG_FUNCTION_ARGS)
{
	Datum		args[2];
	TxmqOwnerScope scope;
	int			n;

	args[0] = CStringGetTextDatum(txmq_arg_name(fcinfo, 0, "producer group"));
	args[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	InitMaterializedSRF(fcinfo, 0);
	txmq_scope_enter(&scope, false);
	n = txmq_exec(PLAN_PENDING_CHECKS, args, NULL, 0);
	return_sendable_rows(fcinfo, n);
	txmq_scope_leave(&scope);
	return (Datum) 0;
}

/* half_messages(topic = null): unresolved half messages. */
Datum
txmq_half_messages(PG_FUNCTION_ARGS)
{
	Datum		arg = (Datum) 0;
	bool		isnull = PG_ARGISNULL(0);
	TxmqOwnerScope scope;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	txmq_scope_enter(&scope, false);
	if (!isnull)
	{
		TxmqTopic	topic;

		txmq_lookup_topic(txmq_arg_name(fcinfo, 0, "topic"), TXMQ_SEND,
						  &topic);
		arg = Int32GetDatum(topic.topic_id);
	}
	n = txmq_exec(PLAN_HALF_LIST, &arg, &isnull, 0);
	return_sendable_rows(fcinfo, n);
	txmq_scope_leave(&scope);
	return (Datum) 0;
}

/* ---- check-back ---- */

static char *
spi_text(Datum d, bool isnull)
{
	char	   *s;
	char	   *copy;

	if (isnull)
		return NULL;
	s = TextDatumGetCString(d);
	copy = SPI_palloc(strlen(s) + 1);
	strcpy(copy, s);
	return copy;
}

/*
 * Read what checking msg_id needs, if it is an unresolved half message due
 * by due_before; within txmq_scope_enter, the result outlives txmq_scope_leave.
 */
static bool
read_check(int64 msg_id, TimestampTz due_before, HalfCheck *c)
{
	Datum		args[2];
	Datum		cols[6];
	bool		nulls[6];

	args[0] = Int64GetDatum(msg_id);
	args[1] = TimestampTzGetDatum(due_before);
	if (txmq_exec(PLAN_HALF_FOR_CHECK, args, NULL, 1) == 0)
		return false;
	heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
					  cols, nulls);
	c->msg_id = msg_id;
	c->has_xid = !nulls[0];
	if (c->has_xid)
		c->local_xid = DatumGetFullTransactionId(cols[0]);
	c->function = spi_text(cols[1], nulls[1]);
	c->function_oid = nulls[2] ? InvalidOid : DatumGetObjectId(cols[2]);
	c->owner = DatumGetObjectId(cols[3]);
	c->group = spi_text(cols[4], nulls[4]);
	c->message = SPI_datumTransfer(cols[5], false, -1);
	return true;
}

/*
 * Call the topic's check function as the topic's owner, in a
 * security-restricted operation; GUCs it sets are undone afterwards.
 * Returns its answer.  Errors go to ask().
 */
static char *
call_check_function(const HalfCheck *c)
{
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;
	FmgrInfo	flinfo;
	Datum		result;

	LOCAL_FCINFO(fcinfo, 1);

	if (!OidIsValid(c->function_oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("check function %s does not exist any more",
						c->function)));
	/* the owner may have become a superuser, or lost the right to run it */
	if (superuser_arg(c->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the topic's owner %s is a superuser, and txmq never runs check functions as one",
						GetUserNameFromId(c->owner, false))));
	if (!txmq_may_execute(c->function_oid, c->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the topic's owner %s may not execute check function %s",
						GetUserNameFromId(c->owner, false), c->function)));

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(c->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	fmgr_info(c->function_oid, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = c->message;
	fcinfo->args[0].isnull = false;
	result = FunctionCallInvoke(fcinfo);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
	if (fcinfo->isnull)
		return "unknown";
	return DatumGetCString(DirectFunctionCall1(enum_out, result));
}

/* pg_xact_status() of local_xid, as an answer */
static const char *
local_xid_answer(FullTransactionId xid)
{
	const char *status = xact_status(xid);

	if (status == NULL)
		return "unknown";		/* too old to tell */
	if (strcmp(status, "committed") == 0)
		return "commit";
	if (strcmp(status, "aborted") == 0)
		return "rollback";
	return "unknown";			/* in progress */
}

/*
 * Ask whether to commit: local_xid's fate, or the check function's answer
 * under a statement timeout of txmq.check_timeout (unless the caller's own
 * statement timeout already runs, as in txmq._check_half()).  Runs in a
 * subtransaction; an error, the timeout included, is logged with the
 * message id and counts as "unknown".
 */
static const char *
ask(const HalfCheck *c)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		own_timeout = !c->has_xid &&
		!get_timeout_active(STATEMENT_TIMEOUT);
	const char *answer;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (own_timeout)
			enable_timeout_after(STATEMENT_TIMEOUT, txmq_check_timeout_ms);
		answer = c->has_xid ? local_xid_answer(c->local_xid) :
			call_check_function(c);
		if (own_timeout)
			disable_timeout(STATEMENT_TIMEOUT, false);
		/* a cancel that arrived just now still counts */
		CHECK_FOR_INTERRUPTS();
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		if (own_timeout)
			disable_timeout(STATEMENT_TIMEOUT, false);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("txmq: check-back of half message " INT64_FORMAT " failed and counts as unknown: %s",
						c->msg_id, edata->message),
				 c->function ?
				 errdetail("The check function is %s.", c->function) :
				 errdetail("The message has a local_xid.")));
		FreeErrorData(edata);
		answer = "unknown";
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return answer;
}

static TxmqCounter
answer_counter(const char *answer)
{
	if (strcmp(answer, "commit") == 0)
		return CNT_CHECKS_COMMIT;
	if (strcmp(answer, "rollback") == 0)
		return CNT_CHECKS_ROLLBACK;
	return CNT_CHECKS_UNKNOWN;
}

/*
 * Check one half message that is due by due_before, in the caller's
 * transaction: ask, record the answer, and resolve the message if the
 * answer (or running out of checks) decides it.  Returns the message's
 * state afterwards, HALF_GONE if it was no unresolved half message due by
 * then.
 */
static HalfState
check_half(int64 msg_id, TimestampTz due_before)
{
	TxmqOwnerScope scope;
	HalfCheck	c;
	const char *answer = "unknown";
	bool		ask_group;
	Datum		args[3];
	HalfState	state;

	txmq_scope_enter(&scope, false);
	if (!read_check(msg_id, due_before, &c))
	{
		txmq_scope_leave(&scope);
		return HALF_GONE;
	}
	txmq_scope_leave(&scope);

	/* nobody to ask but the producers: they answer with commit_half */
	ask_group = !c.has_xid && c.function == NULL;
	if (!ask_group)
		answer = ask(&c);

	txmq_scope_enter(&scope, true);
	args[0] = Int64GetDatum(msg_id);
	args[1] = CStringGetTextDatum(answer);
	args[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	if (txmq_exec(PLAN_HALF_CHECKED, args, NULL, 1) == 0)
		state = current_state(msg_id);	/* resolved while we asked */
	else
	{
		bool		isnull;

		txmq_xact_tally(DatumGetInt32(txmq_col(0, RET_TOPIC_ID + 1, &isnull)),
						0, answer_counter(answer), 1);
		state = apply_resolution(msg_id);
		if (ask_group && state == HALF_PENDING)
		{
			char		channel[NAMEDATALEN];

			snprintf(channel, sizeof(channel), "txmq_check_%s", c.group);
			Async_Notify(channel, psprintf(INT64_FORMAT, msg_id));
		}
	}
	txmq_scope_leave(&scope);
	return state;
}

/* The worker: check msg_id if it is due by now. */
void
txmq_check_half(int64 msg_id, TimestampTz now)
{
	check_half(msg_id, now);
}

/*
 * txmq._check_half(msg_id): check a message now, due or not, as the worker
 * would, in the caller's transaction; returns its state afterwards (NULL if
 * it is no unresolved half message).  For tests and operators; not granted
 * to PUBLIC.
 */
Datum
txmq_check_half_now(PG_FUNCTION_ARGS)
{
	HalfState	state = check_half(arg_msg_id(fcinfo), DT_NOEND);

	if (state == HALF_GONE)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(state_names[state]));
}

/*
 * The worker: up to max half messages due by now, oldest due first, into
 * ids; *next_due is when the next one after those falls due (DT_NOEND if
 * none).  Within a transaction.
 */
int
txmq_half_due(TimestampTz now, int max, int64 *ids, TimestampTz *next_due)
{
	TxmqOwnerScope scope;
	Datum		args[2];
	bool		isnull;
	int			n;

	args[0] = TimestampTzGetDatum(now);
	args[1] = Int32GetDatum(max);
	txmq_scope_enter(&scope, false);
	n = txmq_exec(PLAN_HALF_DUE, args, NULL, 0);
	for (int i = 0; i < n; i++)
		ids[i] = DatumGetInt64(txmq_col(i, 1, &isnull));
	txmq_exec(PLAN_HALF_NEXT_DUE, args, NULL, 0);
	*next_due = DatumGetTimestampTz(txmq_col(0, 1, &isnull));
	if (isnull)
		*next_due = DT_NOEND;
	txmq_scope_leave(&scope);
	return n;
}

/* The worker: forget half messages resolved before "before". */
void
txmq_half_reclaim(TimestampTz before)
{
	TxmqOwnerScope scope;
	Datum		arg = TimestampTzGetDatum(before);

	txmq_scope_enter(&scope, true);
	txmq_exec(PLAN_HALF_RECLAIM, &arg, NULL, 0);
	txmq_scope_leave(&scope);
}
