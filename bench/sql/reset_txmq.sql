-- A fresh queue 'bench' before every workload.  notify => false: with
-- NOTIFY on, every committing sender takes the cluster-wide notify queue
-- lock, which serialises commits (see README.md).  dedup_window only
-- matters to sends with a dedup key (W1D).
SELECT txmq.drop_topic('bench', true) FROM txmq.topic WHERE name = 'bench';
SELECT txmq.create_queue('bench', notify => false, dedup_window => '5 min');
-- Start every workload from compact storage, as the other systems do (the
-- baseline table and the PgQ queue tables are recreated).  Harness state
-- only: txmq itself is not tuned.
VACUUM FULL txmq.msg;
VACUUM FULL txmq.dead_letter;
