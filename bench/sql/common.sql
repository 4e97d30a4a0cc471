-- Loaded into every benchmark database (bench_baseline, bench_txmq, bench_pgq).
-- The ~200-byte order event used by pgbench scripts and prefills; driver.c
-- builds the same text on the client side.
CREATE OR REPLACE FUNCTION bench_payload(id bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT '{"event": "order.created", "order_id": ' || id
      || ', "customer_id": ' || (id % 100000)
      || ', "items": [{"sku": "SKU-' || lpad((id % 99999)::text, 5, '0')
      || '", "qty": 2, "price": 19.99}, {"sku": "SKU-20002", "qty": 1, "price": 5.49}]'
      || ', "currency": "EUR", "total": 45.47, "source": "bench"}'
$$;
