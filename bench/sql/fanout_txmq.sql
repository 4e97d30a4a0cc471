-- W9: the queue 'bench' gets nine more subscriptions: ten in all.
SELECT txmq.create_subscription('bench', 'fan_' || i) FROM generate_series(2, 10) i;
