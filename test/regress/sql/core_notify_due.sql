-- core_notify_due: a transaction whose messages fall due later owes its
-- NOTIFY to the worker (test/t/035_notify.pl tests the notifications), and
-- it hands that over at commit.  A prepared transaction never gets there,
-- so one that makes messages of a topic with notify on due later cannot be
-- prepared, just as PostgreSQL refuses to prepare one that notifies.
-- (Only refusals here: whether PREPARE would succeed otherwise depends on
-- the server's max_prepared_transactions.)
SELECT txmq.create_queue('nd_q');

-- a delayed send to a topic with notify on
BEGIN;
SELECT txmq.send('nd_q', '{}', delay => '1 h') > 0 AS sent;
PREPARE TRANSACTION 'nd';

-- a nack with a backoff, of a leased message
SELECT txmq.send('nd_q', '{"n": 1}') > 0 AS sent;
SELECT msg_id AS leased FROM txmq.receive('nd_q', 'nd_q') \gset
BEGIN;
SELECT txmq.nack('nd_q', 'nd_q', :leased, delay => '1 h');
PREPARE TRANSACTION 'nd';

-- an undelayed send notifies at commit: PostgreSQL's own refusal
BEGIN;
SELECT txmq.send('nd_q', '{}') > 0 AS sent;
PREPARE TRANSACTION 'nd';

-- nothing of the refused transactions is left
SELECT ready, delayed, in_flight FROM txmq.stats WHERE topic = 'nd_q';

SELECT txmq.drop_topic('nd_q', force => true);
