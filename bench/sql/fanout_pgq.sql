-- W9: nine more consumers of the queue 'bench': ten in all.
SELECT pgq.register_consumer('bench', 'fan_' || i) FROM generate_series(2, 10) i;
