-- core_fanout: a topic with several subscriptions stores each payload once
-- (txmq.event, issue 12) and every subscription still gets the whole
-- message, whatever becomes of it: received and acked, leased and put
-- back at commit, rolled back, nacked, rejected, dead-lettered when its
-- deliveries run out, redriven, peeked; ordered subscriptions; half
-- messages.  A topic with one subscription keeps the payload in its row.
-- The worker's reclaim of events is TAP 038_events.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err

-- where a message is stored: events of the topic, and rows by whether
-- they carry the payload
CREATE FUNCTION pg_temp.core_fo_storage(q text)
RETURNS TABLE (events bigint, rows_shared bigint, rows_own bigint)
LANGUAGE sql AS $$
	SELECT (SELECT count(*) FROM txmq.event e JOIN txmq.topic t USING (topic_id)
			 WHERE t.name = q),
		   count(*) FILTER (WHERE m.payload IS NULL),
		   count(*) FILTER (WHERE m.payload IS NOT NULL)
	  FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
	  JOIN txmq.topic t USING (topic_id) WHERE t.name = q $$;

SELECT txmq.create_topic('core_fo');
SELECT txmq.create_subscription('core_fo', s, max_deliveries => 2)
  FROM unnest(ARRAY['a', 'b', 'c']) s;
SELECT txmq.create_queue('core_fo1');

-- ---- a send is one event and a row without payload per subscription ----
SELECT txmq.send('core_fo', '{"n": 1}', headers => '{"h": "x"}', key => 'k1') > 0 AS sent;
SELECT count(*) FROM txmq.send_batch('core_fo', ARRAY['{"n": 2}', '{"n": 3}']::jsonb[]);
SELECT * FROM pg_temp.core_fo_storage('core_fo');
-- one subscription: the payload stays in its row, no event
SELECT txmq.send('core_fo1', '{"n": 1}') > 0 AS sent;
SELECT * FROM pg_temp.core_fo_storage('core_fo1');
-- the key stays in each row (ordered subscriptions look it up there)
SELECT count(*) FROM txmq.msg WHERE key = 'k1';

-- ---- each subscription receives the whole message ----
SELECT payload, headers, key, attempt FROM txmq.receive('core_fo', 'a', 10)
 ORDER BY msg_id;
SELECT * FROM pg_temp.core_fo_storage('core_fo');

-- ---- a lease written at commit still names the event ----
SELECT count(*) FROM txmq.receive('core_fo', 'b', 1, lease => '1 h');
SELECT payload IS NULL AS shared, headers IS NULL AS no_headers_copy, key
  FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
 WHERE s.name = 'b' AND m.leased;
SELECT * FROM pg_temp.core_fo_storage('core_fo');
-- ... and its ack settles it
SELECT txmq.ack('core_fo', 'b', msg_id) FROM txmq.msg m
  JOIN txmq.subscription s USING (sub_id) WHERE s.name = 'b' AND m.leased;

-- ---- nacked: put back without a copy, received again whole ----
SELECT payload FROM txmq.receive('core_fo', 'b', 1, lease => '1 h');
SELECT txmq.nack('core_fo', 'b', msg_id, delay => '0', error => 'try again')
  FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
 WHERE s.name = 'b' AND m.leased;
SELECT payload IS NULL AS shared, last_error FROM txmq.msg m
  JOIN txmq.subscription s USING (sub_id) WHERE s.name = 'b' AND m.last_error IS NOT NULL;
SELECT payload, attempt FROM txmq.receive('core_fo', 'b', 1, lease => '1 h');
SELECT txmq.ack('core_fo', 'b', msg_id) FROM txmq.msg m
  JOIN txmq.subscription s USING (sub_id) WHERE s.name = 'b' AND m.leased;

-- ---- rolled back: available again at once, whole ----
BEGIN;
SELECT payload FROM txmq.receive('core_fo', 'c', 1);
ROLLBACK;
SELECT payload, headers, attempt FROM txmq.receive('core_fo', 'c', 1, lease => '1 h');
-- nacked at its last delivery (max_deliveries 2): to the dead letters,
-- from the leased row and its event
SELECT txmq.nack('core_fo', 'c', msg_id, delay => '0', error => 'gave up')
  FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
 WHERE s.name = 'c' AND m.leased;
-- rejected: the same
SELECT payload, attempt FROM txmq.receive('core_fo', 'c', 1, lease => '1 h');
SELECT txmq.reject('core_fo', 'c', msg_id, error => 'poison')
  FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
 WHERE s.name = 'c' AND m.leased;
-- each dead letter has the payload of its own
SELECT payload, headers, key, attempts, last_error FROM txmq.dead_letters('core_fo', 'c');

-- ---- deliveries that run out go to the dead letters whole ----
BEGIN;
SELECT payload FROM txmq.receive('core_fo', 'c', 2) ORDER BY msg_id;
ROLLBACK;
BEGIN;
SELECT payload FROM txmq.receive('core_fo', 'c', 2) ORDER BY msg_id;
ROLLBACK;
SELECT count(*) AS delivered FROM txmq.receive('core_fo', 'c', 2);
SELECT payload, attempts FROM txmq.dead_letters('core_fo', 'c') ORDER BY msg_id;

-- ---- redrive: the row carries the dead letter's payload ----
SELECT txmq.redrive('core_fo', 'c');
-- (the worker may already have deleted events nothing names any more)
SELECT rows_shared, rows_own FROM pg_temp.core_fo_storage('core_fo');
SELECT payload, headers FROM txmq.peek('core_fo', 'c', 10) ORDER BY msg_id;
SELECT payload, headers, key FROM txmq.receive('core_fo', 'c', 10) ORDER BY msg_id;

-- ---- peek shows shared messages whole ----
SELECT payload, headers, key FROM txmq.peek('core_fo', 'b', 10) ORDER BY msg_id;

-- ---- ordered subscriptions: one message per key at a time ----
SELECT txmq.create_topic('core_fo_ord');
SELECT txmq.create_subscription('core_fo_ord', s, ordered => true)
  FROM unnest(ARRAY['x', 'y']) s;
SELECT count(*) FROM (SELECT txmq.send('core_fo_ord', jsonb_build_object('n', i), key => 'same')
						FROM generate_series(1, 3) i) s;
SELECT payload FROM txmq.receive('core_fo_ord', 'x', 10, lease => '1 h');
SELECT payload FROM txmq.receive('core_fo_ord', 'y', 10, lease => '1 h');
SELECT count(*) FROM txmq.receive('core_fo_ord', 'x', 10);

-- ---- a committed half message is shared too ----
SELECT txmq.create_topic('core_fo_half');
SELECT txmq.create_subscription('core_fo_half', s) FROM unnest(ARRAY['p', 'q']) s;
SELECT txmq.commit_half(txmq.send_half('core_fo_half', '{"half": true}',
									   producer_group => 'pg1'));
SELECT * FROM pg_temp.core_fo_storage('core_fo_half');
SELECT payload, txmq.ack('core_fo_half', 'p', msg_id)
  FROM txmq.receive('core_fo_half', 'p');
SELECT payload, txmq.ack('core_fo_half', 'q', msg_id)
  FROM txmq.receive('core_fo_half', 'q');

-- ---- a row whose event is missing: a clear error, nothing taken ----
SELECT txmq.send('core_fo_half', '{"lost": true}') > 0 AS sent;
DELETE FROM txmq.event e USING txmq.topic t
 WHERE t.topic_id = e.topic_id AND t.name = 'core_fo_half';
SELECT regexp_replace(pg_temp.core_err($$SELECT * FROM txmq.receive('core_fo_half', 'p')$$),
					  '[0-9]+ of topic [0-9]+', 'N of topic T');
SELECT * FROM pg_temp.core_fo_storage('core_fo_half');

SELECT txmq.drop_topic(t, force => true)
  FROM unnest(ARRAY['core_fo', 'core_fo1', 'core_fo_ord', 'core_fo_half']) t;
