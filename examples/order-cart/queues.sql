-- queues.sql: txmq, the demo's topics and subscriptions, scenario 2's check
-- function and the scenario-1 order store, which lives with txmq.  Run in
-- the shop database (unsharded), or in every partition database of the
-- sharded demo (partition.sql adds what the proxy calls there).  The roles
-- come from shop.sql: roles are the cluster's, not a database's.
--
-- Run as a superuser:  psql -d shop -v order_pw=... -f queues.sql
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION txmq;
CREATE EXTENSION IF NOT EXISTS dblink;   -- the check function of scenario 2 (shop.sql has it too)

---------------------------------------------------------------------------
-- Scenario 1: the order store in the same database as txmq.
---------------------------------------------------------------------------
CREATE SCHEMA orders AUTHORIZATION order_app;
CREATE SEQUENCE orders.order_id_seq;
CREATE TABLE orders.orders (
	order_id bigint PRIMARY KEY,
	user_id int NOT NULL UNIQUE,
	items jsonb NOT NULL,
	payment text NOT NULL CONSTRAINT payment_accepted CHECK (payment <> 'declined'),
	created_at timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE orders.order_id_seq OWNER TO order_app;
ALTER TABLE orders.orders OWNER TO order_app;

---------------------------------------------------------------------------
-- Scenario 2's check function.  It answers "did order N commit?" by asking
-- the order database (over dblink), not the producer that sent the message.
---------------------------------------------------------------------------
CREATE SCHEMA order_app AUTHORIZATION order_app;
-- Creating topics is not for everybody (see the txmq README, Privileges).
GRANT EXECUTE ON FUNCTION txmq.create_topic TO order_app;
SET ROLE order_app;

-- dblink as a non-superuser must authenticate with a password.
CREATE TABLE order_app.orders_db (conninfo text NOT NULL);
INSERT INTO order_app.orders_db
VALUES (format('host=127.0.0.1 port=%s dbname=orders user=order_app password=%s',
			   current_setting('port'), :'order_pw'));

CREATE FUNCTION order_app.check_order(m txmq.message)
RETURNS txmq.check_result
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	order_id bigint := (m.payload ->> 'order_id')::bigint;
	answer text;
BEGIN
	-- order_status() lives in the order database: see orders.sql.
	-- order_id is a bigint, so format() can not inject anything here.
	SELECT t.answer INTO answer
	  FROM public.dblink((SELECT conninfo FROM order_app.orders_db),
						 format('SELECT order_status(%s)', order_id)) AS t(answer text);
	RAISE LOG 'txmq-demo check-back: message % (order %) -> %', m.msg_id, order_id, answer;
	RETURN answer::txmq.check_result;
END
$$;

---------------------------------------------------------------------------
-- Topics and subscriptions, owned by order_app.
---------------------------------------------------------------------------
-- Scenario 1: order row + txmq.send in one transaction.
SELECT txmq.create_topic('orders');
-- Scenario 2: half messages, resolved by the producer or by check_order().
SELECT txmq.create_topic('orders_remote',
						 check_function => 'order_app.check_order(txmq.message)',
						 check_after => '1 s', check_interval => '1 s',
						 max_checks => 60);
-- Scenario 2b: half messages carrying the order transaction's xid.
SELECT txmq.create_topic('orders_xid', check_after => '1 s',
						 check_interval => '1 s', max_checks => 60);

SELECT txmq.create_subscription(t, 'cart', max_deliveries => 4, lease => '2 s',
								backoff_base => '200 ms', backoff_max => '1 s'),
	   txmq.grant(t, 'cart_app', 'receive', 'cart')
  FROM unnest(ARRAY['orders', 'orders_remote', 'orders_xid']) AS t;
RESET ROLE;
