# half_worker: check-back by the background worker on a real cluster, with
# short intervals (check_after 100 ms, check_interval 200 ms, naptime
# 100 ms): resolution by the check function, by local_xid and by the
# exhaustion policies; errors and timeouts; a worker killed mid-check; a
# server restart; the launcher following CREATE / DROP EXTENSION and
# CREATE / DROP DATABASE.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TxmqTest;

# restart_after_crash: the SIGKILL test wants the postmaster to reinitialise
my $node = TxmqTest::node('main',
	conf => "restart_after_crash = on\ntxmq.check_timeout = 500ms\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub half_state
{
	my ($id) = @_;
	return sql("SELECT state || ':' || check_count FROM txmq.half WHERE msg_id = $id");
}

sub wait_state
{
	my ($id, $expected, $what) = @_;
	TxmqTest::poll($node, 'postgres',
		"SELECT state || ':' || check_count FROM txmq.half WHERE msg_id = $id",
		$expected, $what);
}

sub worker_pid
{
	my ($db) = @_;
	return sql("SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'txmq worker' AND datname = '$db'");
}

# An application role owns its topics and its check function.
sql(q{
	CREATE ROLE app;
	GRANT EXECUTE ON FUNCTION
		txmq.create_topic,
		txmq.create_queue TO app;
	CREATE SCHEMA shop AUTHORIZATION app;
	SET ROLE app;
	CREATE TABLE shop.orders (id int PRIMARY KEY);
	CREATE TABLE shop.calls (msg_id bigint, who name, at timestamptz DEFAULT clock_timestamp());
	CREATE TABLE shop.slow (on_ boolean);
	CREATE FUNCTION shop.check_order(m txmq.message) RETURNS txmq.check_result
	LANGUAGE plpgsql AS $$
	BEGIN
		WHILE m.payload ? 'slow' AND EXISTS (SELECT FROM shop.slow) LOOP
			PERFORM pg_sleep(0.05);
		END LOOP;
		INSERT INTO shop.calls (msg_id, who) VALUES (m.msg_id, current_user);
		IF m.payload ? 'fail' THEN
			RAISE EXCEPTION 'order service unreachable';
		END IF;
		IF m.payload ? 'sleep' THEN
			PERFORM pg_sleep(5);
		END IF;
		IF m.payload ? 'unsure' THEN
			RETURN 'unknown';
		END IF;
		IF EXISTS (SELECT FROM shop.orders WHERE id = (m.payload->>'order')::int) THEN
			RETURN 'commit';
		END IF;
		RETURN 'rollback';
	END $$;
	SELECT txmq.create_queue('orders', check_function => 'shop.check_order(txmq.message)',
		check_after => '100 ms', check_interval => '200 ms', max_checks => 3);
	SELECT txmq.create_queue('orders_dl', check_function => 'shop.check_order(txmq.message)',
		check_after => '100 ms', check_interval => '200 ms', max_checks => 3,
		on_checks_exhausted => 'dead_letter');
	SELECT txmq.create_queue('later', check_function => 'shop.check_order(txmq.message)',
		check_after => '3 s', check_interval => '200 ms');
	SELECT txmq.create_queue('xid', check_after => '100 ms', check_interval => '200 ms');
});

TxmqTest::poll($node, 'postgres',
	q{SELECT bool_and(worker_running) FROM txmq.stats}, 't',
	'stats: the worker runs');

# --- the producer sends, commits its order, and dies -----------------------
my $producer = $node->background_psql('postgres');
my $ok_id = $producer->query_safe(
	q{SELECT txmq.send_half('orders', '{"order": 1}')});
$producer->query_safe(q{INSERT INTO shop.orders VALUES (1)});
my $gone_id = $producer->query_safe(
	q{SELECT txmq.send_half('orders', '{"order": 2}')});
$producer->quit;
is(sql("SELECT count(*) FROM txmq.receive('orders', 'orders')"), '0',
	'half messages are invisible before check-back');
wait_state($ok_id, 'committed:1', 'producer died after its order: committed');
wait_state($gone_id, 'rolled_back:1', 'order missing: rolled back');
is(sql("SELECT string_agg(msg_id::text, ',') FROM txmq.receive('orders', 'orders', 10)"),
	$ok_id, 'only the committed message is delivered, under its id');
is(sql("SELECT string_agg(DISTINCT who, ',') FROM shop.calls"), 'app',
	'the check function runs as the topic owner');
my $latency = sql("SELECT round(extract(epoch FROM resolved_at - (created_at + '100 ms'))
	* 1000) FROM txmq.half WHERE msg_id = $ok_id");
note "check due -> resolved: $latency ms";
cmp_ok($latency, '<', 1000, 'resolved within a second of being due');

# --- 'unknown': exactly max_checks checks, then the policy -----------------
my $unsure = sql(q{SELECT txmq.send_half('orders', '{"unsure": 1}')});
my $unsure_dl = sql(q{SELECT txmq.send_half('orders_dl', '{"unsure": 1}')});
wait_state($unsure, 'rolled_back:3', 'unknown x3, then rolled back');
wait_state($unsure_dl, 'dead_letter:3', 'unknown x3, then dead letter');
is(sql("SELECT msg_id || ':' || last_error FROM txmq.dead_letters('orders_dl', 'orders_dl')"),
	"$unsure_dl:half message unresolved after 3 checks", 'in the dead letters');
sleep 1;
is(sql("SELECT count(*) FROM shop.calls WHERE msg_id IN ($unsure, $unsure_dl)"),
	'6', 'checked exactly max_checks times, never again');

# --- errors and timeouts count as unknown; others are still served --------
my $fail = sql(q{SELECT txmq.send_half('orders', '{"fail": 1}')});
my $sleep = sql(q{SELECT txmq.send_half('orders', '{"sleep": 1, "order": 1}')});
my $fine = sql(q{SELECT txmq.send_half('orders', '{"order": 1}')});
wait_state($fine, 'committed:1', 'a good message is served meanwhile');
wait_state($fail, 'rolled_back:3', 'a raising check function: unknown x3');
wait_state($sleep, 'rolled_back:3', 'a check function past its timeout: unknown x3');
ok($node->log_contains(
		"check-back of half message $fail failed and counts as unknown: order service unreachable"),
	'the error is logged with the message id');
ok($node->log_contains(
		"check-back of half message $sleep failed and counts as unknown: canceling statement due to statement timeout"),
	'the timeout is logged with the message id');
is(sql(q{SELECT checks_commit || '/' || checks_rollback || '/' || checks_unknown
	FROM txmq.stats WHERE topic = 'orders'}), '2/1/9', 'stats count checks by result');

# --- pg_terminate_backend: the launcher restarts the worker ---------------
my $pid = worker_pid('postgres');
sql("SELECT pg_terminate_backend($pid)");
TxmqTest::poll($node, 'postgres',
	qq{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txmq worker'
		AND datname = 'postgres' AND pid <> $pid}, '1',
	'a terminated worker is restarted');

# --- SIGKILL mid-check: checked again after the restart -------------------
# The check function waits while shop.slow has a row; txmq.check_timeout is
# raised so that it does not give up meanwhile.
sql(q{ALTER SYSTEM SET txmq.check_timeout = '1 min'; SELECT pg_reload_conf();
	INSERT INTO shop.slow VALUES (true); INSERT INTO shop.orders VALUES (3)});
my $in_check = q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'txmq worker' AND wait_event = 'PgSleep'};
my $slow = sql(q{SELECT txmq.send_half('orders', '{"slow": 1, "order": 3}')});
TxmqTest::poll($node, 'postgres', $in_check, '1', 'the worker is inside the check');
$pid = worker_pid('postgres');
kill 'KILL', $pid;
TxmqTest::poll($node, 'postgres', $in_check, '1',
	'after SIGKILL and crash restart the message is checked again');
is(half_state($slow), 'half:0', 'the interrupted check left no trace');
sql(q{DELETE FROM shop.slow});
wait_state($slow, 'committed:1', 'and the second check resolves it');
is(sql("SELECT count(*) FROM shop.calls WHERE msg_id = $slow"), '1',
	'one completed check');
sql(q{ALTER SYSTEM RESET txmq.check_timeout; SELECT pg_reload_conf()});

# --- server restart with pending half messages ----------------------------
my $later_ok = sql(q{SELECT txmq.send_half('later', '{"order": 1}')});
my $later_no = sql(q{SELECT txmq.send_half('later', '{"order": 99}')});
$node->restart;
is(half_state($later_ok), 'half:0', 'still pending after the restart');
wait_state($later_ok, 'committed:1', 'checked after the restart: committed');
wait_state($later_no, 'rolled_back:1', 'checked after the restart: rolled back');

# --- local_xid: the producer's transaction in another database ------------
$node->safe_psql('postgres', 'CREATE DATABASE shopdb');
$node->safe_psql('shopdb', 'CREATE TABLE orders (id int)');

# killed before its local commit
my $p1 = $node->background_psql('shopdb');
$p1->query_safe('BEGIN');
my $xid1 = $p1->query_safe('SELECT pg_current_xact_id()');
my $p1_pid = $p1->query_safe('SELECT pg_backend_pid()');
my $x1 = sql("SELECT txmq.send_half('xid', '{\"o\": 1}', local_xid => '$xid1')");
$p1->query_safe('INSERT INTO orders VALUES (1)');
TxmqTest::poll($node, 'postgres',
	"SELECT check_count >= 2 AND last_result = 'unknown' FROM txmq.half WHERE msg_id = $x1",
	't', 'local transaction in progress: unknown');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($p1_pid)");
$p1->quit;
TxmqTest::poll($node, 'postgres',
	"SELECT state FROM txmq.half WHERE msg_id = $x1", 'rolled_back',
	'producer killed before its local commit: rolled back');

# killed after its local commit, before commit_half
my $p2 = $node->background_psql('shopdb');
$p2->query_safe('BEGIN');
my $xid2 = $p2->query_safe('SELECT pg_current_xact_id()');
my $x2 = sql("SELECT txmq.send_half('xid', '{\"o\": 2}', local_xid => '$xid2')");
$p2->query_safe('INSERT INTO orders VALUES (2)');
$p2->query_safe('COMMIT');
$p2->quit;
TxmqTest::poll($node, 'postgres',
	"SELECT state FROM txmq.half WHERE msg_id = $x2", 'committed',
	'producer died after its local commit: committed');
is(sql("SELECT string_agg(payload::text, ',') FROM txmq.receive('xid', 'xid', 10)"),
	'{"o": 2}', 'only that one is delivered');

# --- the launcher: CREATE EXTENSION, templates, DROP EXTENSION / DATABASE ---
$node->safe_psql('postgres', 'CREATE DATABASE newdb');
my $t0 = time;
$node->safe_psql('newdb', 'CREATE EXTENSION txmq');
TxmqTest::poll($node, 'postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txmq worker'
		AND datname = 'newdb'}, '1', 'CREATE EXTENSION gets a worker');
my $start_s = time - $t0;
note sprintf('worker for a new installation after %.2f s', $start_s);
cmp_ok($start_s, '<', 5, 'within seconds, without a restart');
$node->safe_psql('newdb', q{SELECT txmq.create_queue('q')});
is($node->safe_psql('newdb', q{SELECT worker_running FROM txmq.stats WHERE topic = 'q'}), 't',
	'stats of the new database: worker_running');

# copying a served database and then dropping it: the worker steps aside
$node->safe_psql('postgres', 'CREATE DATABASE copydb TEMPLATE newdb');
TxmqTest::poll($node, 'postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txmq worker'
		AND datname = 'copydb'}, '1', 'a database copied from one with txmq gets a worker');

TxmqTest::poll($node, 'postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txmq worker'
		AND datname = 'newdb'}, '1', 'the template database has its worker back');
$t0 = time;
$node->safe_psql('postgres', 'DROP DATABASE newdb');
my $drop_s = time - $t0;
note sprintf('DROP DATABASE took %.2f s', $drop_s);
cmp_ok($drop_s, '<', 4, 'DROP DATABASE is not blocked by the worker');

$node->safe_psql('copydb', 'DROP EXTENSION txmq');
TxmqTest::poll($node, 'postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txmq worker'
		AND datname = 'copydb'}, '0', 'DROP EXTENSION stops the worker');
sleep 1;
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'txmq worker' AND datname = 'copydb'}), '0',
	'and it is not restarted');
$node->safe_psql('copydb', 'CREATE EXTENSION txmq');
TxmqTest::poll($node, 'postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txmq worker'
		AND datname = 'copydb'}, '1', 'until it is created again');

$node->stop;

# --- without shared_preload_libraries --------------------------------------
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init(extra => [ '--no-locale', '--encoding=UTF8' ]);
$plain->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$plain->start;
my ($rc, $out, $err) = $plain->psql('postgres', 'CREATE EXTENSION txmq');
is($rc, 0, 'CREATE EXTENSION works without preloading');
like($err, qr/txmq is not in shared_preload_libraries: half messages will not be checked back/,
	'and says that check-back will not run');
$plain->safe_psql('postgres', q{SELECT txmq.create_queue('q')});
$plain->safe_psql('postgres', q{SELECT txmq.send('q', '{"a": 1}')});
is($plain->safe_psql('postgres', q{SELECT payload FROM txmq.receive('q', 'q')}),
	'{"a": 1}', 'send and receive work without preloading');
is($plain->safe_psql('postgres', q{SELECT worker_running FROM txmq.stats}),
	'f', 'stats say worker_running = false');
$plain->stop;

done_testing();
