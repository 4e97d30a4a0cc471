/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Topics, subscriptions, names, privileges and argument checks; the
 *	  administration functions.
 *
 * Privileges.  A topic belongs to the role that created it.  Its owner
 * (and members of the owner role, and superusers) may do everything with
 * it; other roles need a grant from the owner: 'send' on the topic, or
 * 'receive' on one subscription (receive, ack, nack, reject, extend_lease,
 * dead_letters, redrive).  Creating topics needs EXECUTE on create_topic,
 * which PUBLIC does not have.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(txmq_create_topic);
PG_FUNCTION_INFO_V1(txmq_create_subscription);
PG_FUNCTION_INFO_V1(txmq_drop_topic);
PG_FUNCTION_INFO_V1(txmq_drop_subscription);
PG_FUNCTION_INFO_V1(txmq_purge);
PG_FUNCTION_INFO_V1(txmq_grant);
PG_FUNCTION_INFO_V1(txmq_revoke);
PG_FUNCTION_INFO_V1(txmq_alter_topic);
PG_FUNCTION_INFO_V1(txmq_alter_subscription);
PG_FUNCTION_INFO_V1(txmq_grants);


static const char *const privilege_names[] = {"send", "receive", "admin"};

/* ---- argument checks ---- */

/*
 * Argument argno must not be null; hint, if not NULL, says what to pass
 * instead.
 */
void
txmq_require_arg(FunctionCallInfo fcinfo, int argno, const char *what,
				 const char *hint)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("txmq: %s must not be null", what),
				 hint ? errhint("%s", hint) : 0));
}

/* Argument argno as a validated topic or subscription name. */
char *
txmq_arg_name(FunctionCallInfo fcinfo, int argno, const char *what)
{
	char	   *name;
	size_t		len;

	txmq_require_arg(fcinfo, argno, what, NULL);
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	len = strlen(name);
	if (len < 1 || len > TXMQ_NAME_MAXLEN ||
		strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789_-.") != len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("txmq: invalid %s name \"%s\"", what,
						len > 60 ? "(too long)" : name),
				 errhint("Names are 1 to %d characters: letters, digits, "
						 "\"_\", \"-\" and \".\".", TXMQ_NAME_MAXLEN)));
	return name;
}

/* An interval in milliseconds, which must lie within [min_ms, max_ms]. */
int64
txmq_interval_ms(const Interval *iv, const char *what, int64 min_ms,
				 int64 max_ms)
{
	int64		ms;

	/* months count as 30 days, as interval comparison does */
	if (iv->month > 120 || iv->month < -120 ||
		iv->day > 36500 || iv->day < -36500)
		ms = iv->month < 0 || iv->day < 0 ? -1 : PG_INT64_MAX / 2;
	else
		ms = iv->time / 1000 +
			((int64) iv->month * DAYS_PER_MONTH + iv->day) * MS_PER_DAY;
	if (ms < min_ms || ms > max_ms)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: %s is out of range", what),
				 errdetail("It must be between " INT64_FORMAT " ms and "
						   INT64_FORMAT " ms.", min_ms, max_ms)));
	return ms;
}

/*
 * Argument argno, an interval, in milliseconds within [min_ms, max_ms];
 * if_null if the SQL value is NULL.
 */
int64
txmq_arg_ms(FunctionCallInfo fcinfo, int argno, const char *what,
			int64 min_ms, int64 max_ms, int64 if_null)
{
	if (PG_ARGISNULL(argno))
		return if_null;
	return txmq_interval_ms(PG_GETARG_INTERVAL_P(argno), what, min_ms,
							max_ms);
}

/*
 * Argument argno as an interval within bounds, for the catalog, which keeps
 * intervals; NULL if the SQL value is.
 */
Interval *
txmq_arg_interval(FunctionCallInfo fcinfo, int argno, const char *what,
				  int64 min_ms, int64 max_ms)
{
	Interval   *iv;

	if (PG_ARGISNULL(argno))
		return NULL;
	iv = PG_GETARG_INTERVAL_P(argno);
	txmq_interval_ms(iv, what, min_ms, max_ms);
	return iv;
}

static int32
arg_int_in(FunctionCallInfo fcinfo, int argno, const char *what,
		   int32 min, int32 max)
{
	int32		v;

	txmq_require_arg(fcinfo, argno, what, NULL);
	v = PG_GETARG_INT32(argno);
	if (v < min || v > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: %s must be between %d and %d", what, min, max)));
	return v;
}

/* Argument argno as a payload (send, send_half): not null. */
Jsonb *
txmq_arg_payload(FunctionCallInfo fcinfo, int argno)
{
	txmq_require_arg(fcinfo, argno, "payload",
					 "Send '{}' or 'null'::jsonb for an empty message.");
	return PG_GETARG_JSONB_P(argno);
}

void
txmq_check_payload(Jsonb *payload, const char *what, bool must_be_object)
{
	if (VARSIZE(payload) > (Size) txmq_max_payload_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("txmq: %s is too large (%zu bytes)", what,
						(Size) VARSIZE(payload)),
				 errhint("The limit is txmq.max_payload_bytes = %d.",
						 txmq_max_payload_bytes)));
	if (must_be_object && !JB_ROOT_IS_OBJECT(payload))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: %s must be a JSON object", what)));
}

/* ---- lookups and privileges ---- */

/*
 * Lookups are cached per backend, since every send, receive and ack needs
 * one and topics change rarely.  Every change made by the administration
 * functions registers a relcache invalidation of txmq.topic, which
 * PostgreSQL applies to this backend at once and to the others when (and
 * only if) the change commits; DROP EXTENSION and TRUNCATE send one too.
 * So a cached lookup is exactly as current as a catalog lookup would be.
 * Role membership is not cached: has_privs_of_role() has its own cache.
 */
typedef struct LookupKey
{
	char		topic[TXMQ_NAME_MAXLEN + 1];
	char		sub[TXMQ_NAME_MAXLEN + 1];	/* "" for a topic lookup */
} LookupKey;

typedef struct LookupEntry
{
	LookupKey	key;
	TxmqSub		sub;			/* sub_id 0 for a topic lookup */
	int			ngrantees;		/* -1: not loaded */
	Oid		   *grantees;
	int			nsubs;			/* a topic's subscriptions; -1: not loaded */
	int32	   *sub_ids;
	int64		dedup_ms;		/* a topic's dedup_window; -1: not loaded */
} LookupEntry;

static MemoryContext lookup_cxt = NULL;
static HTAB *lookup_cache = NULL;
static bool lookup_cache_stale = false;
static Oid	topic_relid = InvalidOid;

static void
lookup_cache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == topic_relid)
		lookup_cache_stale = true;
}

/* The OID of txmq.name, or InvalidOid if there is none. */
static Oid
find_relid(const char *name)
{
	return get_relname_relid(name, get_namespace_oid("txmq", false));
}

/* Whether txmq.name exists: tables a database not yet updated lacks. */
bool
txmq_relation_exists(const char *name)
{
	return OidIsValid(find_relid(name));
}

/* The OID of txmq's relation (table, index or sequence) txmq.name. */
Oid
txmq_relid(const char *name)
{
	Oid			relid = find_relid(name);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("txmq: relation txmq.%s does not exist", name),
				 errhint("Reinstall the extension: DROP EXTENSION txmq; CREATE EXTENSION txmq.")));
	return relid;
}

static HTAB *
get_lookup_cache(void)
{
	static bool registered = false;
	HASHCTL		info;

	if (lookup_cache != NULL && !lookup_cache_stale)
		return lookup_cache;
	if (!registered)
	{
		CacheRegisterRelcacheCallback(lookup_cache_callback, (Datum) 0);
		registered = true;
	}
	if (lookup_cxt != NULL)
		MemoryContextDelete(lookup_cxt);
	lookup_cache_stale = false;
	topic_relid = txmq_relid("topic");
	lookup_cxt = AllocSetContextCreate(CacheMemoryContext, "txmq lookups",
									   ALLOCSET_SMALL_SIZES);
	info.keysize = sizeof(LookupKey);
	info.entrysize = sizeof(LookupEntry);
	info.hcxt = lookup_cxt;
	lookup_cache = hash_create("txmq lookups", 64, &info,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return lookup_cache;
}

/* Called by every function that changes topics, subscriptions or grants. */
static void
catalog_changed(void)
{
	CacheInvalidateRelcacheByRelid(txmq_relid("topic"));
}

/*
 * Roles granted priv on the topic (send) or on sub_id (receive), all of
 * them, in an array allocated in cxt.
 */
static int
load_grantees(int32 topic_id, int32 sub_id, TxmqPrivilege priv,
			  MemoryContext cxt, Oid **out)
{
	Datum		args[3];
	int			n;

	args[0] = Int32GetDatum(topic_id);
	args[1] = Int32GetDatum(priv == TXMQ_SEND ? 0 : sub_id);
	args[2] = CStringGetTextDatum(privilege_names[priv]);
	n = txmq_exec(PLAN_HAS_GRANT, args, NULL, 0);
	*out = MemoryContextAlloc(cxt, sizeof(Oid) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		(*out)[i] = DatumGetObjectId(txmq_col(i, 1, &isnull));
	}
	return n;
}

static bool
caller_is_among(const Oid *roles, int n)
{
	Oid			caller = txmq_caller();

	for (int i = 0; i < n; i++)
		if (has_privs_of_role(caller, roles[i]))
			return true;
	return false;
}

/* Uncached privilege check, for callers that list many topics. */
bool
txmq_has_privilege(const TxmqTopic *topic, int32 sub_id, TxmqPrivilege priv)
{
	Oid		   *grantees;
	int			n;

	if (has_privs_of_role(txmq_caller(), topic->owner))
		return true;
	if (priv == TXMQ_ADMIN)
		return false;
	n = load_grantees(topic->topic_id, sub_id, priv, CurrentMemoryContext,
					  &grantees);
	return caller_is_among(grantees, n);
}

/* Privilege check of a cached lookup: the grants are loaded once. */
static bool
entry_allows(LookupEntry *e, TxmqPrivilege priv)
{
	if (has_privs_of_role(txmq_caller(), e->sub.topic.owner))
		return true;
	if (priv == TXMQ_ADMIN)
		return false;
	if (e->ngrantees < 0)
		e->ngrantees = load_grantees(e->sub.topic.topic_id, e->sub.sub_id,
									 priv, lookup_cxt, &e->grantees);
	return caller_is_among(e->grantees, e->ngrantees);
}

static void
deny(const char *what, const char *name, TxmqPrivilege priv)
{
	/* "send to topic", "receive from subscription", "administer topic" */
	static const char *const verbs[] = {"send to", "receive from",
	"administer"};

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("txmq: permission denied to %s %s \"%s\"",
					verbs[priv], what, name),
			 priv == TXMQ_ADMIN ?
			 errhint("Only the topic's owner may do this.") :
			 errhint("The topic's owner can allow it with txmq.grant().")));
}

static void
no_such_topic(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("txmq: topic \"%s\" does not exist", name),
			 errhint("Create it with txmq.create_topic() or txmq.create_queue().")));
}

/*
 * The cache entry of a topic (sub == "") or subscription; NULL if there
 * is no such thing.  A cached entry is only ever used for one kind of
 * privilege: send for topics, receive or admin for subscriptions.
 */
static LookupEntry *
lookup(const char *topic, const char *sub)
{
	HTAB	   *cache = get_lookup_cache();
	LookupKey	key;
	LookupEntry *e;
	bool		found;
	Datum		args[2];
	bool		isnull;

	memset(&key, 0, sizeof(key));
	strlcpy(key.topic, topic, sizeof(key.topic));
	strlcpy(key.sub, sub, sizeof(key.sub));
	e = hash_search(cache, &key, HASH_FIND, NULL);
	if (e != NULL)
		return e;

	args[0] = CStringGetTextDatum(topic);
	args[1] = CStringGetTextDatum(sub);
	if (txmq_exec(*sub ? PLAN_SUB_BY_NAME : PLAN_TOPIC_BY_NAME,
				  args, NULL, 1) == 0)
		return NULL;

	e = hash_search(cache, &key, HASH_ENTER, &found);
	memset(&e->sub, 0, sizeof(e->sub));
	e->sub.topic.topic_id = DatumGetInt32(txmq_col(0, 1, &isnull));
	e->sub.topic.owner = DatumGetObjectId(txmq_col(0, 2, &isnull));
	e->sub.topic.notify = DatumGetBool(txmq_col(0, 3, &isnull));
	strlcpy(e->sub.topic.name, topic, sizeof(e->sub.topic.name));
	if (*sub)
	{
		e->sub.sub_id = DatumGetInt32(txmq_col(0, 4, &isnull));
		e->sub.max_deliveries = DatumGetInt32(txmq_col(0, 5, &isnull));
		e->sub.lease = *DatumGetIntervalP(txmq_col(0, 6, &isnull));
		e->sub.backoff_base = *DatumGetIntervalP(txmq_col(0, 7, &isnull));
		e->sub.backoff_max = *DatumGetIntervalP(txmq_col(0, 8, &isnull));
		e->sub.ordered = DatumGetBool(txmq_col(0, 9, &isnull));
	}
	e->ngrantees = -1;
	e->nsubs = -1;
	e->dedup_ms = -1;
	return e;
}

/*
 * The ids of a topic's subscriptions (palloc'd), which a send inserts
 * rows for; within txmq_scope_enter.
 */
int
txmq_topic_subscriptions(const TxmqTopic *topic, int32 **sub_ids)
{
	LookupEntry *e = lookup(topic->name, "");

	if (e == NULL)
		no_such_topic(topic->name);
	if (e->nsubs < 0)
	{
		Datum		arg = Int32GetDatum(topic->topic_id);
		int			n = txmq_exec(PLAN_TOPIC_SUBS, &arg, NULL, 0);

		e->sub_ids = MemoryContextAlloc(lookup_cxt, sizeof(int32) * (n + 1));
		for (int i = 0; i < n; i++)
		{
			bool		isnull;

			e->sub_ids[i] = DatumGetInt32(txmq_col(i, 1, &isnull));
		}
		e->nsubs = n;
	}
	*sub_ids = palloc(sizeof(int32) * (e->nsubs + 1));
	memcpy(*sub_ids, e->sub_ids, sizeof(int32) * e->nsubs);
	return e->nsubs;
}

/*
 * A topic's dedup_window in ms, 0 if it has none; within txmq_scope_enter,
 * after txmq_lookup_topic.  Read only by sends given a dedup key, which
 * only a database updated to 0.4 can pass.
 */
int64
txmq_topic_dedup_ms(const TxmqTopic *topic)
{
	LookupEntry *e = lookup(topic->name, "");

	if (e == NULL)
		no_such_topic(topic->name);
	if (e->dedup_ms < 0)
	{
		Datum		arg = Int32GetDatum(topic->topic_id);
		bool		isnull = true;
		Datum		window = (Datum) 0;

		if (txmq_exec(PLAN_TOPIC_DEDUP, &arg, NULL, 1) == 1)
			window = txmq_col(0, 1, &isnull);
		e->dedup_ms = isnull ? 0 :
			txmq_interval_ms(DatumGetIntervalP(window), "dedup_window", 0,
							 MAX_DEDUP_WINDOW_MS);
	}
	return e->dedup_ms;
}

/* Find a topic and check the caller's privilege; within txmq_scope_enter. */
void
txmq_lookup_topic(const char *name, TxmqPrivilege priv, TxmqTopic *topic)
{
	LookupEntry *e = lookup(name, "");

	if (e == NULL)
		no_such_topic(name);
	*topic = e->sub.topic;
	/* the entry's grant list is for 'send'; admin needs only the owner */
	if (!entry_allows(e, priv == TXMQ_ADMIN ? TXMQ_ADMIN : TXMQ_SEND))
		deny("topic", name, priv);
}

/* Find a subscription, check the caller's privilege; in the owner scope. */
static void
lookup_sub(const char *topic, const char *sub, TxmqPrivilege priv,
		   TxmqSub *out)
{
	LookupEntry *e = lookup(topic, sub);

	if (e == NULL)
	{
		TxmqTopic	t;

		txmq_lookup_topic(topic, TXMQ_ADMIN, &t);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("txmq: subscription \"%s\" of topic \"%s\" does not exist",
						sub, topic),
				 errhint("Create it with txmq.create_subscription().")));
	}
	*out = e->sub;
	if (!entry_allows(e, priv == TXMQ_ADMIN ? TXMQ_ADMIN : TXMQ_RECEIVE))
		deny("subscription", sub, priv);
}

/*
 * The common start of the functions that take (topic, subscription, ...):
 * check both names, enter the owner scope and look the subscription up.
 */
void
txmq_scope_enter_sub(FunctionCallInfo fcinfo, TxmqPrivilege priv,
					 bool writes, TxmqOwnerScope *scope, TxmqSub *sub)
{
	char	   *topic = txmq_arg_name(fcinfo, 0, "topic");
	char	   *name = txmq_arg_name(fcinfo, 1, "subscription");

	txmq_scope_enter(scope, writes);
	lookup_sub(topic, name, priv, sub);
}

/* NOTIFY txmq_<topic> at commit, if the topic wants it. */
void
txmq_notify_topic(const TxmqTopic *topic)
{
	char		channel[NAMEDATALEN];

	if (!topic->notify)
		return;
	snprintf(channel, sizeof(channel), "txmq_%s", topic->name);
	Async_Notify(channel, NULL);
}

/* ---- administration ---- */

/* Check function: (txmq.message) -> txmq.check_result, owner may run it. */
static char *
check_function_text(Oid fn, Oid owner)
{
	Oid			nsp = get_namespace_oid("txmq", false);
	Oid			msgtype = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
										  CStringGetDatum("message"),
										  ObjectIdGetDatum(nsp));
	Oid			restype = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
										  CStringGetDatum("check_result"),
										  ObjectIdGetDatum(nsp));
	Oid		   *argtypes;
	int			nargs;

	/* a regprocedure can hold any OID, e.g. 0 */
	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(fn)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("txmq: check function with OID %u does not exist", fn)));
	if (get_func_signature(fn, &argtypes, &nargs) != restype ||
		nargs != 1 || argtypes[0] != msgtype)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("txmq: check function %s has the wrong signature",
						format_procedure(fn)),
				 errhint("It must take (m txmq.message) and return txmq.check_result.")));
	if (superuser_arg(owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("txmq: a topic owned by a superuser cannot have a check function"),
				 errdetail("Check functions run as the topic's owner, and txmq never runs user code as a superuser."),
				 errhint("Create the topic as the application role that owns the check function, e.g. after SET ROLE.")));
	if (!txmq_may_execute(fn, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("txmq: the topic owner may not execute check function %s",
						format_procedure(fn))));
	return format_procedure_qualified(fn);
}

static void
check_exhausted(const char *exhausted)
{
	if (strcmp(exhausted, "rollback") != 0 &&
		strcmp(exhausted, "dead_letter") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: on_checks_exhausted must be 'rollback' or 'dead_letter', not \"%s\"",
						exhausted)));
}

/*
 * The expiry options of create_subscription / alter_subscription at
 * retention_arg and the argument after it, checked before anything is
 * read.  A database not yet updated to 0.5 declares neither.
 */
typedef struct ExpiryArgs
{
	bool		given;			/* the function has the arguments */
	int64		retention_ms;	/* 0: none; -1: NULL (unchanged) */
	char	   *on_expiry;		/* NULL: unchanged */
} ExpiryArgs;

static void
arg_expiry(FunctionCallInfo fcinfo, int retention_arg, ExpiryArgs *ex)
{
	ex->given = PG_NARGS() > retention_arg + 1;
	ex->retention_ms = -1;
	ex->on_expiry = NULL;
	if (!ex->given)
		return;
	ex->retention_ms = txmq_arg_ms(fcinfo, retention_arg, "retention", 0,
								   MAX_RETENTION_MS, -1);
	if (PG_ARGISNULL(retention_arg + 1))
		return;
	ex->on_expiry = text_to_cstring(PG_GETARG_TEXT_PP(retention_arg + 1));
	if (strcmp(ex->on_expiry, "dead_letter") != 0 &&
		strcmp(ex->on_expiry, "drop") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: on_expiry must be 'dead_letter' or 'drop', not \"%s\"",
						ex->on_expiry),
				 errhint("Expired messages go to the dead letters ('dead_letter', the default) or are deleted ('drop').")));
}

/* Set the expiry options given to sub_id (retention NULL: unchanged). */
static void
set_expiry(FunctionCallInfo fcinfo, int retention_arg, int32 sub_id,
		   const ExpiryArgs *ex)
{
	Datum		args[4];
	bool		nulls[4] = {false, false, false, false};

	if (!ex->given || (ex->retention_ms < 0 && ex->on_expiry == NULL))
		return;
	nulls[2] = ex->retention_ms <= 0;
	nulls[3] = ex->on_expiry == NULL;
	args[0] = Int32GetDatum(sub_id);
	args[1] = BoolGetDatum(ex->retention_ms >= 0);
	args[2] = ex->retention_ms > 0 ? PG_GETARG_DATUM(retention_arg) : (Datum) 0;
	args[3] = ex->on_expiry ? CStringGetTextDatum(ex->on_expiry) : (Datum) 0;
	txmq_exec(PLAN_SUB_SET_EXPIRY, args, nulls, 0);
}

static void
check_backoff(Interval *base, Interval *max)
{
	if (txmq_interval_ms(base, "backoff_base", 0, MAX_BACKOFF_BASE_MS) >
		txmq_interval_ms(max, "backoff_max", 0, MAX_BACKOFF_MAX_MS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: backoff_base must not exceed backoff_max")));
}

/*
 * The dedup_window argument argno of create_topic / alter_topic in ms, -1
 * when null or absent (a database not yet updated to 0.4); 0 is none.
 */
static int64
arg_dedup_ms(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno)
		return -1;
	return txmq_arg_ms(fcinfo, argno, "dedup_window", 0, MAX_DEDUP_WINDOW_MS,
					   -1);
}

/* Set a topic's dedup_window (0: none) */
static void
set_dedup(Datum topic_id, FunctionCallInfo fcinfo, int argno, int64 ms)
{
	Datum		args[2];
	bool		nulls[2] = {false, ms == 0};

	args[0] = topic_id;
	args[1] = ms == 0 ? (Datum) 0 : PG_GETARG_DATUM(argno);
	txmq_exec(PLAN_TOPIC_SET_DEDUP, args, nulls, 0);
}

/*
 * The if_not_exists argument of create_topic / create_subscription.  A
 * database not yet updated to 0.3 declares these functions without it.
 */
static bool
arg_if_not_exists(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno)
		return false;
	txmq_require_arg(fcinfo, argno, "if_not_exists", NULL);
	return PG_GETARG_BOOL(argno);
}

static bool
intervals_equal(Datum a, Datum b)
{
	return DatumGetBool(DirectFunctionCall2(interval_eq, a, b));
}

static void
note_differs(StringInfo diff, bool differs, const char *option)
{
	if (differs)
		appendStringInfo(diff, "%s%s", diff->len ? ", " : "", option);
}

/* Note which of the expiry options asked for sub_id has otherwise. */
static void
note_expiry_differs(StringInfo diff, Datum sub_id, const ExpiryArgs *ex)
{
	bool		isnull;
	Datum		retention;
	int64		ms = 0;

	txmq_exec(PLAN_SUB_EXPIRY, &sub_id, NULL, 1);
	retention = txmq_col(0, 1, &isnull);
	if (!isnull)
		ms = txmq_interval_ms(DatumGetIntervalP(retention), "retention", 0,
							  MAX_RETENTION_MS);
	note_differs(diff, ms != Max(ex->retention_ms, 0), "retention");
	note_differs(diff, strcmp(TextDatumGetCString(txmq_col(0, 2, &isnull)),
							  ex->on_expiry) != 0, "on_expiry");
}

/*
 * create_*(if_not_exists => true) found what it was to create: say so,
 * naming the options it has other than those asked for (to the topic's
 * owner only: the settings are theirs).  Nothing is changed.
 */
static void
exists_skipping(const char *what, const char *name, StringInfo diff,
				const char *alter)
{
	if (diff == NULL || diff->len == 0)
		ereport(NOTICE,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("txmq: %s \"%s\" already exists, skipping",
						what, name)));
	else
		ereport(NOTICE,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("txmq: %s \"%s\" already exists with other options, skipping",
						what, name),
				 errdetail("It differs in: %s.", diff->data),
				 errhint("Change them with %s.", alter)));
}

Datum
txmq_create_topic(PG_FUNCTION_ARGS)
{
	char	   *name = txmq_arg_name(fcinfo, 0, "topic");
	Oid			owner = GetUserId();
	Datum		args[8];
	bool		nulls[8] = {0};
	TxmqOwnerScope scope;
	char	   *exhausted;
	bool		if_not_exists = arg_if_not_exists(fcinfo, 7);
	int64		dedup_ms = Max(arg_dedup_ms(fcinfo, 8), 0);

	txmq_require_arg(fcinfo, 1, "notify", NULL);
	txmq_require_arg(fcinfo, 3, "check_after", NULL);
	txmq_require_arg(fcinfo, 4, "check_interval", NULL);
	txmq_require_arg(fcinfo, 6, "on_checks_exhausted", NULL);
	args[0] = CStringGetTextDatum(name);
	args[1] = ObjectIdGetDatum(owner);
	args[2] = PG_GETARG_DATUM(1);
	nulls[3] = PG_ARGISNULL(2);
	if (!nulls[3])
		args[3] = CStringGetTextDatum(check_function_text(PG_GETARG_OID(2),
														  owner));
	args[4] = PointerGetDatum(txmq_arg_interval(fcinfo, 3, "check_after",
												0, MAX_CHECK_AFTER_MS));
	args[5] = PointerGetDatum(txmq_arg_interval(fcinfo, 4, "check_interval",
												MIN_CHECK_INTERVAL_MS,
												MAX_CHECK_INTERVAL_MS));
	args[6] = Int32GetDatum(arg_int_in(fcinfo, 5, "max_checks", 1,
									   MAX_CHECKS));
	exhausted = text_to_cstring(PG_GETARG_TEXT_PP(6));
	check_exhausted(exhausted);
	args[7] = CStringGetTextDatum(exhausted);

	txmq_scope_enter(&scope, true);
	if (txmq_exec(PLAN_INSERT_TOPIC, args, nulls, 0) > 0)
	{
		bool		isnull;

		if (dedup_ms > 0)
			set_dedup(txmq_col(0, 1, &isnull), fcinfo, 8, dedup_ms);
		catalog_changed();
	}
	else if (!if_not_exists)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("txmq: topic \"%s\" already exists", name),
				 errhint("Use if_not_exists => true to skip existing topics, or txmq.alter_topic() to change one.")));
	else
	{
		StringInfoData diff;
		TxmqTopic	topic;
		bool		isnull;
		bool		fn_null;
		Datum		fn;

		initStringInfo(&diff);
		/* invisible to a REPEATABLE READ snapshot: nothing to compare */
		if (txmq_exec(PLAN_TOPIC_ROW, args, NULL, 1) == 1)
		{
			topic.topic_id = DatumGetInt32(txmq_col(0, 1, &isnull));
			topic.owner = DatumGetObjectId(txmq_col(0, 2, &isnull));
			if (txmq_has_privilege(&topic, 0, TXMQ_ADMIN))
			{
				note_differs(&diff, topic.owner != owner, "owner");
				note_differs(&diff, DatumGetBool(txmq_col(0, 3, &isnull)) !=
							 DatumGetBool(args[2]), "notify");
				fn = txmq_col(0, 4, &fn_null);
				note_differs(&diff, fn_null != nulls[3] ||
							 (!fn_null &&
							  strcmp(TextDatumGetCString(fn),
									 TextDatumGetCString(args[3])) != 0),
							 "check_function");
				note_differs(&diff, !intervals_equal(txmq_col(0, 5, &isnull),
													 args[4]), "check_after");
				note_differs(&diff, !intervals_equal(txmq_col(0, 6, &isnull),
													 args[5]), "check_interval");
				note_differs(&diff, DatumGetInt32(txmq_col(0, 7, &isnull)) !=
							 DatumGetInt32(args[6]), "max_checks");
				note_differs(&diff,
							 strcmp(TextDatumGetCString(txmq_col(0, 8, &isnull)),
									exhausted) != 0, "on_checks_exhausted");
				strlcpy(topic.name, name, sizeof(topic.name));
				if (PG_NARGS() > 8)
					note_differs(&diff, txmq_topic_dedup_ms(&topic) != dedup_ms,
								 "dedup_window");
			}
		}
		exists_skipping("topic", name, &diff, "txmq.alter_topic()");
	}
	txmq_scope_leave(&scope);
	PG_RETURN_VOID();
}

Datum
txmq_create_subscription(PG_FUNCTION_ARGS)
{
	char	   *topic_name = txmq_arg_name(fcinfo, 0, "topic");
	char	   *sub_name = txmq_arg_name(fcinfo, 1, "subscription");
	TxmqTopic	topic;
	Datum		args[7];
	Interval   *base,
			   *max;
	TxmqOwnerScope scope;
	bool		if_not_exists = arg_if_not_exists(fcinfo, 7);
	ExpiryArgs	expiry;

	arg_expiry(fcinfo, 8, &expiry);
	if (expiry.given)
		txmq_require_arg(fcinfo, 9, "on_expiry", NULL);
	args[2] = Int32GetDatum(arg_int_in(fcinfo, 2, "max_deliveries", 1,
									   MAX_DELIVERIES));
	txmq_require_arg(fcinfo, 3, "lease", NULL);
	txmq_require_arg(fcinfo, 4, "backoff_base", NULL);
	txmq_require_arg(fcinfo, 5, "backoff_max", NULL);
	args[3] = PointerGetDatum(txmq_arg_interval(fcinfo, 3, "lease",
												MIN_LEASE_MS, MAX_LEASE_MS));
	base = txmq_arg_interval(fcinfo, 4, "backoff_base", 0,
							 MAX_BACKOFF_BASE_MS);
	max = txmq_arg_interval(fcinfo, 5, "backoff_max", 0,
							MAX_BACKOFF_MAX_MS);
	check_backoff(base, max);
	args[4] = PointerGetDatum(base);
	args[5] = PointerGetDatum(max);
	txmq_require_arg(fcinfo, 6, "ordered", NULL);
	args[6] = PG_GETARG_DATUM(6);

	txmq_scope_enter(&scope, true);
	txmq_lookup_topic(topic_name, TXMQ_ADMIN, &topic);
	args[0] = Int32GetDatum(topic.topic_id);
	args[1] = CStringGetTextDatum(sub_name);
	if (txmq_exec(PLAN_INSERT_SUB, args, NULL, 0) > 0)
	{
		bool		isnull;

		/* the defaults are the columns' own */
		if (expiry.given && (expiry.retention_ms > 0 ||
							 strcmp(expiry.on_expiry, "dead_letter") != 0))
			set_expiry(fcinfo, 8, DatumGetInt32(txmq_col(0, 1, &isnull)),
					   &expiry);
		catalog_changed();
	}
	else if (!if_not_exists)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("txmq: subscription \"%s\" of topic \"%s\" already exists",
						sub_name, topic_name),
				 errhint("Use if_not_exists => true to skip existing subscriptions, or txmq.alter_subscription() to change one.")));
	else
	{
		StringInfoData diff;
		bool		isnull;

		initStringInfo(&diff);
		if (txmq_exec(PLAN_SUB_ROW, args, NULL, 1) == 1)
		{
			note_differs(&diff, DatumGetInt32(txmq_col(0, 2, &isnull)) !=
						 DatumGetInt32(args[2]), "max_deliveries");
			note_differs(&diff, !intervals_equal(txmq_col(0, 3, &isnull),
												 args[3]), "lease");
			note_differs(&diff, !intervals_equal(txmq_col(0, 4, &isnull),
												 args[4]), "backoff_base");
			note_differs(&diff, !intervals_equal(txmq_col(0, 5, &isnull),
												 args[5]), "backoff_max");
			note_differs(&diff, DatumGetBool(txmq_col(0, 6, &isnull)) !=
						 DatumGetBool(args[6]), "ordered");
			if (expiry.given)
				note_expiry_differs(&diff, txmq_col(0, 1, &isnull), &expiry);
		}
		exists_skipping("subscription", sub_name, &diff,
						"txmq.alter_subscription()");
	}
	txmq_scope_leave(&scope);
	PG_RETURN_VOID();
}

/*
 * alter_topic(topic, notify, check_function, check_after, check_interval,
 * max_checks, on_checks_exhausted, owner): the options given change, the
 * others (NULL) stay.  Each is checked as create_topic checks it, and the
 * topic's messages stay as they are; what a change means for them is in
 * README "Changing topics and subscriptions".  check_function => '-' (the
 * regprocedure of OID 0) removes the check function.
 */
Datum
txmq_alter_topic(PG_FUNCTION_ARGS)
{
	char	   *name = txmq_arg_name(fcinfo, 0, "topic");
	TxmqTopic	topic;
	TxmqOwnerScope scope;
	Datum		args[8];
	bool		nulls[8] = {0};
	Datum		key;
	bool		isnull;
	Oid			caller;
	Oid			owner;
	Oid			fn = InvalidOid;
	bool		had_function;
	int64		dedup_ms = arg_dedup_ms(fcinfo, 8);

	/* the values given, checked before anything is read */
	(void) txmq_arg_interval(fcinfo, 3, "check_after", 0, MAX_CHECK_AFTER_MS);
	(void) txmq_arg_interval(fcinfo, 4, "check_interval",
							 MIN_CHECK_INTERVAL_MS, MAX_CHECK_INTERVAL_MS);
	if (!PG_ARGISNULL(5))
		(void) arg_int_in(fcinfo, 5, "max_checks", 1, MAX_CHECKS);
	if (!PG_ARGISNULL(6))
		check_exhausted(text_to_cstring(PG_GETARG_TEXT_PP(6)));
	if (!PG_ARGISNULL(7) &&
		!SearchSysCacheExists1(AUTHOID, PG_GETARG_DATUM(7)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("txmq: role with OID %u does not exist",
						PG_GETARG_OID(7))));

	caller = GetUserId();
	txmq_scope_enter(&scope, true);
	txmq_lookup_topic(name, TXMQ_ADMIN, &topic);
	key = CStringGetTextDatum(name);
	/* locked, so that concurrent changes of other options are kept */
	if (txmq_exec(PLAN_TOPIC_ROW, &key, NULL, 1) != 1)
		no_such_topic(name);
	args[0] = txmq_col(0, 1, &isnull);
	owner = DatumGetObjectId(txmq_col(0, 2, &isnull));
	args[2] = txmq_col(0, 3, &isnull);
	args[3] = txmq_col(0, 4, &nulls[3]);
	had_function = !nulls[3];
	args[4] = txmq_col(0, 5, &isnull);
	args[5] = txmq_col(0, 6, &isnull);
	args[6] = txmq_col(0, 7, &isnull);
	args[7] = txmq_col(0, 8, &isnull);
	fn = DatumGetObjectId(txmq_col(0, 9, &isnull));
	if (isnull)
		fn = InvalidOid;		/* the function was dropped: keep its name */

	/*
	 * A new owner, as with ALTER ... OWNER TO: the caller must be a member
	 * of the role, and the role must be one that may create topics.
	 * Superusers may give a topic to anyone.
	 */
	if (!PG_ARGISNULL(7) && PG_GETARG_OID(7) != owner)
	{
		Oid			new_owner = PG_GETARG_OID(7);
		Datum		arg = ObjectIdGetDatum(new_owner);

		if (!superuser_arg(caller))
		{
			if (!has_privs_of_role(caller, new_owner))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("txmq: permission denied to give topic \"%s\" to role \"%s\"",
								name, GetUserNameFromId(new_owner, false)),
						 errdetail("Only members of the new owner role may do this.")));
			txmq_exec(PLAN_MAY_CREATE_TOPIC, &arg, NULL, 1);
			if (!DatumGetBool(txmq_col(0, 1, &isnull)) || isnull)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("txmq: role \"%s\" may not own topics",
								GetUserNameFromId(new_owner, false)),
						 errdetail("Owning a topic needs EXECUTE on txmq.create_topic, as creating one does."),
						 errhint("GRANT EXECUTE ON FUNCTION txmq.create_topic, txmq.create_queue TO %s;",
								 quote_identifier(GetUserNameFromId(new_owner, false)))));
		}
		owner = new_owner;
		/* the kept check function must suit the new owner too */
		if (PG_ARGISNULL(2) && OidIsValid(fn))
			args[3] = CStringGetTextDatum(check_function_text(fn, owner));
	}
	args[1] = ObjectIdGetDatum(owner);

	/*
	 * Notify turned on: tell listeners at commit, as a send would, of what
	 * is receivable already (nobody was told while it was off).
	 */
	if (!PG_ARGISNULL(1) && PG_GETARG_BOOL(1) && !DatumGetBool(args[2]))
	{
		topic.notify = true;
		txmq_notify_topic(&topic);
	}
	if (!PG_ARGISNULL(1))
		args[2] = PG_GETARG_DATUM(1);
	if (!PG_ARGISNULL(2))
	{
		fn = PG_GETARG_OID(2);
		nulls[3] = !OidIsValid(fn);
		if (!nulls[3])
			args[3] = CStringGetTextDatum(check_function_text(fn, owner));
	}
	if (had_function && nulls[3])
	{
		Datum		arg = args[0];
		int64		n;

		txmq_exec(PLAN_HALF_UNCHECKABLE, &arg, NULL, 1);
		n = DatumGetInt64(txmq_col(0, 1, &isnull));
		if (n > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("txmq: topic \"%s\" has " INT64_FORMAT " unresolved half messages that only its check function can resolve",
							name, n),
					 errdetail("They name neither a producer group nor a local transaction."),
					 errhint("Resolve them with txmq.commit_half() or txmq.rollback_half() first, or give another check function.")));
	}
	if (!PG_ARGISNULL(3))
		args[4] = PG_GETARG_DATUM(3);
	if (!PG_ARGISNULL(4))
		args[5] = PG_GETARG_DATUM(4);
	if (!PG_ARGISNULL(5))
		args[6] = PG_GETARG_DATUM(5);
	if (!PG_ARGISNULL(6))
		args[7] = PG_GETARG_DATUM(6);

	txmq_exec(PLAN_ALTER_TOPIC, args, nulls, 0);
	if (dedup_ms >= 0)
		set_dedup(args[0], fcinfo, 8, dedup_ms);
	catalog_changed();
	txmq_scope_leave(&scope);
	PG_RETURN_VOID();
}

/*
 * alter_subscription(topic, subscription, max_deliveries, lease,
 * backoff_base, backoff_max, ordered, retention, on_expiry): like
 * alter_topic; retention => '0' turns expiry off.
 */
Datum
txmq_alter_subscription(PG_FUNCTION_ARGS)
{
	TxmqSub		sub;
	TxmqOwnerScope scope;
	Datum		args[6];
	Datum		key[2];
	bool		isnull;
	ExpiryArgs	expiry;

	arg_expiry(fcinfo, 7, &expiry);
	if (!PG_ARGISNULL(2))
		(void) arg_int_in(fcinfo, 2, "max_deliveries", 1, MAX_DELIVERIES);
	(void) txmq_arg_interval(fcinfo, 3, "lease", MIN_LEASE_MS, MAX_LEASE_MS);
	(void) txmq_arg_interval(fcinfo, 4, "backoff_base", 0,
							 MAX_BACKOFF_BASE_MS);
	(void) txmq_arg_interval(fcinfo, 5, "backoff_max", 0,
							 MAX_BACKOFF_MAX_MS);

	txmq_scope_enter_sub(fcinfo, TXMQ_ADMIN, true, &scope, &sub);
	key[0] = Int32GetDatum(sub.topic.topic_id);
	key[1] = PG_GETARG_DATUM(1);
	if (txmq_exec(PLAN_SUB_ROW, key, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("txmq: subscription \"%s\" of topic \"%s\" does not exist",
						text_to_cstring(PG_GETARG_TEXT_PP(1)), sub.topic.name)));
	for (int i = 0; i < 6; i++)
		args[i] = txmq_col(0, i + 1, &isnull);
	for (int i = 2; i <= 6; i++)
		if (!PG_ARGISNULL(i))
			args[i - 1] = PG_GETARG_DATUM(i);
	check_backoff(DatumGetIntervalP(args[3]), DatumGetIntervalP(args[4]));

	txmq_exec(PLAN_ALTER_SUB, args, NULL, 0);
	set_expiry(fcinfo, 7, DatumGetInt32(args[0]), &expiry);
	catalog_changed();
	txmq_scope_leave(&scope);
	PG_RETURN_VOID();
}

/*
 * grants(topic = NULL): who may do what with the topic (every topic the
 * caller owns when NULL): its owner, then each grant.  For the owner, as
 * txmq.grant() is.
 */
Datum
txmq_grants(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TxmqOwnerScope scope;
	SPITupleTable *rows;
	TxmqTopic	topic;
	Datum		arg = Int32GetDatum(0);
	bool		all = PG_ARGISNULL(0);
	char	   *name = all ? NULL : txmq_arg_name(fcinfo, 0, "topic");
	int			nrows;

	InitMaterializedSRF(fcinfo, 0);
	txmq_scope_enter(&scope, false);
	if (!all)
	{
		txmq_lookup_topic(name, TXMQ_ADMIN, &topic);
		arg = Int32GetDatum(topic.topic_id);
	}
	nrows = txmq_exec(PLAN_GRANTS_LIST, &arg, &all, 0);
	rows = SPI_tuptable;
	for (int i = 0; i < nrows; i++)
	{
		Datum		cols[7];
		bool		colnulls[7];

		heap_deform_tuple(rows->vals[i], rows->tupdesc, cols, colnulls);
		topic.topic_id = DatumGetInt32(cols[0]);
		topic.owner = DatumGetObjectId(cols[1]);
		if (all && !txmq_has_privilege(&topic, 0, TXMQ_ADMIN))
			continue;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 &cols[2], &colnulls[2]);
	}
	txmq_scope_leave(&scope);
	return (Datum) 0;
}

/* The shared-memory slots of a topic and its subscriptions go at commit. */
static void
drop_slots_at_commit(const TxmqTopic *topic)
{
	int32	   *sub_ids;
	int			n = txmq_topic_subscriptions(topic, &sub_ids);

	txmq_slots_drop_at_commit(topic->topic_id, 0);
	for (int i = 0; i < n; i++)
		txmq_slots_drop_at_commit(topic->topic_id, sub_ids[i]);
	pfree(sub_ids);
}

Datum
txmq_drop_topic(PG_FUNCTION_ARGS)
{
	char	   *name = txmq_arg_name(fcinfo, 0, "topic");
	TxmqTopic	topic;
	Datum		arg;
	bool		isnull;
	TxmqOwnerScope scope;

	txmq_require_arg(fcinfo, 1, "force", NULL);
	txmq_scope_enter(&scope, true);
	txmq_lookup_topic(name, TXMQ_ADMIN, &topic);
	arg = Int32GetDatum(topic.topic_id);
	if (!PG_GETARG_BOOL(1))
	{
		txmq_exec(PLAN_TOPIC_PENDING, &arg, NULL, 0);
		if (DatumGetBool(txmq_col(0, 1, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("txmq: topic \"%s\" still holds messages", name),
					 errhint("Drain or purge it first, or use force => true.")));
	}
	drop_slots_at_commit(&topic);
	txmq_exec(PLAN_DROP_TOPIC, &arg, NULL, 0);
	catalog_changed();
	txmq_scope_leave(&scope);
	PG_RETURN_VOID();
}

Datum
txmq_drop_subscription(PG_FUNCTION_ARGS)
{
	TxmqSub		sub;
	Datum		arg;
	TxmqOwnerScope scope;

	txmq_scope_enter_sub(fcinfo, TXMQ_ADMIN, true, &scope, &sub);
	arg = Int32GetDatum(sub.sub_id);
	txmq_exec(PLAN_DROP_SUB, &arg, NULL, 0);
	txmq_slots_drop_at_commit(sub.topic.topic_id, sub.sub_id);
	catalog_changed();
	txmq_scope_leave(&scope);
	PG_RETURN_VOID();
}

/*
 * For the owner's functions that act on a whole topic or on one of its
 * subscriptions: the topic, and the id of the subscription named by
 * argument sub_argno, or 0 when that is null.
 */
static int32
lookup_admin_target(FunctionCallInfo fcinfo, const char *topic_name,
					int sub_argno, TxmqTopic *topic)
{
	TxmqSub		sub;

	if (PG_ARGISNULL(sub_argno))
	{
		txmq_lookup_topic(topic_name, TXMQ_ADMIN, topic);
		return 0;
	}
	lookup_sub(topic_name, txmq_arg_name(fcinfo, sub_argno, "subscription"),
			   TXMQ_ADMIN, &sub);
	*topic = sub.topic;
	return sub.sub_id;
}

Datum
txmq_purge(PG_FUNCTION_ARGS)
{
	char	   *topic_name = txmq_arg_name(fcinfo, 0, "topic");
	TxmqTopic	topic;
	Datum		args[2];
	bool		isnull;
	int64		n;
	TxmqOwnerScope scope;

	txmq_scope_enter(&scope, true);
	args[1] = Int32GetDatum(lookup_admin_target(fcinfo, topic_name, 1,
												&topic));
	args[0] = Int32GetDatum(topic.topic_id);
	txmq_exec(PLAN_PURGE, args, NULL, 0);
	n = DatumGetInt64(txmq_col(0, 1, &isnull));
	txmq_scope_leave(&scope);
	PG_RETURN_INT64(n);
}

/* grant / revoke (topic, role, privilege, subscription) */
static void
change_grant(FunctionCallInfo fcinfo, TxmqPlanId plan)
{
	char	   *topic_name = txmq_arg_name(fcinfo, 0, "topic");
	char	   *priv;
	Datum		args[4];
	TxmqTopic	topic;
	TxmqOwnerScope scope;

	txmq_require_arg(fcinfo, 1, "role", NULL);
	txmq_require_arg(fcinfo, 2, "privilege", NULL);
	/* a regrole can hold any OID, e.g. 0; revoke may clean up such grants */
	if (plan == PLAN_INSERT_GRANT &&
		!SearchSysCacheExists1(AUTHOID, PG_GETARG_DATUM(1)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("txmq: role with OID %u does not exist",
						PG_GETARG_OID(1))));
	priv = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(priv, "send") != 0 && strcmp(priv, "receive") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: unknown privilege \"%s\"", priv),
				 errhint("Privileges are 'send' (on a topic) and 'receive' (on a subscription).")));
	if ((strcmp(priv, "receive") == 0) == PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("txmq: 'receive' needs a subscription and 'send' takes none")));

	txmq_scope_enter(&scope, true);
	args[1] = Int32GetDatum(lookup_admin_target(fcinfo, topic_name, 3,
												&topic));
	args[0] = Int32GetDatum(topic.topic_id);
	args[2] = PG_GETARG_DATUM(1);
	args[3] = CStringGetTextDatum(priv);
	txmq_exec(plan, args, NULL, 0);
	catalog_changed();
	txmq_scope_leave(&scope);
}

Datum
txmq_grant(PG_FUNCTION_ARGS)
{
	change_grant(fcinfo, PLAN_INSERT_GRANT);
	PG_RETURN_VOID();
}

Datum
txmq_revoke(PG_FUNCTION_ARGS)
{
	change_grant(fcinfo, PLAN_DELETE_GRANT);
	PG_RETURN_VOID();
}
