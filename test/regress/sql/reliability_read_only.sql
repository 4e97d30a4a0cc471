-- reliability_read_only: a read-only transaction (default_transaction_read_only,
-- SET TRANSACTION READ ONLY; what an operator does when the disk fills up,
-- and what a hot standby enforces, see test/t/071_standby_failover.pl) gets
-- a clear 25006 error from everything that changes a queue, reading still
-- works, and nothing changes.
CREATE FUNCTION pg_temp.ro_err(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE 'SELECT count(*) FROM (' || q || ') x' INTO n;
	RETURN 'ok, ' || n || ' row(s)';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE FUNCTION pg_temp.ro_snapshot() RETURNS text
LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(t::text, ',' ORDER BY topic_id) FROM txmq.topic t),
		(SELECT string_agg(t::text, ',' ORDER BY sub_id) FROM txmq.subscription t),
		(SELECT string_agg(t::text, ',' ORDER BY sub_id, msg_id) FROM txmq.msg t),
		(SELECT string_agg(t::text, ',' ORDER BY sub_id, msg_id) FROM txmq.dead_letter t),
		(SELECT string_agg(t::text, ',' ORDER BY msg_id) FROM txmq.half t),
		(SELECT string_agg(t::text, ',' ORDER BY t::text) FROM txmq.grants t),
		(SELECT last_value FROM txmq.msg_id_seq)))
$$;

SELECT txmq.create_queue('ro_q', lease => '1 h');
SELECT txmq.send('ro_q', '"leased"') AS leased_id \gset
SELECT txmq.send('ro_q', '"dead"') AS dead_id \gset
SELECT count(*) FROM txmq.send_batch('ro_q', ARRAY['"ready 1"', '"ready 2"']::jsonb[]);
SELECT payload FROM txmq.receive('ro_q', 'ro_q');
BEGIN;
SELECT payload FROM txmq.receive('ro_q', 'ro_q');
SELECT txmq.reject('ro_q', 'ro_q', :dead_id, 'poison');
COMMIT;
SELECT txmq.send_half('ro_q', '"half"', producer_group => 'ro_producers') AS half_id \gset
SELECT topic, ready, in_flight, dead, half_pending FROM txmq.stats WHERE topic = 'ro_q';
SELECT pg_temp.ro_snapshot() AS before \gset

CREATE TEMP TABLE ro_calls (ord serial, q text);
INSERT INTO ro_calls (q) VALUES
	('SELECT txmq.create_queue(''ro_x'')'),
	('SELECT txmq.create_topic(''ro_x'')'),
	('SELECT txmq.create_subscription(''ro_q'', ''s'')'),
	('SELECT txmq.grant(''ro_q'', CURRENT_USER::regrole, ''send'')'),
	('SELECT txmq.revoke(''ro_q'', CURRENT_USER::regrole, ''send'')'),
	('SELECT txmq.purge(''ro_q'')'),
	('SELECT txmq.drop_subscription(''ro_q'', ''ro_q'')'),
	('SELECT txmq.drop_topic(''ro_q'', true)'),
	('SELECT txmq.send(''ro_q'', ''1'')'),
	('SELECT * FROM txmq.send_batch(''ro_q'', ARRAY[''1'']::jsonb[])'),
	('SELECT txmq.send_half(''ro_q'', ''1'', producer_group => ''g'')'),
	('SELECT txmq.commit_half(:half_id)'),
	('SELECT txmq.rollback_half(:half_id)'),
	('SELECT txmq._check_half(:half_id)'),
	('SELECT * FROM txmq.receive(''ro_q'', ''ro_q'')'),
	('SELECT * FROM txmq.receive(''ro_q'', ''ro_q'', 1, wait => ''1 s'')'),
	('SELECT txmq.ack(''ro_q'', ''ro_q'', :leased_id)'),
	('SELECT txmq.ack(''ro_q'', ''ro_q'', ARRAY[:leased_id]::bigint[])'),
	('SELECT txmq.nack(''ro_q'', ''ro_q'', :leased_id)'),
	('SELECT txmq.reject(''ro_q'', ''ro_q'', :leased_id)'),
	('SELECT txmq.extend_lease(''ro_q'', ''ro_q'', :leased_id, ''1 min'')'),
	('SELECT txmq.redrive(''ro_q'', ''ro_q'')'),
	-- reading works
	('SELECT * FROM txmq.dead_letters(''ro_q'', ''ro_q'')'),
	('SELECT * FROM txmq.half_messages(''ro_q'')'),
	('SELECT * FROM txmq.pending_checks(''ro_producers'')'),
	('SELECT * FROM txmq.stats WHERE topic = ''ro_q''');
SET default_transaction_read_only = on;
SHOW transaction_read_only;
SELECT q, pg_temp.ro_err(replace(replace(q, ':half_id', :'half_id'), ':leased_id', :'leased_id')) AS result
  FROM ro_calls ORDER BY ord;
-- an explicitly read-only transaction, in a read-write session
RESET default_transaction_read_only;
BEGIN TRANSACTION READ ONLY;
SELECT txmq.send('ro_q', '1');
ROLLBACK;
BEGIN TRANSACTION READ ONLY;
SELECT * FROM txmq.receive('ro_q', 'ro_q');
ROLLBACK;

-- nothing changed, and the queue works normally again
SELECT pg_temp.ro_snapshot() = :'before' AS unchanged;
BEGIN;
CREATE TEMP TABLE ro_got AS SELECT msg_id, payload FROM txmq.receive('ro_q', 'ro_q', 10);
SELECT payload FROM ro_got ORDER BY msg_id;
SELECT txmq.ack('ro_q', 'ro_q', ARRAY(SELECT msg_id FROM ro_got) || :leased_id::bigint);
COMMIT;
SELECT txmq.redrive('ro_q', 'ro_q');
SELECT txmq.commit_half(:half_id);
SELECT payload FROM txmq.receive('ro_q', 'ro_q', 10) ORDER BY msg_id;
SELECT ready, delayed, in_flight, dead, half_pending FROM txmq.stats WHERE topic = 'ro_q';
SELECT txmq.drop_topic('ro_q', force => true);
