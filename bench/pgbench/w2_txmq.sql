-- W2 txmq: 100 messages per transaction with send_batch
\set oid random(1, 1000000000)
SELECT count(*) FROM txmq.send_batch('bench', ARRAY(SELECT bench_payload(:oid + g)::jsonb FROM generate_series(1, 100) g));
