-- W1 txmq: one message per transaction
\set oid random(1, 1000000000)
SELECT txmq.send('bench', bench_payload(:oid)::jsonb);
