-- W1D txmq: W1 with a dedup key on every message (topic dedup_window 5 min)
\set oid random(1, 1000000000)
\set k random(1, 1000000000000)
SELECT txmq.send('bench', bench_payload(:oid)::jsonb, dedup_key => 'order-' || :k);
