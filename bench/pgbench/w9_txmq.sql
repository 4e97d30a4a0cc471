-- W9 txmq: one message per transaction, to a topic with ten subscriptions
\set oid random(1, 1000000000)
SELECT txmq.send('bench', bench_payload(:oid)::jsonb);
