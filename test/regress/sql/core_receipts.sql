-- core_receipts: every delivery has a receipt; ack, nack, reject and
-- extend_lease given one act only on the delivery it names (issue 14).
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err

SELECT txmq.create_queue('core_rc', notify => false, lease => '1 h',
						 backoff_base => '0', backoff_max => '0');
-- what a lease row of the queue holds now (the test runs as a superuser)
CREATE FUNCTION pg_temp.core_rc_row(id bigint, OUT leased boolean, OUT receipt uuid)
LANGUAGE sql AS $$
	SELECT m.leased, m.receipt FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
	 WHERE s.name = 'core_rc' AND m.msg_id = id $$;

-- ---- lease mode: the lease keeps the receipt receive returned ----
SELECT txmq.send('core_rc', '1') AS id \gset
SELECT msg_id = :id AS got, receipt IS NOT NULL AS has_receipt,
	   receipt::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS v4_uuid,
	   receipt AS r FROM txmq.receive('core_rc', 'core_rc') \gset
SELECT leased, receipt = :'r' AS same_receipt FROM pg_temp.core_rc_row(:id);
-- another receipt is stale: nothing happens
SELECT gen_random_uuid() AS other \gset
SELECT txmq.ack('core_rc', 'core_rc', :id, :'other') AS ack_other;
SELECT txmq.ack('core_rc', 'core_rc', ARRAY[:id]::bigint[], ARRAY[:'other']::uuid[]) AS ack_array_other;
SELECT txmq.nack('core_rc', 'core_rc', :id, receipt => :'other') AS nack_other;
SELECT txmq.reject('core_rc', 'core_rc', :id, receipt => :'other') AS reject_other;
SELECT txmq.extend_lease('core_rc', 'core_rc', :id, '2 h', :'other') AS extend_other;
SELECT leased, receipt = :'r' AS same_receipt FROM pg_temp.core_rc_row(:id);
SELECT in_flight, dead, acked, nacked FROM txmq.stats WHERE topic = 'core_rc';
-- its own receipt works, and the lease keeps it when extended
SELECT txmq.extend_lease('core_rc', 'core_rc', :id, '2 h', :'r') IS NOT NULL AS extended;
SELECT txmq.ack('core_rc', 'core_rc', :id, :'r') AS acked;
SELECT txmq.ack('core_rc', 'core_rc', :id, :'r') AS acked_twice;
SELECT in_flight, acked FROM txmq.stats WHERE topic = 'core_rc';

-- ---- a nacked message is no lease: its receipt settles nothing, and its
-- next delivery has a new one ----
SELECT txmq.send('core_rc', '2') AS id \gset
SELECT receipt AS r FROM txmq.receive('core_rc', 'core_rc') \gset
SELECT txmq.nack('core_rc', 'core_rc', :id, '0', 'again', :'r') AS nacked;
SELECT leased FROM pg_temp.core_rc_row(:id);
SELECT txmq.ack('core_rc', 'core_rc', :id, :'r') AS ack_after_nack;
SELECT receipt <> :'r' AS new_receipt, receipt AS r2 FROM txmq.receive('core_rc', 'core_rc') \gset
SELECT txmq.ack('core_rc', 'core_rc', :id, :'r') AS ack_first_receipt;
SELECT txmq.reject('core_rc', 'core_rc', :id, 'poison', :'r2') AS rejected;
SELECT msg_id = :id AS dead, last_error FROM txmq.dead_letters('core_rc', 'core_rc');
SELECT txmq.purge('core_rc');

-- ---- transactional mode: the ledger checks receipts ----
SELECT txmq.send('core_rc', '3') AS id \gset
BEGIN;
SELECT receipt AS r FROM txmq.receive('core_rc', 'core_rc') \gset
SELECT txmq.ack('core_rc', 'core_rc', :id, :'other') AS ack_other;
SELECT txmq.extend_lease('core_rc', 'core_rc', :id, '2 h', :'other') AS extend_other;
SELECT txmq.reject('core_rc', 'core_rc', :id, receipt => :'other') AS reject_other;
SELECT txmq.nack('core_rc', 'core_rc', :id, '0', receipt => :'r') AS nacked;
-- received again in the same transaction: a new delivery, a new receipt
SELECT receipt <> :'r' AS new_receipt, receipt AS r2 FROM txmq.receive('core_rc', 'core_rc') \gset
SELECT txmq.ack('core_rc', 'core_rc', :id, :'r') AS ack_first_receipt;
SELECT txmq.nack('core_rc', 'core_rc', :id, receipt => :'r') AS nack_first_receipt;
SELECT txmq.extend_lease('core_rc', 'core_rc', :id, '2 h', :'r2') IS NOT NULL AS extended;
COMMIT;
-- held at commit: leased under the receipt of the delivery held
SELECT leased, receipt = :'r2' AS same_receipt FROM pg_temp.core_rc_row(:id);
SELECT txmq.ack('core_rc', 'core_rc', ARRAY[:id]::bigint[], ARRAY[:'r']::uuid[]) AS ack_first_receipt;
SELECT txmq.ack('core_rc', 'core_rc', ARRAY[:id]::bigint[], ARRAY[:'r2']::uuid[]) AS acked;

-- ---- ack(array) pairs msg_ids and receipts; both modes at once ----
SELECT txmq.send('core_rc', '4') AS id1 \gset
SELECT txmq.send('core_rc', '5') AS id2 \gset
SELECT txmq.send('core_rc', '6') AS id3 \gset
SELECT array_agg(msg_id ORDER BY msg_id) AS ids, array_agg(receipt ORDER BY msg_id) AS rs
  FROM txmq.receive('core_rc', 'core_rc', 2) \gset
BEGIN;
SELECT receipt AS r3 FROM txmq.receive('core_rc', 'core_rc') \gset
-- the receipts swapped: neither matches its msg_id
SELECT txmq.ack('core_rc', 'core_rc', ARRAY[:id2, :id1]::bigint[], :'rs'::uuid[]) AS swapped;
SELECT txmq.ack('core_rc', 'core_rc', ARRAY[:id3, :id1, :id2]::bigint[],
				ARRAY[:'r3', (:'rs'::uuid[])[1], :'other']::uuid[]) AS two_of_three;
COMMIT;
SELECT txmq.ack('core_rc', 'core_rc', ARRAY[:id2]::bigint[], ARRAY[(:'rs'::uuid[])[2]]) AS third;
SELECT ready, in_flight FROM txmq.stats WHERE topic = 'core_rc';

-- ---- without a receipt: whatever the caller holds, as before 0.4 ----
SELECT txmq.send('core_rc', '7') AS id \gset
SELECT count(*) FROM txmq.receive('core_rc', 'core_rc');
SELECT txmq.extend_lease('core_rc', 'core_rc', :id, '2 h', NULL) IS NOT NULL AS extended;
SELECT txmq.ack('core_rc', 'core_rc', :id, NULL) AS acked;
SELECT txmq.send('core_rc', '8') AS id \gset
SELECT count(*) FROM txmq.receive('core_rc', 'core_rc');
SELECT txmq.ack('core_rc', 'core_rc', ARRAY[:id]::bigint[], NULL) AS acked;

-- ---- long polls return receipts too ----
SELECT txmq.send('core_rc', '9') AS id \gset
CREATE PROCEDURE pg_temp.core_rc_poll(INOUT got uuid DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
	msgs txmq.delivery[];
BEGIN
	CALL txmq.poll('core_rc', 'core_rc', 1, NULL, '0', msgs);
	got := msgs[1].receipt;
END $$;
CALL pg_temp.core_rc_poll() \gset
-- the lease written when the CALL committed
SELECT leased, receipt = :'got' AS same_receipt FROM pg_temp.core_rc_row(:id);
SELECT txmq.purge('core_rc');

-- ---- receipts differ: 1,000 deliveries (several of the blocks receipts
-- are cut from, across two receives and two transactions), none repeated ----
SELECT count(*) FROM txmq.send_batch('core_rc', array_fill('{}'::jsonb, ARRAY[1000]));
CREATE TEMP TABLE core_rc_receipts AS
	SELECT receipt FROM txmq.receive('core_rc', 'core_rc', 600);
INSERT INTO core_rc_receipts
	SELECT receipt FROM txmq.receive('core_rc', 'core_rc', 600);
SELECT count(*) AS deliveries, count(DISTINCT receipt) AS receipts,
	   bool_and(receipt::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$') AS v4_uuids
  FROM core_rc_receipts;
SELECT txmq.purge('core_rc');

-- ---- bad input: an error, nothing changed ----
SELECT txmq.send('core_rc', '10') AS id \gset
SELECT receipt AS r FROM txmq.receive('core_rc', 'core_rc') \gset
SELECT pg_temp.core_err($$SELECT txmq.ack('core_rc', 'core_rc', ARRAY[1, 2]::bigint[], ARRAY[gen_random_uuid()])$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_rc', 'core_rc', ARRAY[1]::bigint[], ARRAY[NULL]::uuid[])$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_rc', 'core_rc', ARRAY[1]::bigint[], ARRAY[[gen_random_uuid()]])$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_rc', 'core_rc', ARRAY[1]::bigint[], '{}'::uuid[])$$);
SELECT pg_temp.core_err($$SELECT txmq.ack('core_rc', 'core_rc', 1, 'not a uuid')$$);
SELECT pg_temp.core_err(format($$SELECT txmq.ack('core_rc', 'core_rc', NULL::bigint, %L)$$, :'r'));
SELECT leased, receipt = :'r' AS same_receipt FROM pg_temp.core_rc_row(:id);

SELECT txmq.drop_topic('core_rc', force => true);
