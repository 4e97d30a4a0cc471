# upgrade: a database on txmq 0.1 with queued, leased, delayed, half and
# dead-lettered messages is updated with ALTER EXTENSION txmq UPDATE while
# its worker runs; afterwards its schema is exactly that of CREATE
# EXTENSION in an empty database, every message is still there and the
# queue works.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $node = TxmqTest::node('upgrade', create_extension => 0);
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');

$node->safe_psql('old', q{
	CREATE EXTENSION txmq VERSION '0.1';
	CREATE FUNCTION up_check(m txmq.message) RETURNS txmq.check_result
		LANGUAGE sql AS $$SELECT 'commit'::txmq.check_result$$;
	SELECT txmq.create_topic('up_t');
	SELECT txmq.create_subscription('up_t', 'a', max_deliveries => 1);
	SELECT txmq.create_subscription('up_t', 'b');
	SELECT txmq.create_queue('up_o', ordered => true);
	SELECT txmq.send('up_t', jsonb_build_object('n', g)) FROM generate_series(1, 6) g;
	SELECT txmq.send('up_t', '{"later": true}', delay => '1 h');
	SELECT txmq.send('up_o', jsonb_build_object('n', g), key => 'k' || g % 2)
	  FROM generate_series(1, 4) g;
});
# one lease in b, one dead letter in a (max_deliveries 1, nacked), one
# pending half message with a producer group
$node->safe_psql('old', q{
	SELECT msg_id FROM txmq.receive('up_t', 'b', 1, lease => '1 h');
	BEGIN;
	SELECT txmq.nack('up_t', 'a', msg_id) FROM txmq.receive('up_t', 'a', 1);
	COMMIT;
	SELECT txmq.send_half('up_t', '{"half": true}', producer_group => 'up_g');
});
is($node->safe_psql('old',
	q{SELECT extversion FROM pg_extension WHERE extname = 'txmq'}),
	'0.1', 'installed as 0.1');

my $census = q{
	SELECT (SELECT count(*) FROM txmq.msg) || ' queued, '
		|| (SELECT count(*) FROM txmq.msg WHERE leased) || ' leased, '
		|| (SELECT count(*) FROM txmq.msg WHERE vt > now() + interval '30 min') || ' later, '
		|| (SELECT count(*) FROM txmq.dead_letter) || ' dead, '
		|| (SELECT count(*) FROM txmq.half WHERE state = 'half') || ' half'
};
my $before = $node->safe_psql('old', $census);
is($before, '17 queued, 1 leased, 3 later, 1 dead, 1 half',
	'0.1: every kind of message is there');

# grants on the functions that 0.3 re-creates are reset, and the update
# says which statements to run again
$node->safe_psql('old', q{
	CREATE ROLE up_app;
	GRANT EXECUTE ON FUNCTION txmq.create_topic, txmq.create_queue TO up_app;
});
my ($up_rc, $up_out, $up_err) = $node->psql('old', 'ALTER EXTENSION txmq UPDATE');
is($up_rc, 0, 'ALTER EXTENSION txmq UPDATE');
like($up_err,
	qr/WARNING:  txmq 0.3 re-creates create_topic, create_subscription and create_queue: privileges granted on them are reset\n.*GRANT EXECUTE ON FUNCTION txmq.create_queue TO up_app;\nGRANT EXECUTE ON FUNCTION txmq.create_topic TO up_app;/s,
	'the update lists the grants to make again');
$node->safe_psql('old', q{
	GRANT EXECUTE ON FUNCTION txmq.create_queue TO up_app;
	GRANT EXECUTE ON FUNCTION txmq.create_topic TO up_app;
});
is($node->safe_psql('old', q{
	SET ROLE up_app; SELECT txmq.create_queue('up_app_q'); RESET ROLE;
	SELECT txmq.drop_topic('up_app_q');
	REVOKE EXECUTE ON FUNCTION txmq.create_topic, txmq.create_queue FROM up_app;
	DROP ROLE up_app;
	SELECT 'ok'}), "\n\nok", 'and they work when made again');
is($node->safe_psql('old',
	q{SELECT extversion FROM pg_extension WHERE extname = 'txmq'}),
	'0.5', 'updated to 0.5');
is($node->safe_psql('old', $census), $before, 'the update keeps every message');

# the same objects, definitions, privileges and dump registrations as a
# fresh install (which runs the same scripts, but on no data and with no
# worker busy in the database)
$node->safe_psql('fresh', 'CREATE EXTENSION txmq');
my $schema = q{
	SELECT string_agg(x, E'\n' ORDER BY x) FROM (
	  SELECT 'function ' || p.oid::regprocedure || ' -> '
			 || pg_get_function_result(p.oid) || ' ' || p.prosrc || ' '
			 || p.provolatile::text || coalesce(' ' || p.proacl::text, '') AS x
		FROM pg_proc p WHERE p.pronamespace = 'txmq'::regnamespace
	  UNION ALL
	  SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' '
			 || coalesce(c.relacl::text, '') || ' '
			 || coalesce(array_to_string(c.reloptions, ','), '') || ' ('
			 || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
								|| CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
								|| coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''),
								', ' ORDER BY a.attnum)
						   FROM pg_attribute a
						   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
						  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
			 || ')'
		FROM pg_class c WHERE c.relnamespace = 'txmq'::regnamespace
	  UNION ALL
	  SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'txmq'
	  UNION ALL
	  SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid)
		FROM pg_constraint WHERE connamespace = 'txmq'::regnamespace
	  UNION ALL
	  SELECT 'type ' || t.typname || ' ' || t.typtype::text || coalesce(' ' ||
			 (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
				FROM pg_enum WHERE enumtypid = t.oid), '')
		FROM pg_type t WHERE t.typnamespace = 'txmq'::regnamespace
	  UNION ALL
	  SELECT 'view ' || viewname || ' ' || definition FROM pg_views WHERE schemaname = 'txmq'
	  UNION ALL
	  SELECT 'dumped ' || c.oid::regclass || ' ' || coalesce(e.extcondition[i], '')
		FROM pg_extension e, generate_subscripts(e.extconfig, 1) i
		JOIN pg_class c ON true
	   WHERE e.extname = 'txmq' AND c.oid = e.extconfig[i]
	  UNION ALL
	  SELECT 'member ' || pg_describe_object(classid, objid, 0)
		FROM pg_depend
	   WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
		 AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'txmq')
	) s
};
my $fresh_schema = $node->safe_psql('fresh', $schema);
is($node->safe_psql('old', $schema), $fresh_schema,
	'the updated schema is that of a fresh install, object for object');
unlike($fresh_schema, qr/_claim/, 'txmq._claim is gone');
like($fresh_schema, qr/^function txmq\.receive\(/m, 'the comparison sees the functions');

# the queue works after the update: ordered and plain receive, the lease
# taken under 0.1 can be acked, the half message commits, redrive works
is($node->safe_psql('old', q{
	SELECT string_agg(payload->>'n', ',' ORDER BY msg_id)
	  FROM txmq.receive('up_o', 'up_o', 10)}), '1,2',
	'ordered receive after the update: one message per key');
is($node->safe_psql('old', q{
	SELECT count(*) FROM (SELECT txmq.ack('up_t', 'b', msg_id)
	  FROM txmq.msg WHERE leased AND sub_id =
		(SELECT sub_id FROM txmq.subscription WHERE name = 'b')) x}),
	'1', 'the lease taken under 0.1 is acked');
$node->safe_psql('old', q{
	SELECT txmq.commit_half(msg_id) FROM txmq.half WHERE state = 'half'});
# 0.4: receipts and dedup keys work in the updated database
is($node->safe_psql('old', q{
	SELECT txmq.create_queue('up_d', dedup_window => '1 h');
	SELECT txmq.send('up_d', '1', dedup_key => 'k') = txmq.send('up_d', '2', dedup_key => 'k');
	SELECT txmq.ack('up_d', 'up_d', msg_id, receipt) FROM txmq.receive('up_d', 'up_d');
	SELECT count(*) FROM (SELECT txmq.drop_topic('up_d')) d;
}), "\nt\nt\n1", 'dedup keys and receipts after the update');
# 0.5: a subscription's retention, and the stats column that counts it
is($node->safe_psql('old', q{
	SELECT txmq.alter_subscription('up_t', 'b', retention => '1 day');
	SELECT retention FROM txmq.subscription WHERE name = 'b';
	SELECT expired FROM txmq.stats WHERE subscription = 'b';
	SELECT txmq.alter_subscription('up_t', 'b', retention => '0');
}), "\n1 day\n0\n", 'retention after the update');
is($node->safe_psql('old', q{SELECT txmq.redrive('up_t', 'a')}), '1',
	'redrive after the update');
is($node->safe_psql('old', q{
	WITH r AS (SELECT msg_id FROM txmq.receive('up_t', 'a', 100))
	SELECT count(*) || ' received, ' || count(*) FILTER (WHERE txmq.ack('up_t', 'a', msg_id)) || ' acked' FROM r}),
	'7 received, 7 acked', 'subscription a: its 5 ready, the redriven and the committed half');
is($node->safe_psql('old', q{
	SELECT count(*) FROM txmq.receive('up_t', 'b', 100)}), '6',
	'subscription b: its 5 ready and the committed half');

# an installation still on 0.1 gets a clear error from what 0.2 removed
$node->safe_psql('postgres', q{CREATE EXTENSION txmq VERSION '0.1'});
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT txmq._claim(1, 1)');
like($err, qr/txmq\._claim\(\) was removed in txmq 0\.2.*\n.*ALTER EXTENSION txmq UPDATE/,
	'a 0.1 installation is told to update');

$node->stop;
done_testing();
