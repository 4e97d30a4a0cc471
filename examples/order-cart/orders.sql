-- orders.sql: the "orders" database of scenario 2, a different database
-- from the one holding the cart store and txmq.
--
-- Run as a superuser:  psql -d orders -f orders.sql
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE SEQUENCE order_id_seq START 1000001;   -- scenario 1 ids stay small
CREATE TABLE orders (
	order_id bigint PRIMARY KEY,
	user_id int NOT NULL UNIQUE,
	items jsonb NOT NULL,
	payment text NOT NULL CONSTRAINT payment_accepted CHECK (payment <> 'declined'),
	created_at timestamptz NOT NULL DEFAULT now()
);

/*
 * Did order `id` commit?  Called by the check-back (over dblink).
 *
 * 'commit'   the order exists.
 * 'unknown'  it does not exist yet, but a producer is still working on it:
 *            producers hold the advisory lock `id` (in this database) from
 *            before send_half until after commit_half / rollback_half.  The
 *            lock goes away with the producer's connection when it dies.
 * 'rollback' it does not exist and nobody is working on it, so it never will.
 *
 * The second look after taking the lock matters: the producer may have
 * committed and let go of the lock between our first look and the lock.  A
 * plpgsql statement in READ COMMITTED sees what committed before it started.
 */
CREATE FUNCTION order_status(id bigint) RETURNS text
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM orders WHERE order_id = id) THEN
		RETURN 'commit';
	END IF;
	IF NOT pg_try_advisory_xact_lock(id) THEN
		RETURN 'unknown';
	END IF;
	IF EXISTS (SELECT 1 FROM orders WHERE order_id = id) THEN
		RETURN 'commit';
	END IF;
	RETURN 'rollback';
END
$$;

ALTER SEQUENCE order_id_seq OWNER TO order_app;
ALTER TABLE orders OWNER TO order_app;
ALTER FUNCTION order_status(bigint) OWNER TO order_app;
