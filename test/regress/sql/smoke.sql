-- smoke: txmq is preloaded, the extension exists (pg_regress runs with
-- --load-extension=txmq) and one message makes the round trip.
SHOW shared_preload_libraries;
SELECT extname, extversion FROM pg_extension WHERE extname = 'txmq';

SELECT txmq.create_queue('smoke');
SELECT txmq.send('smoke', '{"a": 1}') AS id \gset
SELECT :id > 0 AS sent;
SELECT msg_id = :id AS same_id, payload, headers, key, attempt
  FROM txmq.receive('smoke', 'smoke');
SELECT txmq.ack('smoke', 'smoke', :id);
SELECT count(*) AS left_over FROM txmq.receive('smoke', 'smoke');
SELECT txmq.drop_topic('smoke');
