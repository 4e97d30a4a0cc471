/* txmq--0.5--0.6.sql */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.6'" to load this file. \quit

/* ---- Fan-out without copies (issue 12, docs/storage.md step 2) ---- */

/*
 * The payload, headers and producer group of a message sent to a topic
 * with more than one subscription, stored once; each subscription's
 * txmq.msg row then has them NULL and names the event by (topic_id of its
 * subscription, msg_id).  The worker deletes an event once no
 * subscription has a row of it (event.c).
 */
CREATE TABLE txmq.event (
	topic_id int NOT NULL,
	msg_id bigint NOT NULL,
	payload jsonb NOT NULL,
	headers jsonb,
	producer_group text,
	PRIMARY KEY (topic_id, msg_id)
) WITH (autovacuum_vacuum_scale_factor = 0,
		autovacuum_vacuum_threshold = 5000,
		autovacuum_vacuum_cost_delay = 0);
SELECT pg_catalog.pg_extension_config_dump('txmq.event', '');

/* NULL: the payload is the event's (rows written before 0.6 have theirs) */
ALTER TABLE txmq.msg ALTER COLUMN payload DROP NOT NULL;
