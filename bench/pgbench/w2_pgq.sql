-- W2 pgq: 100 pgq.insert_event calls in one statement/transaction (PgQ has no batch insert)
\set oid random(1, 1000000000)
SELECT count(pgq.insert_event('bench', 'order.created', bench_payload(:oid + g))) FROM generate_series(1, 100) g;
