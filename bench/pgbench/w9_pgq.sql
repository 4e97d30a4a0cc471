-- W9 pgq: one pgq.insert_event per transaction, ten consumers registered
\set oid random(1, 1000000000)
SELECT pgq.insert_event('bench', 'order.created', bench_payload(:oid));
