-- W9: a hand-rolled queue has no fan-out; the usual way is a row per
-- consumer group, each group consuming its own rows.
ALTER TABLE bench_q ADD COLUMN grp int NOT NULL DEFAULT 1;
