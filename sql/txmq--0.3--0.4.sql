/* txmq--0.3--0.4.sql */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.4'" to load this file. \quit

/* ---- Shared tables bounded by what is in use (issue 13) ---- */

/*
 * txmq.stats gains the time since which each row's counters count (a
 * subscription's shared-memory slot may be evicted while it is idle and
 * rebuilt, counting from zero, when it is used again), and one row per
 * fixed-size shared table saying how full it is.  The view is replaced,
 * not dropped, so that grants on it and views over it survive: its new
 * columns come last, from a function of a new name (a function's result
 * type cannot change).
 */
CREATE FUNCTION txmq._stats_rows()
RETURNS TABLE (topic text, subscription text,
			   ready bigint, delayed bigint, in_flight bigint, dead bigint,
			   half_pending bigint, oldest_ready_age interval,
			   sent bigint, delivered bigint, acked bigint, nacked bigint,
			   dead_lettered bigint, checks bigint, checks_commit bigint,
			   checks_rollback bigint, checks_unknown bigint,
			   worker_running boolean, counters_since timestamptz,
			   setting text, capacity bigint, in_use bigint, needed bigint)
AS 'MODULE_PATHNAME', 'txmq_stats' LANGUAGE C VOLATILE;

CREATE OR REPLACE VIEW txmq.stats AS SELECT * FROM txmq._stats_rows();

DROP FUNCTION txmq._stats();

COMMENT ON FUNCTION txmq._stats_rows() IS
	'Internal: the rows of the view txmq.stats';
