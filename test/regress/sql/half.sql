-- half: send_half, commit_half, rollback_half, pending_checks,
-- half_messages, and one check-back at a time through txmq._check_half()
-- (the worker's step).  Topics check after an hour, so the worker that runs
-- in this database never checks them by itself.
CREATE FUNCTION pg_temp.half_err(q text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '\d+', 'N', 'g');
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.half_err(text) TO PUBLIC;

CREATE ROLE regress_half_app;
CREATE ROLE regress_half_out;
GRANT EXECUTE ON FUNCTION txmq.create_topic TO regress_half_app;
GRANT EXECUTE ON FUNCTION txmq.create_queue
	TO regress_half_app;
CREATE SCHEMA regress_half AUTHORIZATION regress_half_app;

-- the application role owns its topics and its check function
SET ROLE regress_half_app;
CREATE TABLE regress_half.orders (id int PRIMARY KEY);
CREATE TABLE regress_half.calls (msg_id bigint, who name);
CREATE FUNCTION regress_half.check_order(m txmq.message)
RETURNS txmq.check_result LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_half.calls VALUES (m.msg_id, current_user);
	IF m.payload ? 'fail' THEN
		RAISE EXCEPTION 'order service unreachable';
	END IF;
	IF m.payload ? 'unsure' THEN
		RETURN 'unknown';
	END IF;
	IF EXISTS (SELECT FROM regress_half.orders
			   WHERE id = (m.payload->>'order')::int) THEN
		RETURN 'commit';
	END IF;
	RETURN 'rollback';
END $$;
SELECT txmq.create_queue('half_q', check_function => 'regress_half.check_order(txmq.message)',
						 check_after => '1 h', check_interval => '1 h',
						 max_checks => 2);
SELECT txmq.create_queue('half_dl', check_function => 'regress_half.check_order(txmq.message)',
						 check_after => '1 h', max_checks => 2,
						 on_checks_exhausted => 'dead_letter');
SELECT txmq.create_subscription('half_dl', 'second');
-- no check function: producers are asked with NOTIFY
SELECT txmq.create_queue('half_ask', check_after => '1 h', max_checks => 3);
RESET ROLE;

-- send_half: bad input changes nothing
SELECT pg_temp.half_err($$SELECT txmq.send_half(NULL, '{}')$$);
SELECT pg_temp.half_err($$SELECT txmq.send_half('bad name', '{}')$$);
SELECT pg_temp.half_err($$SELECT txmq.send_half('half_nope', '{}')$$);
SELECT pg_temp.half_err($$SELECT txmq.send_half('half_q', NULL)$$);
SELECT pg_temp.half_err($$SELECT txmq.send_half('half_q', '{}', headers => '[1]')$$);
SELECT pg_temp.half_err($$SELECT txmq.send_half('half_q', '{}', key => repeat('k', 2000))$$);
SELECT pg_temp.half_err($$SELECT txmq.send_half('half_q', '{}', producer_group => 'a;b')$$);
SELECT pg_temp.half_err($$SELECT txmq.send_half('half_q', '{}', producer_group => repeat('g', 49))$$);
SELECT pg_temp.half_err($$SELECT txmq.send_half('half_ask', '{}')$$);
SELECT pg_temp.half_err($$SELECT txmq.send_half('half_q', '{}',
	local_xid => (pg_current_xact_id()::text::bigint + 1000000)::text::xid8)$$);
SET txmq.max_payload_bytes = 64;
SELECT pg_temp.half_err($$SELECT txmq.send_half('half_q', jsonb_build_object('x', repeat('x', 100)))$$);
RESET txmq.max_payload_bytes;
SELECT count(*) AS no_half_rows FROM txmq.half_messages();

-- a half message is invisible to subscriptions until committed
SELECT txmq.send_half('half_q', '{"order": 1}', '{"h": 1}', 'k1') AS h1 \gset
SELECT count(*) AS received FROM txmq.receive('half_q', 'half_q');
SELECT msg_id = :h1 AS is_h1, topic, producer_group, key, local_xid,
	   next_check_at - created_at AS first_check_after, check_count,
	   last_result
  FROM txmq.half_messages('half_q');
SELECT topic, ready, half_pending FROM txmq.stats WHERE topic = 'half_q';
SELECT txmq.commit_half(:h1);
SELECT msg_id = :h1 AS same_id, payload, headers, key, attempt
  FROM txmq.receive('half_q', 'half_q');
SELECT txmq.ack('half_q', 'half_q', :h1);
-- idempotent; the other way is an error; nothing is delivered twice
SELECT txmq.commit_half(:h1);
SELECT pg_temp.half_err(format('SELECT txmq.rollback_half(%s)', :h1));
SELECT count(*) AS received FROM txmq.receive('half_q', 'half_q');
SELECT count(*) AS unresolved FROM txmq.half_messages('half_q');

SELECT txmq.send_half('half_q', '{"order": 2}') AS h2 \gset
SELECT txmq.rollback_half(:h2);
SELECT txmq.rollback_half(:h2);
SELECT pg_temp.half_err(format('SELECT txmq.commit_half(%s)', :h2));
SELECT count(*) AS received FROM txmq.receive('half_q', 'half_q');

-- a rolled-back transaction leaves no half message, and resolving does not
-- stick if its transaction rolls back
BEGIN;
SELECT txmq.send_half('half_q', '{"order": 3}') AS h3 \gset
ROLLBACK;
SELECT pg_temp.half_err(format('SELECT txmq.commit_half(%s)', :h3));
SELECT txmq.send_half('half_q', '{"order": 4}') AS h4 \gset
BEGIN;
SELECT txmq.commit_half(:h4);
ROLLBACK;
SELECT txmq.rollback_half(:h4);
SELECT count(*) AS received FROM txmq.receive('half_q', 'half_q');

-- unknown and null ids
SELECT pg_temp.half_err('SELECT txmq.commit_half(-1)');
SELECT pg_temp.half_err('SELECT txmq.rollback_half(NULL)');

-- privileges: 'send' on the topic is needed for everything
SET ROLE regress_half_app;
SELECT txmq.send_half('half_q', '{"order": 5}') AS h5 \gset
RESET ROLE;
SET ROLE regress_half_out;
SELECT pg_temp.half_err($$SELECT txmq.send_half('half_q', '{}')$$);
SELECT pg_temp.half_err(format('SELECT txmq.commit_half(%s)', :h5));
SELECT pg_temp.half_err(format('SELECT txmq.rollback_half(%s)', :h5));
SELECT pg_temp.half_err($$SELECT * FROM txmq.half_messages('half_q')$$);
SELECT count(*) AS visible FROM txmq.half_messages();
SELECT pg_temp.half_err(format('SELECT txmq._check_half(%s)', :h5));
RESET ROLE;
SET ROLE regress_half_app;
SELECT txmq.grant('half_q', 'regress_half_out', 'send');
RESET ROLE;
SET ROLE regress_half_out;
SELECT count(*) AS visible FROM txmq.half_messages();
SELECT txmq.rollback_half(:h5);
RESET ROLE;

-- check-back with the check function, run as the topic's owner
INSERT INTO regress_half.orders VALUES (10);
SELECT txmq.send_half('half_q', '{"order": 10}') AS c1 \gset
SELECT txmq.send_half('half_q', '{"order": 11}') AS c2 \gset
SELECT txmq._check_half(:c1) AS c1_state, txmq._check_half(:c2) AS c2_state;
SELECT count(*) = 1 AS one_call, min(who) AS who
  FROM regress_half.calls WHERE msg_id IN (:c1, :c2) GROUP BY msg_id;
SELECT msg_id = :c1 AS is_c1, payload FROM txmq.receive('half_q', 'half_q');
SELECT txmq.ack('half_q', 'half_q', :c1);
-- resolved messages are never checked again
SELECT txmq._check_half(:c1) AS c1_again, txmq._check_half(:c2) AS c2_again;
SELECT count(*) AS calls FROM regress_half.calls WHERE msg_id IN (:c1, :c2);
-- the producer's late answer agrees or fails
SELECT txmq.commit_half(:c1);
SELECT pg_temp.half_err(format('SELECT txmq.commit_half(%s)', :c2));

-- 'unknown' and errors count, up to max_checks, then on_checks_exhausted
SELECT txmq.send_half('half_q', '{"unsure": true}') AS u1 \gset
SELECT txmq._check_half(:u1) AS first_check;
SELECT check_count, last_result, next_check_at > now() + '59 min' AS rescheduled
  FROM txmq.half_messages('half_q') WHERE msg_id = :u1;
SELECT txmq._check_half(:u1) AS second_check;
SELECT state, check_count, last_result FROM txmq.half WHERE msg_id = :u1;
SET client_min_messages = error;	-- the WARNING names the message id
SELECT txmq.send_half('half_dl', '{"fail": true}') AS f1 \gset
SELECT txmq._check_half(:f1) AS failed_check;
SELECT txmq._check_half(:f1) AS failed_check;
RESET client_min_messages;
SELECT state, check_count, last_result FROM txmq.half WHERE msg_id = :f1;
SELECT msg_id = :f1 AS is_f1, payload, attempts, last_error
  FROM txmq.dead_letters('half_dl', 'half_dl');
SELECT count(*) AS second_sub_dead FROM txmq.dead_letters('half_dl', 'second');
SELECT count(*) AS received FROM txmq.receive('half_dl', 'half_dl');
SELECT pg_temp.half_err(format('SELECT txmq.commit_half(%s)', :f1));
SELECT pg_temp.half_err(format('SELECT txmq.rollback_half(%s)', :f1));
SELECT txmq.redrive('half_dl', 'half_dl');
SELECT msg_id = :f1 AS redriven FROM txmq.receive('half_dl', 'half_dl');

-- a topic owner that became a superuser gets no check run
ALTER ROLE regress_half_app SUPERUSER;
SELECT txmq.send_half('half_dl', '{"order": 10}') AS s1 \gset
SET client_min_messages = error;
SELECT txmq._check_half(:s1) AS as_superuser;
RESET client_min_messages;
ALTER ROLE regress_half_app NOSUPERUSER;
SELECT count(*) AS calls FROM regress_half.calls WHERE msg_id = :s1;
SELECT txmq._check_half(:s1) AS as_app;

-- GUCs the check function sets do not leak into the checker's session
CREATE FUNCTION regress_half.check_setting(m txmq.message)
RETURNS txmq.check_result LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('work_mem', '1234kB', false);
	RETURN 'unknown';
END $$;
ALTER FUNCTION regress_half.check_setting(txmq.message) OWNER TO regress_half_app;
SET ROLE regress_half_app;
SELECT txmq.create_topic('half_guc', check_function => 'regress_half.check_setting(txmq.message)',
						 check_after => '1 h');
RESET ROLE;
SELECT txmq._check_half(txmq.send_half('half_guc', '{}')) AS guc_check;
SHOW work_mem;

-- local_xid: the fate of a transaction, no check function involved
BEGIN;
SELECT pg_current_xact_id() AS xid_committed \gset
COMMIT;
BEGIN;
SELECT pg_current_xact_id() AS xid_aborted \gset
ROLLBACK;
SELECT txmq.send_half('half_ask', '{"x": 1}', local_xid => :'xid_committed') AS x1 \gset
SELECT txmq.send_half('half_ask', '{"x": 2}', local_xid => :'xid_aborted') AS x2 \gset
BEGIN;
SELECT txmq.send_half('half_ask', '{"x": 3}', local_xid => pg_current_xact_id()) AS x3 \gset
SELECT txmq._check_half(:x3) AS in_progress;
COMMIT;
SELECT txmq._check_half(:x1) AS committed, txmq._check_half(:x2) AS aborted,
	   txmq._check_half(:x3) AS committed_since;
SELECT payload FROM txmq.receive('half_ask', 'half_ask', 10) ORDER BY msg_id;

-- without check function: the producer group is asked, and answers
SELECT txmq.send_half('half_ask', '{"n": 1}', producer_group => 'regress-grp.1') AS g1 \gset
SELECT txmq.send_half('half_ask', '{"n": 2}', producer_group => 'regress-grp.1') AS g2 \gset
SELECT count(*) AS pending_before_check FROM txmq.pending_checks('regress-grp.1');
SELECT txmq._check_half(:g1) AS asked;
SELECT msg_id = :g1 AS is_g1, topic, payload, producer_group
  FROM txmq.pending_checks('regress-grp.1');
SELECT check_count, last_result FROM txmq.half_messages('half_ask')
 WHERE msg_id = :g1;
SELECT pg_temp.half_err('SELECT * FROM txmq.pending_checks(NULL)');
SELECT pg_temp.half_err($$SELECT * FROM txmq.pending_checks('no such group!')$$);
SET ROLE regress_half_out;
SELECT count(*) AS out_sees FROM txmq.pending_checks('regress-grp.1');
RESET ROLE;
SELECT txmq.commit_half(:g1);
SELECT count(*) AS pending_after FROM txmq.pending_checks('regress-grp.1');
SELECT msg_id = :g1 AS is_g1, payload FROM txmq.receive('half_ask', 'half_ask');

-- check counters by result
SELECT topic, checks, checks_commit, checks_rollback, checks_unknown
  FROM txmq.stats WHERE topic LIKE 'half%' AND subscription IS DISTINCT FROM 'second'
 ORDER BY topic;

-- a topic with unresolved half messages is not dropped by accident
SELECT pg_temp.half_err($$SELECT txmq.drop_topic('half_ask')$$);

SELECT txmq.drop_topic(t, force => true)
  FROM unnest(ARRAY['half_q', 'half_dl', 'half_ask', 'half_guc']) t;
SELECT count(*) AS half_rows_left FROM txmq.half;
DROP SCHEMA regress_half CASCADE;
REVOKE EXECUTE ON FUNCTION txmq.create_topic FROM regress_half_app;
REVOKE EXECUTE ON FUNCTION txmq.create_queue
	FROM regress_half_app;
DROP ROLE regress_half_app;
DROP ROLE regress_half_out;
