-- security_grantees: a grant counts however many other roles hold one on
-- the same topic or subscription.  The grant check once read only the
-- first 1,024 grantees and silently denied the rest; here 1,100 roles get
-- send and receive, and each of them sends, receives and sees the stats.
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err
GRANT EXECUTE ON FUNCTION pg_temp.core_err(text) TO PUBLIC;

SELECT txmq.create_queue('sec_many');
CREATE ROLE regress_sec_many_none;
DO $$
BEGIN
	FOR i IN 1..1100 LOOP
		EXECUTE format('CREATE ROLE regress_sec_many_%s', i);
		PERFORM txmq.grant('sec_many', format('regress_sec_many_%s', i)::regrole,
						   'send');
		PERFORM txmq.grant('sec_many', format('regress_sec_many_%s', i)::regrole,
						   'receive', 'sec_many');
	END LOOP;
END $$;
SELECT privilege, count(*) FROM txmq.grants
 WHERE grantee::text LIKE 'regress_sec_many_%' GROUP BY 1 ORDER BY 1;

-- the last role granted: send, receive, stats (the cached lookup and the
-- uncached check of listings)
SET ROLE regress_sec_many_1100;
SELECT txmq.send('sec_many', '"last"') > 0 AS last_sends;
SELECT payload FROM txmq.receive('sec_many', 'sec_many');
SELECT topic, subscription FROM txmq.stats WHERE topic = 'sec_many';
RESET ROLE;
-- every role, whatever order the grants are read in
DO $$
DECLARE
	n int := 0;
BEGIN
	FOR i IN 1..1100 LOOP
		EXECUTE format('SET ROLE regress_sec_many_%s', i);
		PERFORM txmq.send('sec_many', to_jsonb(i));
		n := n + (SELECT count(*) FROM txmq.receive('sec_many', 'sec_many'));
		n := n + (SELECT count(*) FROM txmq.stats WHERE topic = 'sec_many');
		RESET ROLE;
	END LOOP;
	RAISE NOTICE 'sent, received and saw the stats: % of 2200', n;
END $$;
-- a role without a grant is still denied
SET ROLE regress_sec_many_none;
SELECT pg_temp.core_err($$SELECT txmq.send('sec_many', '"x"')$$);
SELECT pg_temp.core_err($$SELECT * FROM txmq.receive('sec_many', 'sec_many')$$);
SELECT count(*) AS stats_rows FROM txmq.stats WHERE topic = 'sec_many';
RESET ROLE;

SELECT txmq.drop_topic('sec_many', force => true);
SELECT count(*) AS grants_left FROM txmq.grants
 WHERE grantee::text LIKE 'regress_sec_many_%';
DO $$
BEGIN
	FOR i IN 1..1100 LOOP
		EXECUTE format('DROP ROLE regress_sec_many_%s', i);
	END LOOP;
END $$;
DROP ROLE regress_sec_many_none;
