/*-------------------------------------------------------------------------
 *
 * scope.c
 *	  The owner scope: txmq's statements run as the extension owner, with
 *	  the calling role remembered for privilege checks.
 *
 * txmq's tables are granted to no one; every SQL entry point checks the
 * caller's privileges on the topic (catalog.c) and then runs its
 * statements (plans.c) between txmq_scope_enter() and txmq_scope_leave(),
 * which connect SPI and switch to the owner of schema txmq, i.e. whoever
 * ran CREATE EXTENSION.  txmq_caller() is the role that called the txmq
 * function now running, for the privilege checks made inside the scope.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

/* The owner of schema txmq, i.e. whoever ran CREATE EXTENSION. */
static Oid
extension_owner(void)
{
	Oid			nsp = get_namespace_oid("txmq", true);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"txmq\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION txmq.")));
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

static Oid	current_caller = InvalidOid;

/* The role that called the txmq function now running. */
Oid
txmq_caller(void)
{
	return OidIsValid(current_caller) ? current_caller : GetUserId();
}

/*
 * An error skips txmq_scope_leave().  Like PostgreSQL with the user id
 * itself, restore the caller the (sub)transaction that the error aborts
 * started with, so that an enclosing txmq function (the worker calling a
 * check function that calls txmq, say) goes on with its own caller.
 */
static Oid *caller_at_level = NULL;
static int	ncaller_levels = 0;

static void
caller_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (event == SUBXACT_EVENT_START_SUB)
	{
		if (level >= ncaller_levels)
		{
			int			n = Max(level + 1, 2 * ncaller_levels);

			caller_at_level = caller_at_level
				? repalloc(caller_at_level, n * sizeof(Oid))
				: MemoryContextAlloc(TopMemoryContext, n * sizeof(Oid));
			ncaller_levels = n;
		}
		caller_at_level[level] = current_caller;
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		if (level < ncaller_levels)
			current_caller = caller_at_level[level];
	}
}

static void
caller_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT)
		current_caller = InvalidOid;
}

void
txmq_scope_init(void)
{
	RegisterXactCallback(caller_xact_callback, NULL);
	RegisterSubXactCallback(caller_subxact_callback, NULL);
}

/*
 * Connect to SPI and act as the extension owner until txmq_scope_leave().
 * The caller's privileges on the topic are checked by txmq_lookup_*; the
 * tables themselves are not granted to anyone.  An error unwinds both the
 * SPI connection and the user switch with the (sub)transaction.
 */
void
txmq_scope_enter(TxmqOwnerScope *scope, bool writes)
{
	if (writes && RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("txmq cannot change queues on a hot standby"),
				 errhint("Producers and consumers must connect to the primary.")));
	if (writes && XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("txmq cannot change queues in a read-only transaction"),
				 errhint("Sending, receiving and settling messages write; "
						 "use a read-write transaction.")));
	GetUserIdAndSecContext(&scope->save_user, &scope->save_sec);
	scope->save_caller = current_caller;
	current_caller = scope->save_user;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "txmq: SPI_connect failed");
	SetUserIdAndSecContext(extension_owner(),
						   scope->save_sec | SECURITY_LOCAL_USERID_CHANGE);
}

void
txmq_scope_leave(TxmqOwnerScope *scope)
{
	SetUserIdAndSecContext(scope->save_user, scope->save_sec);
	current_caller = scope->save_caller;
	SPI_finish();
}
