-- core_attempts: delivery attempts are counted once per delivery, also
-- when transactions abort (src/xact.c): a rolled-back receive that only
-- dead-lettered an exhausted message counts no attempt; a stale nack or
-- reject keeps the attempts that other consumers' aborts counted; an
-- attempt rolled back to a savepoint counts once.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err

-- ---- a rolled-back receive that dead-letters counts no attempt ----
SELECT txmq.create_queue('core_a1', max_deliveries => 1);
SELECT txmq.send('core_a1', '"poison"') AS id \gset
BEGIN;
SELECT attempt FROM txmq.receive('core_a1', 'core_a1');
ROLLBACK;
-- its one attempt is used: this receive dead-letters it, then rolls back
BEGIN;
SELECT count(*) AS delivered FROM txmq.receive('core_a1', 'core_a1');
SELECT msg_id = :id AS dead_in_tx, attempts FROM txmq.dead_letters('core_a1', 'core_a1');
ROLLBACK;
BEGIN;
SELECT count(*) AS delivered FROM txmq.receive('core_a1', 'core_a1');
ROLLBACK;
SELECT count(*) AS delivered FROM txmq.receive('core_a1', 'core_a1');
SELECT msg_id = :id AS dead, attempts FROM txmq.dead_letters('core_a1', 'core_a1');
-- the same in a savepoint
SELECT txmq.redrive('core_a1', 'core_a1') AS redriven;
BEGIN;
SELECT attempt FROM txmq.receive('core_a1', 'core_a1');
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT count(*) AS delivered FROM txmq.receive('core_a1', 'core_a1');
ROLLBACK TO s;
SELECT count(*) AS delivered FROM txmq.receive('core_a1', 'core_a1');
COMMIT;
SELECT msg_id = :id AS dead, attempts FROM txmq.dead_letters('core_a1', 'core_a1');

-- ---- max_deliveries 3: three aborted attempts, then dead at 3 ----
SELECT txmq.create_queue('core_a3', max_deliveries => 3);
SELECT txmq.send('core_a3', '"poison"') AS id \gset
BEGIN; SELECT attempt FROM txmq.receive('core_a3', 'core_a3'); ROLLBACK;
BEGIN; SELECT attempt FROM txmq.receive('core_a3', 'core_a3'); ROLLBACK;
BEGIN; SELECT attempt FROM txmq.receive('core_a3', 'core_a3'); ROLLBACK;
BEGIN; SELECT count(*) AS delivered FROM txmq.receive('core_a3', 'core_a3'); ROLLBACK;
BEGIN; SELECT count(*) AS delivered FROM txmq.receive('core_a3', 'core_a3'); ROLLBACK;
SELECT count(*) AS delivered FROM txmq.receive('core_a3', 'core_a3');
SELECT attempts FROM txmq.dead_letters('core_a3', 'core_a3');

-- ---- a stale nack keeps the attempts of aborted receives ----
SELECT txmq.create_queue('core_as', max_deliveries => 10);
SELECT txmq.send('core_as', '"stale"') AS id \gset
SELECT attempt FROM txmq.receive('core_as', 'core_as', lease => '50 ms');
SELECT pg_sleep(0.1);
-- another consumer receives it (attempt 2) and rolls back
BEGIN; SELECT attempt FROM txmq.receive('core_as', 'core_as'); ROLLBACK;
-- the first consumer's lease ran out, but it still holds it by id
SELECT txmq.nack('core_as', 'core_as', :id, delay => '0') AS stale_nacked;
SELECT attempt AS carried_in_row FROM txmq.msg WHERE msg_id = :id;
SELECT attempt FROM txmq.receive('core_as', 'core_as', lease => '50 ms');
SELECT pg_sleep(0.1);
BEGIN; SELECT attempt FROM txmq.receive('core_as', 'core_as'); ROLLBACK;
-- a stale nack that rolls back gives the attempts back
BEGIN;
SELECT txmq.nack('core_as', 'core_as', :id, delay => '0') AS stale_nacked;
ROLLBACK;
SELECT attempt FROM txmq.receive('core_as', 'core_as', lease => '50 ms');
SELECT pg_sleep(0.1);
BEGIN; SELECT attempt FROM txmq.receive('core_as', 'core_as'); ROLLBACK;
-- a stale reject: the dead letter has every attempt
SELECT txmq.reject('core_as', 'core_as', :id, 'stale') AS stale_rejected;
SELECT attempts, last_error FROM txmq.dead_letters('core_as', 'core_as');

-- ---- savepoints: the attempt in a rolled-back savepoint counts once ----
SELECT txmq.redrive('core_as', 'core_as') AS redriven;
BEGIN;
SELECT attempt FROM txmq.receive('core_as', 'core_as');
SELECT txmq.nack('core_as', 'core_as', :id, delay => '0') AS nacked;
SAVEPOINT s;
SELECT attempt FROM txmq.receive('core_as', 'core_as');
ROLLBACK TO s;
COMMIT;
-- 1 delivered and nacked, 2 rolled back: the next is 3
SELECT attempt FROM txmq.receive('core_as', 'core_as');

-- ---- a nack rolled back to a savepoint leaves the lease as it was ----
SELECT txmq.send('core_as', '"lease"') AS lid \gset
BEGIN;
SELECT attempt FROM txmq.receive('core_as', 'core_as', lease => '1 h');
SAVEPOINT s;
SELECT txmq.nack('core_as', 'core_as', :lid, delay => '0') AS nacked;
ROLLBACK TO s;
COMMIT;
SELECT leased, vt > now() + interval '50 min' AS lease_of_1h
  FROM txmq.msg WHERE msg_id = :lid;

-- ---- clean up ----
SELECT txmq.purge('core_as') + txmq.purge('core_a1') + txmq.purge('core_a3') AS purged;
SELECT txmq.drop_topic('core_as'), txmq.drop_topic('core_a1'), txmq.drop_topic('core_a3');
