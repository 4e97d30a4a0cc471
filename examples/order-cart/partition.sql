-- partition.sql: what the proxy database's functions call in one partition
-- of the sharded demo (`make demo SHARDS=N`).  Run after queues.sql in every
-- partition database, with its number:
--
--   psql -d shop_p2 -v part=2 -f partition.sql
--
-- PL/Proxy calls a function of the same name and argument types in the
-- partition its RUN ON picks, each call in a transaction of its own
-- (autocommit).  So whatever must commit together is one function here:
-- place_order inserts the order and sends its message in one transaction.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE SCHEMA shard AUTHORIZATION order_app;
-- Which partition this is: the proxy's p0, p1, ... (its hash of the order
-- id, masked by the number of partitions, picks it).
CREATE TABLE shard.me (part int NOT NULL);
INSERT INTO shard.me VALUES (:part);
ALTER TABLE shard.me OWNER TO order_app;
SET ROLE order_app;

-- Scenario 1, sharded: the order and its message, one transaction in the
-- order's partition.  The message is sent first; a declined payment then
-- fails the INSERT and takes the message with it.
CREATE FUNCTION shard.place_order(i_order_id bigint, i_user_id int, i_items jsonb,
								  i_payment text)
RETURNS TABLE (part int, msg_id bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	msg_id := txmq.send('orders',
						jsonb_build_object('order_id', i_order_id, 'user_id', i_user_id,
										   'items', i_items),
						key => i_user_id::text);
	INSERT INTO orders.orders (order_id, user_id, items, payment)
	VALUES (i_order_id, i_user_id, i_items, i_payment);
	part := (SELECT m.part FROM shard.me m);
	RETURN NEXT;
END
$$;

-- Scenario 2, sharded: the half message goes to the partition of its order
-- id; the order itself is in the order database, as unsharded.
CREATE FUNCTION shard.send_half(i_order_id bigint, i_topic text, i_payload jsonb,
								i_user_id int, i_local_xid xid8)
RETURNS TABLE (part int, msg_id bigint)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT m.part, txmq.send_half(i_topic, i_payload, key => i_user_id::text,
								  producer_group => 'order-service',
								  local_xid => i_local_xid)
	  FROM shard.me m
$$;

-- The producer's verdict.  A msg_id names a message only within its own
-- database: the order id routes the verdict to the partition that holds it.
CREATE FUNCTION shard.commit_half(i_order_id bigint, i_msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN PERFORM txmq.commit_half(i_msg_id); RETURN true; END $$;

CREATE FUNCTION shard.rollback_half(i_order_id bigint, i_msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN PERFORM txmq.rollback_half(i_msg_id); RETURN true; END $$;
RESET ROLE;
