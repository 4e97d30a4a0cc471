-- core_poll: the procedures txmq.wait and txmq.poll, long polls that hold
-- no snapshot while they sleep (their sleeping is tested in TAP
-- 022_snapshotless_poll): arguments, results, and where they may be called.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err

SELECT txmq.create_queue('core_p', lease => '1 min');
-- (message ids depend on the tests before: none is shown)
SELECT txmq.send('core_p', '{"n": 1}', key => 'k1') AS m1 \gset

-- ---- bad input: an error, and nothing taken ----
CALL txmq.poll('core_p', 'core_p', 0);
CALL txmq.poll('core_p', 'core_p', NULL);
CALL txmq.poll('core_p', 'core_p', 10001);
CALL txmq.poll('core_p', 'core_p', lease => '9 ms');
CALL txmq.poll('core_p', 'core_p', lease => '12 h 1 s');
CALL txmq.poll('core_p', 'core_p', wait => '-1 s');
CALL txmq.poll('core_p', 'core_p', wait => '1 h 1 s');
CALL txmq.poll('core_p', 'nope');
CALL txmq.poll('core_nope', 'core_p');
CALL txmq.poll(NULL, 'core_p');
CALL txmq.poll('core_p', NULL);
CALL txmq.wait('core_p', 'core_p', '-1 s');
CALL txmq.wait('core_p', 'core_p', '1 h 1 s');
CALL txmq.wait('core_p', 'nope');
CALL txmq.wait('core_nope', 'core_p');
CALL txmq.wait(NULL, 'core_p');
-- not in a transaction block, nor from a function (atomic contexts: the
-- procedure could not end the transaction before it sleeps)
BEGIN;
CALL txmq.wait('core_p', 'core_p', '0');
ROLLBACK;
BEGIN;
CALL txmq.poll('core_p', 'core_p', wait => '0');
ROLLBACK;
SELECT pg_temp.core_err($$CALL txmq.wait('core_p', 'core_p', '0')$$);
-- a DO block outside a transaction block is not atomic: it may
DO $$DECLARE r boolean; BEGIN CALL txmq.wait('core_p', 'core_p', '0', r); RAISE NOTICE 'ready: %', r; END$$;
SELECT count(*) AS still_ready
  FROM txmq.msg WHERE vt <= now() AND NOT leased;

-- ---- wait: says whether a receive could take a message ----
CALL txmq.wait('core_p', 'core_p', '0');
CALL txmq.wait('core_p', 'core_p');
-- it only looked: the message is still there, not leased, attempt 0
SELECT msg_id = :m1 AS first, attempt, leased FROM txmq.msg;

-- a leased message is not ready: wait sleeps out its timeout
SELECT msg_id = :m1 AS first, attempt FROM txmq.receive('core_p', 'core_p');
SELECT clock_timestamp() AS t0 \gset
CALL txmq.wait('core_p', 'core_p', '200 ms');
SELECT clock_timestamp() - :'t0' >= interval '190 ms' AS waited_out;
SELECT txmq.ack('core_p', 'core_p', :m1);

-- a delayed message makes it sleep until the message is due, not until
-- the timeout
SELECT txmq.send('core_p', '{"n": 2}', delay => '300 ms') > :m1 AS sent;
CALL txmq.wait('core_p', 'core_p', '0');
SELECT clock_timestamp() AS t0 \gset
CALL txmq.wait('core_p', 'core_p', '20 s');
SELECT clock_timestamp() - :'t0' < interval '10 s' AS woke_when_due;

-- ---- poll: takes up to max_messages with a lease ----
-- (a procedure that shows what poll returned without its timestamps; in
-- PL/pgSQL, from a procedure CALLed outside a transaction block)
CREATE PROCEDURE pg_temp.core_poll(max int, lease interval, wait interval,
								   ack boolean, INOUT got text DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
	msgs txmq.delivery[];
	d txmq.delivery;
BEGIN
	CALL txmq.poll('core_p', 'core_p', max, lease, wait, msgs);
	got := '';
	FOREACH d IN ARRAY msgs LOOP
		got := got || format('%s attempt %s, lease %s; ',
							 d.payload, d.attempt,
							 d.lease_expires_at - clock_timestamp()
							   > coalesce(lease, '1 min') - interval '5 s');
		IF ack THEN
			PERFORM txmq.ack('core_p', 'core_p', d.msg_id);
		END IF;
	END LOOP;
END $$;
SELECT txmq.send('core_p', '{"n": 3}') > :m1 AS sent;
SELECT txmq.send('core_p', '{"n": 4}') > :m1 AS sent;
CALL pg_temp.core_poll(2, '5 min', '0', false);
SELECT payload, attempt, leased, vt > now() + interval '4 min' AS for_5_min
  FROM txmq.msg ORDER BY msg_id;
-- the rest, with the subscription's lease
CALL pg_temp.core_poll(10, NULL, '0', true);
-- nothing left: an empty array, after the wait
SELECT clock_timestamp() AS t0 \gset
CALL pg_temp.core_poll(10, NULL, '200 ms', true);
SELECT clock_timestamp() - :'t0' >= interval '190 ms' AS waited_out;
CALL txmq.poll('core_p', 'core_p', wait => '0');
-- a lease that runs out: poll waits for it and gets the message again
SELECT txmq.send('core_p', '{"n": 5}') > :m1 AS sent;
CALL pg_temp.core_poll(10, '100 ms', '0', false);
CALL pg_temp.core_poll(10, NULL, '20 s', true);
SELECT count(*) AS acked_all FROM txmq.msg WHERE payload->>'n' IN ('4', '5');

-- privileges: receiving needs the receive privilege
CREATE ROLE regress_core_poller;
SET ROLE regress_core_poller;
CALL txmq.wait('core_p', 'core_p', '0');
CALL txmq.poll('core_p', 'core_p', wait => '0');
RESET ROLE;
DROP ROLE regress_core_poller;

SELECT txmq.drop_topic('core_p', force => true);
