-- W2 baseline: 100 rows per transaction in one INSERT
\set oid random(1, 1000000000)
INSERT INTO bench_q (payload) SELECT bench_payload(:oid + g)::jsonb FROM generate_series(1, 100) g;
