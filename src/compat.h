/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL server versions txmq builds
 *	  against, as wrappers named for what they do.  No other file tests
 *	  PG_VERSION_NUM.
 *
 * txmq supports PostgreSQL 15.4 and later: it uses shmem_request_hook
 * (15.0) and database_is_invalid_form() (15.4).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TXMQ_COMPAT_H
#define TXMQ_COMPAT_H

#include "postgres.h"

#include "access/genam.h"
#include "access/transam.h"
#include "catalog/pg_proc.h"
#include "utils/acl.h"
#include "utils/relcache.h"

#if PG_VERSION_NUM < 150004
#error "txmq needs PostgreSQL 15.4 or later"
#endif

/* The varlena macros (VARSIZE ...) left postgres.h for varatt.h in 16. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/* May role execute function fn?  16 replaced pg_proc_aclcheck. */
#if PG_VERSION_NUM >= 160000
#define txmq_may_execute(fn, role) \
	(object_aclcheck(ProcedureRelationId, (fn), (role), ACL_EXECUTE) == \
	 ACLCHECK_OK)
#else
#define txmq_may_execute(fn, role) \
	(pg_proc_aclcheck((fn), (role), ACL_EXECUTE) == ACLCHECK_OK)
#endif

/*
 * Begin a scan of index on heap.  18 added an IndexScanInstrumentation
 * argument, for EXPLAIN ANALYZE; txmq's scans report to no plan.
 */
#if PG_VERSION_NUM >= 180000
#define txmq_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), (norderbys))
#else
#define txmq_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), (norderbys))
#endif

/*
 * The primary key index of rel.  18 lets a caller accept a deferrable
 * primary key; txmq's are not deferrable, and returning none for one, as
 * before 18, keeps the behaviour of every version the same.
 */
#if PG_VERSION_NUM >= 180000
#define txmq_primary_key_index(rel) RelationGetPrimaryKeyIndex((rel), false)
#else
#define txmq_primary_key_index(rel) RelationGetPrimaryKeyIndex(rel)
#endif

/*
 * The oldest transaction whose status the commit log still has.  17
 * renamed ShmemVariableCache to TransamVariables.
 */
#if PG_VERSION_NUM >= 170000
#define txmq_oldest_clog_xid() (TransamVariables->oldestClogXid)
#else
#define txmq_oldest_clog_xid() (ShmemVariableCache->oldestClogXid)
#endif

#endif							/* TXMQ_COMPAT_H */
