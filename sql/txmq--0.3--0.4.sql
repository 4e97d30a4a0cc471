/* txmq--0.3--0.4.sql */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.4'" to load this file. \quit

/* ---- peek (issue 15) ---- */

/*
 * What a receive would deliver next, without taking it: the same
 * privilege as receive ('receive' on the subscription).
 */
CREATE FUNCTION txmq.peek(topic text, subscription text,
						  max_messages int DEFAULT 10)
RETURNS TABLE (msg_id bigint, payload jsonb, headers jsonb, key text,
			   attempt int, created_at timestamptz, last_error text)
AS 'MODULE_PATHNAME', 'txmq_peek' LANGUAGE C VOLATILE ROWS 10;

COMMENT ON FUNCTION txmq.peek(text, text, int) IS
	'The ready messages a receive would take next, in its order, with the attempt their next delivery would have; claims, leases and changes nothing';
