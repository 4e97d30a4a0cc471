-- shop.sql: the "shop" database -- the cart store and the demo's
-- bookkeeping.  queues.sql then adds txmq, its topics and the scenario-1
-- order store: to this database, or (sharded) to every partition instead.
--
-- Run as a superuser:  psql -d shop -v checkouts=N -v order_pw=... -v cart_pw=... -f shop.sql
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION dblink;        -- the report reads the other databases with it

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
	part int NOT NULL DEFAULT 0,  -- the partition the message came from (sharded)
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
	part int NOT NULL DEFAULT 0,      -- the partition holding it (sharded)
	msg_id bigint NOT NULL,           -- msg_ids are per database
	topic text NOT NULL,
	order_id bigint NOT NULL,
	user_id int NOT NULL,
	resolved_by text,                 -- 'producer: commit' / 'producer: rollback';
	                                  -- null: left to check-back
	PRIMARY KEY (part, msg_id)
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

