-- report.sql: what happened, and are the order stores and the cart store
-- consistent?  Run as a superuser in the shop database:
--   psql -d shop -v orders_conn='dbname=orders ...' -v scenarios="'same-db', ..." \
--        -v queue_conns='{"dbname=shop ...", ...}' -v sharded=false -f report.sql
-- queue_conns: the databases holding txmq and the scenario-1 orders, the
-- shop itself or (sharded) every partition, in partition order.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;

CREATE TEMP TABLE scenario (name, topic, ord) AS
VALUES ('same-db', 'orders', 1), ('half-check', 'orders_remote', 2),
	   ('half-xid', 'orders_xid', 3);
DELETE FROM scenario WHERE name NOT IN (:scenarios);

CREATE TEMP TABLE queue_db AS
SELECT (n - 1)::int AS part, conn
  FROM unnest(:'queue_conns'::text[]) WITH ORDINALITY AS u(conn, n);

-- Every order, from every order store.
CREATE TEMP TABLE all_orders AS
SELECT q.part, t.order_id, t.user_id
  FROM queue_db q,
	   dblink(q.conn, 'SELECT order_id, user_id FROM orders.orders')
	AS t(order_id bigint, user_id int)
UNION ALL
SELECT NULL, * FROM dblink(:'orders_conn', 'SELECT order_id, user_id FROM orders')
	AS t(order_id bigint, user_id int);

-- The dead-letter queues.
CREATE TEMP TABLE parked AS
SELECT s.name AS scenario, q.part, d.msg_id, (d.payload ->> 'order_id')::bigint AS order_id,
	   d.attempts, d.last_error
  FROM queue_db q,
	   dblink(q.conn, $$SELECT t, d.msg_id, d.payload, d.attempts, d.last_error
						   FROM unnest(ARRAY['orders', 'orders_remote', 'orders_xid']) AS t,
								txmq.dead_letters(t, 'cart') AS d$$)
	AS d(topic text, msg_id bigint, payload jsonb, attempts int, last_error text)
  JOIN scenario s ON s.topic = d.topic;

-- txmq's own counters, per partition and summed.
CREATE TEMP TABLE part_counters AS
SELECT s.name AS scenario, q.part, st.*
  FROM queue_db q,
	   dblink(q.conn, $$SELECT topic, sent, checks, checks_commit, checks_rollback,
								checks_unknown, half_pending
						   FROM txmq.stats WHERE subscription = 'cart'$$)
	AS st(topic text, sent bigint, checks bigint, checks_commit bigint,
		  checks_rollback bigint, checks_unknown bigint, half_pending bigint)
  JOIN scenario s ON s.topic = st.topic;
CREATE TEMP TABLE counters AS
SELECT scenario, sum(sent) AS sent, sum(checks) AS checks,
	   sum(checks_commit) AS checks_commit, sum(checks_rollback) AS checks_rollback,
	   sum(checks_unknown) AS checks_unknown, sum(half_pending) AS half_unresolved
  FROM part_counters GROUP BY scenario;

-- Per checkout: did it become an order, what is left of the cart.
CREATE TEMP TABLE checkout AS
SELECT c.scenario, c.user_id, c.lines, c.outcome, o.order_id,
	   (SELECT count(*) FROM cart.cart_line l WHERE l.user_id = c.user_id) AS lines_left,
	   EXISTS (SELECT 1 FROM parked p WHERE p.order_id = o.order_id) AS parked
  FROM demo.checkout c
  LEFT JOIN all_orders o ON o.user_id = c.user_id
 WHERE c.scenario IN (SELECT name FROM scenario);

-- Per message the cart service handled: how often it came.
CREATE TEMP TABLE handled AS
SELECT s.name AS scenario, d.part, d.msg_id, max(d.attempt) AS attempts,
	   count(*) FILTER (WHERE d.lines_removed = 0) AS found_nothing
  FROM cart.deliveries d JOIN scenario s ON s.topic = d.topic
 GROUP BY 1, 2, 3;

CREATE TEMP TABLE half AS
SELECT s.name AS scenario, h.resolved_by,
	   EXISTS (SELECT 1 FROM all_orders o WHERE o.order_id = h.order_id) AS order_exists
  FROM demo.half_log h JOIN scenario s ON s.topic = h.topic;

\echo
\echo '=== what happened'
-- (metric, scenario, value) triples, shown as one column per scenario;
-- '-' where a metric does not apply (no half messages in scenario 1).
WITH m (ord, metric, scenario, value) AS (
	SELECT 1, 'checkouts', scenario, count(*)::text FROM checkout GROUP BY 3
	UNION ALL SELECT 2, 'orders created', scenario, count(order_id)::text
		FROM checkout GROUP BY 3
	UNION ALL SELECT 3, 'payment declined (no order)', scenario,
		count(*) FILTER (WHERE outcome = 'declined')::text FROM checkout GROUP BY 3
	UNION ALL SELECT 4, 'order services killed (SIGKILL)', name,
		(SELECT count(*) FROM demo.kills k
		  WHERE k.scenario = s.name AND k.process LIKE 'order-%')::text
		FROM scenario s
	UNION ALL SELECT 5, 'messages sent (txmq.stats.sent)', scenario, sent::text
		FROM counters
	UNION ALL SELECT 6, 'half messages sent', scenario, count(*)::text
		FROM half GROUP BY 3
	UNION ALL SELECT 7, '  committed by the producer', scenario,
		count(*) FILTER (WHERE resolved_by = 'producer: commit')::text
		FROM half GROUP BY 3
	UNION ALL SELECT 8, '  rolled back by the producer', scenario,
		count(*) FILTER (WHERE resolved_by = 'producer: rollback')::text
		FROM half GROUP BY 3
	UNION ALL SELECT 9, '  resolved by check-back: commit', scenario,
		count(*) FILTER (WHERE resolved_by IS NULL AND order_exists)::text
		FROM half GROUP BY 3
	UNION ALL SELECT 10, '  resolved by check-back: rollback', scenario,
		count(*) FILTER (WHERE resolved_by IS NULL AND NOT order_exists)::text
		FROM half GROUP BY 3
	UNION ALL SELECT 11, '  still unresolved (txmq.stats)', c.scenario,
		c.half_unresolved::text FROM counters c JOIN half h USING (scenario)
		GROUP BY 2, 3, 4
	UNION ALL SELECT 12, 'check-backs: commit / rollback / unknown', c.scenario,
		concat_ws(' / ', checks_commit, checks_rollback, checks_unknown)
		FROM counters c JOIN half h USING (scenario) GROUP BY 2, 3, 4
	UNION ALL SELECT 13, 'cart services killed (SIGKILL)', name,
		(SELECT count(*) FROM demo.kills k
		  WHERE k.scenario = s.name AND k.process LIKE 'cart-%')::text
		FROM scenario s
	UNION ALL SELECT 14, 'messages handled by the cart service', scenario,
		count(*)::text FROM handled GROUP BY 3
	UNION ALL SELECT 15, 'redeliveries', scenario, sum(attempts - 1)::text
		FROM handled GROUP BY 3
	UNION ALL SELECT 16, '  of which found the work done already', scenario,
		sum(found_nothing)::text FROM handled GROUP BY 3
	UNION ALL SELECT 17, 'dead letters', name,
		(SELECT count(*) FROM parked p WHERE p.scenario = s.name)::text
		FROM scenario s
	UNION ALL SELECT 18, 'carts cleared', scenario,
		count(*) FILTER (WHERE order_id IS NOT NULL AND lines_left = 0)::text
		FROM checkout GROUP BY 3
), cells AS (
	SELECT k.ord, k.metric, s.ord AS col, coalesce(m.value, '-') AS v
	  FROM (SELECT DISTINCT ord, metric FROM m) AS k
	 CROSS JOIN scenario s
	  LEFT JOIN m ON m.ord = k.ord AND m.scenario = s.name
)
SELECT metric AS " ",
	   max(v) FILTER (WHERE col = 1) AS "same-db",
	   max(v) FILTER (WHERE col = 2) AS "half+check",
	   max(v) FILTER (WHERE col = 3) AS "half+xid"
  FROM cells GROUP BY ord, metric ORDER BY ord;

\echo '=== dead-letter queues (txmq.dead_letters): parked for a person'
\if :sharded
SELECT scenario, part, msg_id, order_id, attempts, last_error FROM parked ORDER BY 1, 2, 3;

\echo '=== partitions: messages sent and handled in each, and by which cart service'
SELECT c.part AS partition, c.scenario,
	   c.sent AS "sent (txmq.stats)",
	   (SELECT count(*) FROM handled h WHERE h.part = c.part AND h.scenario = c.scenario)
		   AS handled,
	   (SELECT string_agg(consumer || ' ' || n, ', ' ORDER BY consumer)
		  FROM (SELECT d.consumer, count(*) AS n
				  FROM cart.deliveries d JOIN scenario s ON s.topic = d.topic
				 WHERE d.part = c.part AND s.name = c.scenario
				 GROUP BY 1) AS x) AS "deliveries by consumer"
  FROM part_counters c JOIN scenario s ON s.name = c.scenario
 ORDER BY s.ord, c.part;
\else
SELECT scenario, msg_id, order_id, attempts, last_error FROM parked ORDER BY 1, 2;
\endif

-- The invariants.
CREATE TEMP TABLE inconsistency AS
SELECT scenario, 'order ' || order_id || ': cart lines still there' AS what
  FROM checkout WHERE order_id IS NOT NULL AND lines_left > 0 AND NOT parked
UNION ALL
SELECT c.scenario, 'order ' || r.order_id || ': cart lines removed, but no such order'
  FROM cart.removed r JOIN checkout c USING (user_id)
 WHERE NOT EXISTS (SELECT 1 FROM all_orders o
					WHERE o.order_id = r.order_id AND o.user_id = r.user_id)
UNION ALL
SELECT scenario, 'user ' || user_id || ': no order, but ' || (lines - lines_left)
	   || ' cart lines gone'
  FROM checkout WHERE order_id IS NULL AND lines_left <> lines;

\echo '=== invariants'
\echo '  1. every order''s cart lines are gone (or its message is a dead letter, above)'
\echo '  2. no cart line was removed for an order that does not exist'
SELECT scenario, what AS inconsistency FROM inconsistency ORDER BY 1, 2;
SELECT count(*) AS n FROM inconsistency \gset
\echo inconsistencies: :n
