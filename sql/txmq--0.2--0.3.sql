/* txmq--0.2--0.3.sql */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.3'" to load this file. \quit

/*
 * NOTIFY when messages fall due (issue 17).  The worker asks, for each
 * topic with notify on whose next due time has come, whether any of its
 * rows fell due and when the next one will: an index range probe per
 * subscription.  Only rows that are not receivable at once are indexed:
 * a send without a delay writes vt = created_at, so the hot path of an
 * undelayed send (and of a receive acked in its transaction, which
 * writes nothing) pays nothing for it; delayed sends, leases and
 * backoffs do.
 */
CREATE INDEX msg_due_idx ON txmq.msg (sub_id, vt)
	WHERE vt OPERATOR(pg_catalog.>) created_at;
