-- W1 baseline: one INSERT per transaction
\set oid random(1, 1000000000)
INSERT INTO bench_q (payload) VALUES (bench_payload(:oid)::jsonb);
