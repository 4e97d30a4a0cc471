# dump_restore: pg_dump -Fc / pg_restore of a database that uses txmq
# (SPEC section 4, issue 6 "Faults").
#
# The source database has topics (one with a check function), fan-out
# subscriptions, queued, leased (lease mode, committed), delayed, nacked,
# half and dead-lettered messages, and grants, all owned by a non-superuser.
# It is dumped with pg_dump -Fc and restored into a fresh database, where
# CREATE EXTENSION comes from the dump.  Every txmq table must have the same
# contents, the sequences must continue, and the queue must work: receive,
# ack, the lease, the delay, commit_half, redrive, grants and the worker.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $node = TxmqTest::node('dump', dbname => 'src',
	conf => "log_statement = none\n");

$node->safe_psql('postgres', q{
	CREATE ROLE dump_owner;
	CREATE ROLE dump_app;
	ALTER DATABASE src OWNER TO dump_owner;
});

# ---- the source database ----
$node->safe_psql('src', q{
	GRANT EXECUTE ON FUNCTION txmq.create_topic,
		txmq.create_queue TO dump_owner;
	CREATE FUNCTION public.dump_check(m txmq.message) RETURNS txmq.check_result
	LANGUAGE sql AS $$ SELECT 'unknown'::txmq.check_result $$;
	SET ROLE dump_owner;
	-- fan-out: one topic, two subscriptions
	SELECT txmq.create_topic('d.orders', notify => false,
		check_function => 'public.dump_check(txmq.message)',
		check_after => '1 h', check_interval => '2 h', max_checks => 3,
		on_checks_exhausted => 'dead_letter');
	SELECT txmq.create_subscription('d.orders', 'cart', max_deliveries => 3,
		lease => '45 s', backoff_base => '2 s', backoff_max => '1 min');
	SELECT txmq.create_subscription('d.orders', 'billing', retention => '7 days',
		on_expiry => 'drop');
	SELECT txmq.create_queue('d-jobs', lease => '1 h', dedup_window => '1 day');
	SELECT txmq.grant('d.orders', 'dump_app', 'send');
	SELECT txmq.grant('d.orders', 'dump_app', 'receive', 'cart');

	-- queued
	SELECT txmq.send('d.orders', '{"n": 1, "s": "it''s \"quoted\""}', '{"h": 1}', 'k1');
	SELECT txmq.send('d.orders', '{"n": 2}');
	SELECT count(*) FROM txmq.send_batch('d-jobs', ARRAY['1', '2', '3', '4']::jsonb[],
		dedup_keys => ARRAY['j1', 'j2', 'j3', 'j4']);
	-- delayed
	SELECT txmq.send('d.orders', '{"n": 3}', delay => '1 h');
	-- half, unresolved
	SELECT txmq.send_half('d.orders', '{"n": 4}', producer_group => 'dump_producers');
	-- leased in lease mode (committed), ready for ack with their receipts
	-- after the restore
	CREATE TABLE public.dump_receipts AS
		SELECT msg_id, receipt FROM txmq.receive('d-jobs', 'd-jobs', 2);
	-- nacked with an error, due in an hour
	SELECT count(*) FROM txmq.receive('d.orders', 'billing', 1);
});
# nack / reject the ones just taken (ids by query, as the owner)
$node->safe_psql('src', q{
	SELECT txmq.nack('d.orders', 'billing', m.msg_id, '1 h', 'billing is down')
	  FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
	 WHERE s.name = 'billing' AND m.leased;
	BEGIN;
	SELECT txmq.reject('d.orders', 'cart', msg_id, 'poison')
	  FROM txmq.receive('d.orders', 'cart', 1);
	COMMIT;
});

my $snapshot = q{
	SELECT 'topic', md5(string_agg(t::text, '|' ORDER BY topic_id)) FROM txmq.topic t
	UNION ALL SELECT 'subscription', md5(string_agg(t::text, '|' ORDER BY sub_id)) FROM txmq.subscription t
	UNION ALL SELECT 'msg', md5(string_agg(t::text, '|' ORDER BY sub_id, msg_id)) FROM txmq.msg t
	UNION ALL SELECT 'dead_letter', md5(string_agg(t::text, '|' ORDER BY sub_id, msg_id)) FROM txmq.dead_letter t
	UNION ALL SELECT 'half', md5(string_agg(t::text, '|' ORDER BY msg_id)) FROM txmq.half t
	UNION ALL SELECT 'grants', md5(string_agg(t::text, '|' ORDER BY t::text)) FROM txmq.grants t
	UNION ALL SELECT 'dedup', md5(string_agg(t::text, '|' ORDER BY topic_id, key)) FROM txmq.dedup t
	UNION ALL SELECT 'sequences', (SELECT last_value FROM txmq.topic_id_seq) || ','
		|| (SELECT last_value FROM txmq.sub_id_seq) || ','
		|| (SELECT last_value FROM txmq.msg_id_seq)
	UNION ALL SELECT 'counts', (SELECT count(*) FROM txmq.topic) || ' topics, '
		|| (SELECT count(*) FROM txmq.subscription) || ' subscriptions, '
		|| (SELECT count(*) FROM txmq.msg) || ' queued ('
		|| (SELECT count(*) FILTER (WHERE leased) FROM txmq.msg) || ' leased, '
		|| (SELECT count(*) FILTER (WHERE vt > now() + '30 min') FROM txmq.msg) || ' due later), '
		|| (SELECT count(*) FROM txmq.dead_letter) || ' dead, '
		|| (SELECT count(*) FROM txmq.half) || ' half, '
		|| (SELECT count(*) FROM txmq.grants) || ' grants'
	UNION ALL SELECT 'stats', string_agg(concat_ws(' ', topic, subscription, ready, delayed,
		in_flight, dead, half_pending), '; ' ORDER BY topic, subscription) FROM txmq.stats
		WHERE setting IS NULL
};
my $before = $node->safe_psql('src', $snapshot);
like($before,
	qr/counts\|2 topics, 3 subscriptions, 9 queued \(2 leased, 5 due later\), 1 dead, 1 half, 2 grants/,
	'the source has every kind of message');

# ---- dump and restore into a fresh database ----
my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump ],
	'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE dst OWNER dump_owner');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ],
	'pg_restore into a fresh database');

is($node->safe_psql('dst', q{SELECT extversion = default_version
	FROM pg_extension JOIN pg_available_extensions ON name = extname
	WHERE extname = 'txmq'}),
	't', 'the dump created the extension, at the current version');
is($node->safe_psql('dst', $snapshot), $before,
	'every txmq table, the sequences and the stats are the same after the restore');

# ---- the queue works after the restore ----
ok( $node->poll_query_until('dst',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'txmq worker' AND datname = 'dst'}),
	'the restored database has its worker');

is( $node->safe_psql('dst', q{
	SELECT txmq.send('d-jobs', '"new"') > greatest(
		(SELECT max(msg_id) FROM txmq.msg WHERE payload <> '"new"'),
		(SELECT max(msg_id) FROM txmq.half),
		(SELECT max(msg_id) FROM txmq.dead_letter));
	SET ROLE dump_owner;
	SELECT txmq.create_queue('d-after') IS NULL;
	RESET ROLE;
	SELECT max(sub_id) > 3 FROM txmq.subscription;
}), "t\nt\nt", 'new messages and subscriptions get new ids; the EXECUTE grant on create_queue survived');

# the app role's grants survived: it receives and acks its subscription
my $out = $node->safe_psql('dst', q{
	SET ROLE dump_app;
	BEGIN;
	CREATE TEMP TABLE got AS SELECT * FROM txmq.receive('d.orders', 'cart', 10);
	SELECT txmq.ack('d.orders', 'cart', ARRAY(SELECT msg_id FROM got));
	SELECT string_agg(payload::text || ' ' || coalesce(headers::text, '-') || ' '
		|| coalesce(key, '-') || ' ' || attempt, '; ' ORDER BY msg_id) FROM got;
	COMMIT;
});
is($out, qq{1\n{"n": 2} - - 1},
	'the app role still receives and acks on its grant (the dead letter stays dead)');
my ($rc, $o, $err) = $node->psql('dst', q{
	SET ROLE dump_app;
	SELECT count(*) FROM txmq.receive('d.orders', 'billing');
});
like($err, qr/permission denied|may not|privilege/i,
	'the app role still cannot receive what it was not granted');

# the dedup keys came along: sending them again enqueues nothing
is( $node->safe_psql('dst', q{
	SELECT array_agg(i ORDER BY i) = (SELECT array_agg(msg_id ORDER BY msg_id)
		FROM txmq.dedup WHERE key IN ('j1', 'j4'))
	  FROM txmq.send_batch('d-jobs', ARRAY['"j1"', '"j4"']::jsonb[],
		dedup_keys => ARRAY['j1', 'j4']) i;
}), 't', 'a dedup key sent before the dump returns the first message\'s id');

# leased messages stay leased, acking the lease with its receipt works
is( $node->safe_psql('dst', q{
	SET ROLE dump_owner;
	SELECT count(*) FROM txmq.receive('d-jobs', 'd-jobs', 10, lease => '1 min');
	SELECT count(*) FILTER (WHERE txmq.ack('d-jobs', 'd-jobs', msg_id, receipt))
	  FROM dump_receipts;
}), "3\n2", 'the two messages leased before the dump are not delivered again (3 of 5 come), and their receipts ack them');

# commit_half of the restored half message delivers it to both subscriptions
is( $node->safe_psql('dst', q{
	SET ROLE dump_owner;
	SELECT count(*) FROM (SELECT txmq.commit_half(msg_id) FROM txmq.half_messages('d.orders')) c;
	SELECT count(*) FROM txmq.receive('d.orders', 'cart', 10, lease => '1 min');
}), "1\n1", 'commit_half of the restored half message delivers it');

# redrive the dead letter
is( $node->safe_psql('dst', q{
	SET ROLE dump_owner;
	SELECT payload, attempts, last_error FROM txmq.dead_letters('d.orders', 'cart');
	SELECT txmq.redrive('d.orders', 'cart');
	SELECT payload->>'n' FROM txmq.receive('d.orders', 'cart', 10);
}), qq{{"n": 1, "s": "it's \\"quoted\\""}|1|poison\n1\n1},
	'the dead letter is redriven and delivered');

# the source is untouched by all this
is($node->safe_psql('src', $snapshot), $before, 'the source database is unchanged');

$node->stop;
done_testing();
