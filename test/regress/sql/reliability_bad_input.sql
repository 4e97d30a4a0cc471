-- reliability_bad_input: the bad-input sweep (SPEC section 5: "Bad input
-- ... gets a clear error with a proper SQLSTATE and changes nothing").
-- Every public function is called with nulls, empty strings, wrong types,
-- negative, zero and huge numbers and intervals, and unknown ids.  Each
-- call's SQLSTATE and message are recorded below; none may be XX000
-- (internal error), and the txmq tables must be unchanged afterwards.
-- test/t/081_bad_input_fuzz.pl runs this file again and checks the server
-- log for crashes.
CREATE FUNCTION pg_temp.bad_call(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
	v text;
BEGIN
	EXECUTE 'SELECT count(*), min(x::text) FROM (' || q || ') x' INTO n, v;
	RETURN 'ok, ' || n || ' row(s)' || CASE WHEN n = 1 THEN ': ' || v ELSE '' END;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE FUNCTION pg_temp.bad_snapshot() RETURNS text
LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(t::text, ',' ORDER BY topic_id) FROM txmq.topic t),
		(SELECT string_agg(t::text, ',' ORDER BY sub_id) FROM txmq.subscription t),
		(SELECT string_agg(t::text, ',' ORDER BY sub_id, msg_id) FROM txmq.msg t),
		(SELECT string_agg(t::text, ',' ORDER BY sub_id, msg_id) FROM txmq.dead_letter t),
		(SELECT string_agg(t::text, ',' ORDER BY msg_id) FROM txmq.half t),
		(SELECT string_agg(t::text, ',' ORDER BY t::text) FROM txmq.grants t)))
$$;

CREATE ROLE regress_bad_role;
SELECT txmq.create_queue('bad_q', max_deliveries => 3);
SELECT txmq.create_topic('bad_h', check_after => '1 h');
SELECT txmq.create_subscription('bad_h', 'bad_s');
-- a message received and acked: acking it again is a no-op
SELECT txmq.send('bad_q', '"acked"') AS acked_id \gset
BEGIN;
SELECT count(*) FROM txmq.receive('bad_q', 'bad_q');
SELECT txmq.ack('bad_q', 'bad_q', :acked_id);
COMMIT;
-- a ready message nobody holds: ack, nack, reject, extend_lease leave it be
SELECT txmq.send('bad_q', '{"ready": true}') AS ready_id \gset
SELECT txmq.send_half('bad_h', '{"half": true}', producer_group => 'bad_group') AS half_id \gset
SELECT txmq.send_half('bad_h', '{"half": "rolled back"}', producer_group => 'bad_group') AS rb_id \gset
SELECT txmq.rollback_half(:rb_id);
SELECT pg_temp.bad_snapshot() AS before \gset

CREATE TEMP TABLE bad (ord serial, fn text, args text);
INSERT INTO bad (fn, args) VALUES
	-- create_topic
	('create_topic', $$NULL$$),
	('create_topic', $$''$$),
	('create_topic', $$'bad_q'$$),
	('create_topic', $$'bad_x', notify => NULL$$),
	('create_topic', $$'bad_x', check_function => 'pg_catalog.now()'$$),
	('create_topic', $$'bad_x', check_function => 'bad_nope(txmq.message)'$$),
	('create_topic', $$'bad_x', check_function => 0$$),
	('create_topic', $$'bad_x', check_after => NULL$$),
	('create_topic', $$'bad_x', check_after => '-1 s'$$),
	('create_topic', $$'bad_x', check_after => '1000000 years'$$),
	('create_topic', $$'bad_x', check_after => '178000000 years'$$),
	('create_topic', $$'bad_x', check_interval => '0'$$),
	('create_topic', $$'bad_x', check_interval => '-1 day'$$),
	('create_topic', $$'bad_x', max_checks => NULL$$),
	('create_topic', $$'bad_x', max_checks => 0$$),
	('create_topic', $$'bad_x', max_checks => -1$$),
	('create_topic', $$'bad_x', max_checks => 2147483647$$),
	('create_topic', $$'bad_x', max_checks => 2147483648$$),
	('create_topic', $$'bad_x', max_checks => 'many'$$),
	('create_topic', $$'bad_x', on_checks_exhausted => NULL$$),
	('create_topic', $$'bad_x', on_checks_exhausted => ''$$),
	('create_topic', $$'bad_x', on_checks_exhausted => 'commit'$$),
	-- create_subscription
	('create_subscription', $$NULL, 's'$$),
	('create_subscription', $$'bad_q', NULL$$),
	('create_subscription', $$'bad_q', ''$$),
	('create_subscription', $$'bad_nope', 's'$$),
	('create_subscription', $$'bad_q', 'bad_q'$$),
	('create_subscription', $$'bad_q', 's', max_deliveries => NULL$$),
	('create_subscription', $$'bad_q', 's', max_deliveries => 0$$),
	('create_subscription', $$'bad_q', 's', max_deliveries => -5$$),
	('create_subscription', $$'bad_q', 's', max_deliveries => 1001$$),
	('create_subscription', $$'bad_q', 's', lease => NULL$$),
	('create_subscription', $$'bad_q', 's', lease => '0'$$),
	('create_subscription', $$'bad_q', 's', lease => '-30 s'$$),
	('create_subscription', $$'bad_q', 's', lease => '1000 years'$$),
	('create_subscription', $$'bad_q', 's', backoff_base => NULL$$),
	('create_subscription', $$'bad_q', 's', backoff_base => '-1 s'$$),
	('create_subscription', $$'bad_q', 's', backoff_max => '-1 s'$$),
	('create_subscription', $$'bad_q', 's', backoff_max => '100 years'$$),
	('create_subscription', $$'bad_q', 's', backoff_base => '1 min', backoff_max => '1 s'$$),
	-- create_queue
	('create_queue', $$NULL$$),
	('create_queue', $$'bad_q'$$),
	('create_queue', $$'bad_y', max_deliveries => 0$$),
	('create_queue', $$'bad_y', lease => '-1 s'$$),
	('create_queue', $$'bad_y', max_checks => 0$$),
	-- drop / purge
	('drop_topic', $$NULL$$),
	('drop_topic', $$''$$),
	('drop_topic', $$'bad_nope'$$),
	('drop_topic', $$'bad_q'$$),
	('drop_topic', $$'bad_h'$$),
	('drop_topic', $$'bad_q', NULL$$),
	('drop_subscription', $$'bad_q', NULL$$),
	('drop_subscription', $$NULL, 'bad_q'$$),
	('drop_subscription', $$'bad_q', 'bad_nope'$$),
	('drop_subscription', $$'bad_nope', 'bad_q'$$),
	('purge', $$NULL$$),
	('purge', $$'bad_nope'$$),
	('purge', $$'bad_q', 'bad_nope'$$),
	('purge', $$'bad_q', ''$$),
	-- grant / revoke
	('grant', $$'bad_q', NULL, 'send'$$),
	('grant', $$'bad_q', 'regress_bad_nobody', 'send'$$),
	('grant', $$'bad_q', 0, 'send'$$),
	('grant', $$'bad_q', 'regress_bad_role', NULL$$),
	('grant', $$'bad_q', 'regress_bad_role', ''$$),
	('grant', $$'bad_q', 'regress_bad_role', 'SEND'$$),
	('grant', $$'bad_q', 'regress_bad_role', 'admin'$$),
	('grant', $$'bad_q', 'regress_bad_role', 'receive'$$),
	('grant', $$'bad_q', 'regress_bad_role', 'send', 'bad_q'$$),
	('grant', $$'bad_q', 'regress_bad_role', 'receive', 'bad_nope'$$),
	('grant', $$'bad_nope', 'regress_bad_role', 'send'$$),
	('grant', $$NULL, 'regress_bad_role', 'send'$$),
	('revoke', $$'bad_q', NULL, 'send'$$),
	('revoke', $$'bad_q', 'regress_bad_role', 'nope'$$),
	('revoke', $$'bad_nope', 'regress_bad_role', 'send'$$),
	-- send
	('send', $$NULL, '1'$$),
	('send', $$'', '1'$$),
	('send', $$'bad_nope', '1'$$),
	('send', $$'bad_q', NULL$$),
	('send', $$'bad_q', ''$$),
	('send', $$'bad_q', '{'$$),
	('send', $$'bad_q', 'undefined'$$),
	('send', $$'bad_q', '"\u0000"'$$),
	('send', $$'bad_q', to_jsonb(repeat('x', 2000000))$$),
	('send', $$'bad_q', '1', headers => '[]'$$),
	('send', $$'bad_q', '1', headers => '"h"'$$),
	('send', $$'bad_q', '1', headers => 'null'$$),
	('send', $$'bad_q', '1', headers => '7'$$),
	('send', $$'bad_q', '1', headers => jsonb_build_object('h', repeat('x', 2000000))$$),
	('send', $$'bad_q', '1', key => repeat('k', 1025)$$),
	('send', $$'bad_q', '1', delay => '-1 s'$$),
	('send', $$'bad_q', '1', delay => '-1 month'$$),
	('send', $$'bad_q', '1', delay => '31 days'$$),
	('send', $$'bad_q', '1', delay => '1000000 years'$$),
	('send', $$'bad_q', '1', delay => 'soon'$$),
	('send', $$'bad_q', '1', delay => 5$$),
	('send', $$'bad_q', 1$$),
	-- send_batch
	('send_batch', $$NULL, ARRAY['1']::jsonb[]$$),
	('send_batch', $$'bad_nope', ARRAY['1']::jsonb[]$$),
	('send_batch', $$'bad_q', NULL$$),
	('send_batch', $$'bad_q', '{}'$$),
	('send_batch', $$'bad_q', ARRAY[NULL]::jsonb[]$$),
	('send_batch', $$'bad_q', ARRAY['1', NULL]::jsonb[]$$),
	('send_batch', $$'bad_q', ARRAY[['1'], ['2']]::jsonb[]$$),
	('send_batch', $$'bad_q', (SELECT array_agg('1'::jsonb) FROM generate_series(1, 10001))$$),
	('send_batch', $$'bad_q', ARRAY['1']::jsonb[], headers => '[]'$$),
	('send_batch', $$'bad_q', ARRAY['1']::jsonb[], key => repeat('k', 1025)$$),
	('send_batch', $$'bad_q', ARRAY['1']::jsonb[], delay => '-1 s'$$),
	('send_batch', $$'bad_q', ARRAY[to_jsonb(repeat('x', 2000000))]$$),
	('send_batch', $$'bad_q', '{1,2}'::int[]$$),
	-- send_half
	('send_half', $$NULL, '1', producer_group => 'g'$$),
	('send_half', $$'bad_nope', '1', producer_group => 'g'$$),
	('send_half', $$'bad_h', NULL, producer_group => 'g'$$),
	('send_half', $$'bad_h', '1'$$),
	('send_half', $$'bad_h', '1', producer_group => ''$$),
	('send_half', $$'bad_h', '1', producer_group => 'bad group'$$),
	('send_half', $$'bad_h', '1', producer_group => repeat('g', 49)$$),
	('send_half', $$'bad_h', '1', headers => '[]', producer_group => 'g'$$),
	('send_half', $$'bad_h', '1', key => repeat('k', 1025), producer_group => 'g'$$),
	('send_half', $$'bad_h', to_jsonb(repeat('x', 2000000)), producer_group => 'g'$$),
	('send_half', $$'bad_h', '1', local_xid => '0'$$),
	('send_half', $$'bad_h', '1', local_xid => '3'$$),
	('send_half', $$'bad_h', '1', local_xid => '18446744073709551615'$$),
	('send_half', $$'bad_h', '1', local_xid => '-1'$$),
	-- no 'abc': PostgreSQL's xid8 input read it as 0 before 16, an error since
	-- commit_half / rollback_half
	('commit_half', $$NULL$$),
	('commit_half', $$-1$$),
	('commit_half', $$0$$),
	('commit_half', $$9223372036854775807$$),
	('commit_half', $$9223372036854775808$$),
	('commit_half', $$'x'$$),
	('commit_half', $$:ready_id$$),
	('commit_half', $$:rb_id$$),
	('rollback_half', $$NULL$$),
	('rollback_half', $$-1$$),
	('rollback_half', $$:ready_id$$),
	('rollback_half', $$:rb_id$$),
	-- listings
	('pending_checks', $$NULL$$),
	('pending_checks', $$''$$),
	('pending_checks', $$'bad group'$$),
	('pending_checks', $$'bad_nope'$$),
	('half_messages', $$''$$),
	('half_messages', $$'bad_nope'$$),
	('half_messages', $$'bad q'$$),
	-- receive
	('receive', $$NULL, 'bad_q'$$),
	('receive', $$'bad_q', NULL$$),
	('receive', $$'', 'bad_q'$$),
	('receive', $$'bad_q', ''$$),
	('receive', $$'bad_nope', 'bad_q'$$),
	('receive', $$'bad_q', 'bad_nope'$$),
	('receive', $$'bad_h', 'bad_q'$$),
	('receive', $$'bad_q', 'bad_q', NULL$$),
	('receive', $$'bad_q', 'bad_q', 0$$),
	('receive', $$'bad_q', 'bad_q', -1$$),
	('receive', $$'bad_q', 'bad_q', 10001$$),
	('receive', $$'bad_q', 'bad_q', 2147483647$$),
	('receive', $$'bad_q', 'bad_q', 2147483648$$),
	('receive', $$'bad_q', 'bad_q', 'all'$$),
	('receive', $$'bad_q', 'bad_q', 1, '0'$$),
	('receive', $$'bad_q', 'bad_q', 1, '1 ms'$$),
	('receive', $$'bad_q', 'bad_q', 1, '-1 min'$$),
	('receive', $$'bad_q', 'bad_q', 1, '13 hours'$$),
	('receive', $$'bad_q', 'bad_q', 1, '1000000 years'$$),
	('receive', $$'bad_q', 'bad_q', 1, '1 min', '-1 s'$$),
	('receive', $$'bad_q', 'bad_q', 1, '1 min', '2 hours'$$),
	('receive', $$'bad_q', 'bad_q', 1, '1 min', '-178000000 years'$$),
	-- ack
	('ack', $$NULL, 'bad_q', 1$$),
	('ack', $$'bad_q', NULL, 1$$),
	('ack', $$'bad_nope', 'bad_q', 1$$),
	('ack', $$'bad_q', 'bad_q', NULL::bigint$$),
	('ack', $$'bad_q', 'bad_q', -1$$),
	('ack', $$'bad_q', 'bad_q', 0$$),
	('ack', $$'bad_q', 'bad_q', 9223372036854775807$$),
	('ack', $$'bad_q', 'bad_q', :ready_id$$),
	('ack', $$'bad_q', 'bad_q', :acked_id$$),
	('ack', $$'bad_q', 'bad_q', :half_id$$),
	('ack', $$'bad_q', 'bad_q', 'abc'$$),
	('ack', $$'bad_q', 'bad_q', NULL::bigint[]$$),
	('ack', $$'bad_q', 'bad_q', '{}'::bigint[]$$),
	('ack', $$'bad_q', 'bad_q', '{NULL}'::bigint[]$$),
	('ack', $$'bad_q', 'bad_q', '{{1},{2}}'::bigint[]$$),
	('ack', $$'bad_q', 'bad_q', '[5:6]={1,2}'::bigint[]$$),
	('ack', $$'bad_q', 'bad_q', (SELECT array_agg(g) FROM generate_series(-100000, 0) g)$$),
	('ack', $$'bad_q', 'bad_q', ARRAY[:ready_id, :ready_id, :acked_id]::bigint[]$$),
	-- nack
	('nack', $$NULL, 'bad_q', 1$$),
	('nack', $$'bad_q', 'bad_q', NULL$$),
	('nack', $$'bad_q', 'bad_q', -1$$),
	('nack', $$'bad_q', 'bad_q', :ready_id$$),
	('nack', $$'bad_q', 'bad_q', :acked_id$$),
	('nack', $$'bad_q', 'bad_q', 1, '-1 s'$$),
	('nack', $$'bad_q', 'bad_q', 1, '31 days'$$),
	('nack', $$'bad_q', 'bad_q', 1, '1000000 years'$$),
	('nack', $$'bad_q', 'bad_q', 1, NULL, repeat('e', 65537)$$),
	('nack', $$'bad_q', 'bad_nope', 1$$),
	-- reject
	('reject', $$NULL, 'bad_q', 1$$),
	('reject', $$'bad_q', 'bad_q', NULL$$),
	('reject', $$'bad_q', 'bad_q', -1$$),
	('reject', $$'bad_q', 'bad_q', :ready_id$$),
	('reject', $$'bad_q', 'bad_q', 1, repeat('e', 65537)$$),
	('reject', $$'bad_h', 'bad_nope', 1$$),
	-- extend_lease
	('extend_lease', $$'bad_q', 'bad_q', NULL, '1 min'$$),
	('extend_lease', $$'bad_q', 'bad_q', 1, NULL$$),
	('extend_lease', $$'bad_q', 'bad_q', 1, '0'$$),
	('extend_lease', $$'bad_q', 'bad_q', 1, '-1 min'$$),
	('extend_lease', $$'bad_q', 'bad_q', 1, '13 hours'$$),
	('extend_lease', $$'bad_q', 'bad_q', -1, '1 min'$$),
	('extend_lease', $$'bad_q', 'bad_q', :ready_id, '1 min'$$),
	('extend_lease', $$'bad_q', 'bad_q', :acked_id, '1 min'$$),
	('extend_lease', $$NULL, 'bad_q', 1, '1 min'$$),
	-- dead letters
	('dead_letters', $$NULL, 'bad_q'$$),
	('dead_letters', $$'bad_q', NULL$$),
	('dead_letters', $$'bad_q', 'bad_nope'$$),
	('dead_letters', $$'bad_q', ''$$),
	('redrive', $$NULL, 'bad_q'$$),
	('redrive', $$'bad_q', 'bad_nope'$$),
	('redrive', $$'bad_q', 'bad_q', '{NULL}'$$),
	('redrive', $$'bad_q', 'bad_q', '{}'$$),
	('redrive', $$'bad_q', 'bad_q', '{-1,0,9223372036854775807}'$$),
	('redrive', $$'bad_q', 'bad_q', '{{1},{2}}'$$),
	('redrive', $$'bad_q', 'bad_q', ARRAY[:ready_id]$$),
	-- internal
	('_check_half', $$NULL$$),
	('_check_half', $$-1$$),
	('_check_half', $$:ready_id$$),
	('_check_half', $$:rb_id$$),
	('_stats_rows', $$$$);

CREATE TEMP TABLE bad_result AS
SELECT ord, fn || '(' || args || ')' AS call,
	   pg_temp.bad_call('SELECT * FROM txmq.' || fn || '('
		|| replace(replace(replace(replace(args, ':ready_id', :'ready_id'),
			':acked_id', :'acked_id'), ':half_id', :'half_id'), ':rb_id', :'rb_id')
		|| ')') AS result
  FROM bad ORDER BY ord;
-- (message ids in errors are shown by name)
SELECT call, regexp_replace(regexp_replace(regexp_replace(regexp_replace(result,
		'message ' || :'ready_id' || '\M', 'message :ready_id'),
		'message ' || :'acked_id' || '\M', 'message :acked_id'),
		'message ' || :'half_id' || '\M', 'message :half_id'),
		'message ' || :'rb_id' || '\M', 'message :rb_id') AS result
  FROM bad_result ORDER BY ord;

-- the totals: no internal errors, and nothing changed
SELECT count(*) AS calls,
	   count(*) FILTER (WHERE result LIKE 'ok%') AS no_error,
	   count(DISTINCT left(result, 5)) FILTER (WHERE result NOT LIKE 'ok%') AS sqlstates,
	   count(*) FILTER (WHERE result LIKE 'XX%') AS internal_errors
  FROM bad_result;
SELECT pg_temp.bad_snapshot() = :'before' AS unchanged;
SELECT topic, subscription, ready, delayed, in_flight, dead, half_pending
  FROM txmq.stats WHERE topic LIKE 'bad\_%' ORDER BY 1, 2;

SELECT txmq.drop_topic('bad_q', force => true);
SELECT txmq.drop_topic('bad_h', force => true);
DROP ROLE regress_bad_role;
