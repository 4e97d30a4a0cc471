-- proxy.sql: the proxy database of the sharded demo (`make demo SHARDS=N`).
-- The order service calls these functions here; PL/Proxy runs each in the
-- partition that RUN ON picks, with the same name and argument types
-- (partition.sql), and returns its result.
--
-- Run as a superuser:  psql -d shop_proxy -v shards=N -v port=P -v order_pw=... -f proxy.sql
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION plproxy;

-- The cluster: partitions p0 .. p(N-1), N a power of 2 (PL/Proxy masks
-- the hash with N - 1).  Partition i is the database shop_p<i> of this
-- same PostgreSQL cluster; a real one would name other hosts.
-- (\gexec runs the statement built here: its option list depends on N)
SELECT format('CREATE SERVER shop_cluster FOREIGN DATA WRAPPER plproxy OPTIONS (%s)',
			  string_agg(format('%I %L', 'p' || i,
								format('host=127.0.0.1 port=%s dbname=shop_p%s', :'port', i)),
						 ', ' ORDER BY i))
  FROM generate_series(0, :shards - 1) AS i
\gexec
-- The partitions see the order service's role, with its password.
CREATE USER MAPPING FOR order_app SERVER shop_cluster
	OPTIONS (user 'order_app', password :'order_pw');
GRANT USAGE ON FOREIGN SERVER shop_cluster TO order_app;

CREATE SCHEMA shard AUTHORIZATION order_app;
-- Order ids of scenario 1 must be unique over all partitions, and known
-- before the order is placed: they route it.  One sequence, here.
CREATE SEQUENCE shard.order_id_seq;
ALTER SEQUENCE shard.order_id_seq OWNER TO order_app;

-- (plproxy is not a trusted language: a superuser creates the functions;
-- PL/Proxy connects as the caller, through the caller's user mapping)

-- Routed by the order id: the order and its message in its partition.
CREATE FUNCTION shard.place_order(order_id bigint, user_id int, items jsonb,
								  payment text)
RETURNS TABLE (part int, msg_id bigint)
LANGUAGE plproxy AS $$
	CLUSTER 'shop_cluster';
	RUN ON hashint8(order_id);
$$;

CREATE FUNCTION shard.send_half(order_id bigint, topic text, payload jsonb,
								user_id int, local_xid xid8)
RETURNS TABLE (part int, msg_id bigint)
LANGUAGE plproxy AS $$
	CLUSTER 'shop_cluster';
	RUN ON hashint8(order_id);
$$;

CREATE FUNCTION shard.commit_half(order_id bigint, msg_id bigint)
RETURNS boolean
LANGUAGE plproxy AS $$
	CLUSTER 'shop_cluster';
	RUN ON hashint8(order_id);
$$;

CREATE FUNCTION shard.rollback_half(order_id bigint, msg_id bigint)
RETURNS boolean
LANGUAGE plproxy AS $$
	CLUSTER 'shop_cluster';
	RUN ON hashint8(order_id);
$$;
