-- W9 baseline: one message per transaction, a row for each of ten groups
\set oid random(1, 1000000000)
INSERT INTO bench_q (grp, payload) SELECT g, bench_payload(:oid)::jsonb FROM generate_series(1, 10) g;
