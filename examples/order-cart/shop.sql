-- shop.sql: the "shop" database -- the cart store, txmq, and (scenario 1)
-- an order store living in the same database.
--
-- Run as a superuser:  psql -d shop -v checkouts=N -v order_pw=... -v cart_pw=... -f shop.sql
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION txmq;
CREATE EXTENSION dblink;        -- used by the check function of scenario 2

-- Two applications, neither of them a superuser.  order_app owns the topics
-- (and so the check function runs as order_app); cart_app only consumes.
CREATE ROLE order_app LOGIN PASSWORD :'order_pw';
CREATE ROLE cart_app LOGIN PASSWORD :'cart_pw';

---------------------------------------------------------------------------
-- The cart store (owned by the cart service).
---------------------------------------------------------------------------
CREATE SCHEMA cart AUTHORIZATION cart_app;

CREATE TABLE cart.cart_line (
	user_id int NOT NULL,
	sku text NOT NULL,
	qty int NOT NULL,
	PRIMARY KEY (user_id, sku)
);

-- Ground truth: every cart line the cart service removed, and for which
-- order.  Written in the same transaction as the DELETE, so it can not lie.
CREATE TABLE cart.removed (
	user_id int NOT NULL,
	sku text NOT NULL,
	order_id bigint NOT NULL,
	msg_id bigint NOT NULL,
	removed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (user_id, sku)
);

-- One row per delivery the cart service handled to the end (for the report:
-- redeliveries, duplicates, failures).
CREATE TABLE cart.deliveries (
	topic text NOT NULL,
	msg_id bigint NOT NULL,
	attempt int NOT NULL,
	consumer text NOT NULL,
	lines_removed int,            -- null: the work failed
	error text,
	at timestamptz NOT NULL DEFAULT clock_timestamp()
);
ALTER TABLE cart.cart_line OWNER TO cart_app;
ALTER TABLE cart.removed OWNER TO cart_app;
ALTER TABLE cart.deliveries OWNER TO cart_app;
GRANT USAGE ON SCHEMA cart TO order_app;
GRANT SELECT ON cart.cart_line TO order_app;   -- checkout reads the cart

---------------------------------------------------------------------------
-- Scenario 1: the order store in the same database as the cart store.
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
-- Demo bookkeeping: the checkouts users asked for (order services claim
-- them one by one) and the half messages the producers sent.
---------------------------------------------------------------------------
CREATE SCHEMA demo;
CREATE TABLE demo.kills (              -- written by the demo driver
	scenario text NOT NULL,
	process text NOT NULL
);
CREATE TABLE demo.checkout (
	user_id int PRIMARY KEY,
	scenario text NOT NULL,
	lines int NOT NULL DEFAULT 0,     -- cart lines at the start
	worker text,                      -- order service that claimed it
	outcome text,                     -- 'ordered', 'declined'; null: producer killed
	order_id bigint
);
CREATE TABLE demo.half_log (
	msg_id bigint PRIMARY KEY,
	topic text NOT NULL,
	order_id bigint NOT NULL,
	user_id int NOT NULL,
	resolved_by text                  -- 'producer: commit' / 'producer: rollback';
	                                  -- null: left to check-back
);
GRANT USAGE ON SCHEMA demo TO order_app, cart_app;
GRANT SELECT, UPDATE ON demo.checkout TO order_app;
GRANT SELECT, INSERT, UPDATE ON demo.half_log TO order_app;

-- :checkouts users per scenario, each with 1 to 3 cart lines.
INSERT INTO demo.checkout (user_id, scenario)
SELECT s.base + i, s.name
  FROM (VALUES (0, 'same-db'), (100000, 'half-check'), (200000, 'half-xid')) AS s(base, name),
       generate_series(1, :checkouts) AS i;
INSERT INTO cart.cart_line (user_id, sku, qty)
SELECT c.user_id, 'sku-' || (c.user_id * 7 + j) % 100, 1 + j
  FROM demo.checkout c, generate_series(0, c.user_id % 3) AS j;
UPDATE demo.checkout c
   SET lines = (SELECT count(*) FROM cart.cart_line l WHERE l.user_id = c.user_id);

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
