-- Ordered subscriptions: one key at a time, in id order.
SELECT txmq.create_topic('core_ord', notify => false);
SELECT txmq.create_subscription('core_ord', 'ord', ordered => true,
                                lease => '1 min');
SELECT txmq.create_subscription('core_ord', 'any');
SELECT ordered FROM txmq.subscription WHERE name IN ('ord', 'any') ORDER BY name;
SELECT txmq.create_subscription('core_ord', 'bad', ordered => NULL);

-- a1 a2 b1 (no key) a3 b2
SELECT txmq.send('core_ord', '"a1"', key => 'a') AS a1 \gset
SELECT txmq.send('core_ord', '"a2"', key => 'a') AS a2 \gset
SELECT txmq.send('core_ord', '"b1"', key => 'b') AS b1 \gset
SELECT txmq.send('core_ord', '"n1"') AS n1 \gset
SELECT txmq.send('core_ord', '"a3"', key => 'a') AS a3 \gset
SELECT txmq.send('core_ord', '"b2"', key => 'b') AS b2 \gset

-- unordered: everything at once, in id order
BEGIN;
SELECT payload, key FROM txmq.receive('core_ord', 'any', 10);
ROLLBACK;

-- ordered: the first message of each key, and keyless messages
BEGIN;
SELECT payload, key, attempt FROM txmq.receive('core_ord', 'ord', 10);
COMMIT;                                 -- a1 and b1 now leased
-- leased heads block their keys
SELECT payload FROM txmq.receive('core_ord', 'ord', 10);
-- acking a1 releases a2 (but not a3); b stays blocked behind leased b1
SELECT txmq.ack('core_ord', 'ord', :a1);
SELECT payload FROM txmq.receive('core_ord', 'ord', 10);
-- a nacked head keeps its key blocked until it is redelivered and settled
SELECT txmq.nack('core_ord', 'ord', :a2, delay => '0 s');
SELECT txmq.ack('core_ord', 'ord', :b1);
SELECT payload, attempt FROM txmq.receive('core_ord', 'ord', 10);
-- a dead-lettered head frees its key
SELECT txmq.reject('core_ord', 'ord', :a2);
SELECT payload FROM txmq.receive('core_ord', 'ord', 10);
SELECT txmq.ack('core_ord', 'ord', ARRAY[:b2, :a3]::bigint[]) AS acked;

-- in one transaction: take a key's head, ack it, and the next follows
SELECT txmq.send('core_ord', '"c1"', key => 'c') AS c1 \gset
SELECT txmq.send('core_ord', '"c2"', key => 'c') AS c2 \gset
BEGIN;
SELECT payload FROM txmq.receive('core_ord', 'ord', 10);
SELECT txmq.ack('core_ord', 'ord', :c1);
SELECT payload FROM txmq.receive('core_ord', 'ord', 10);
SELECT txmq.ack('core_ord', 'ord', :c2);
COMMIT;
-- but not while this transaction still holds the head, nor after a retry
SELECT txmq.send('core_ord', '"d1"', key => 'd') AS d1 \gset
SELECT txmq.send('core_ord', '"d2"', key => 'd') AS d2 \gset
BEGIN;
SELECT payload FROM txmq.receive('core_ord', 'ord', 10);
SELECT payload FROM txmq.receive('core_ord', 'ord', 10);
ROLLBACK;
SELECT payload, attempt FROM txmq.receive('core_ord', 'ord', 10);
SELECT txmq.ack('core_ord', 'ord', :d1);
SELECT count(*) AS left_in_ord FROM txmq.msg m
  JOIN txmq.subscription s USING (sub_id) WHERE s.name = 'ord';

-- create_queue takes the option too
SELECT txmq.create_queue('core_ordq', ordered => true);
SELECT ordered FROM txmq.subscription WHERE name = 'core_ordq';

SELECT txmq.drop_topic('core_ord', force => true);
SELECT txmq.drop_topic('core_ordq', force => true);
