# standby_failover: physical replication (SPEC section 4, issue 6 "Faults").
#
# A primary with synchronous replication to a streaming standby made with
# pg_basebackup over loopback.  On the hot standby, changing a queue fails
# with SQLSTATE 25006 and txmq's message, and reading functions still work.
# Under a running producer (whose client records every COMMIT the server
# acknowledged) and a transactional consumer, the primary is crashed and the
# standby promoted: every acknowledged commit is on the new primary, a
# consumer moved there gets every message exactly once (transactional
# mode), leases taken on the old primary run out and come back, a half
# message is resolved by the new primary's worker, and the queue works.
use strict;
use warnings;

use File::Temp qw(tempdir);
use POSIX ();
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $primary = TxmqTest::node('primary',
	init => { allows_streaming => 1 },
	conf => "log_statement = none\n");

$primary->safe_psql('postgres', q{
	CREATE TABLE sent (msg_id bigint NOT NULL, pid bigint NOT NULL);
	CREATE TABLE consumed (msg_id bigint NOT NULL, pid bigint NOT NULL);
	SELECT txmq.create_topic('fo', notify => false, check_after => '1 s',
		check_interval => '1 s', max_checks => 100);
	SELECT txmq.create_subscription('fo', 'tx', lease => '2 s');
	SELECT txmq.create_subscription('fo', 'lease', lease => '2 s');
});

# ---- the standby: pg_basebackup over the loopback socket, streaming ----
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

$primary->append_conf('postgresql.conf',
	"synchronous_standby_names = 'standby'\nsynchronous_commit = on\n");
$primary->reload;
ok( $primary->poll_query_until('postgres',
		q{SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'},
		'sync'),
	'the standby is a synchronous standby');

# ---- the hot standby is read-only, clearly ----
$primary->safe_psql('postgres', q{
	INSERT INTO sent SELECT txmq.send('fo', jsonb_build_object('p', g)), g
	  FROM generate_series(1, 20) g;
});
$primary->wait_for_catchup($standby, 'replay');

sub standby_error
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $standby->psql('postgres',
		"\\set VERBOSITY verbose\n$sql");
	return $err;
}
for my $call (
	q{SELECT * FROM txmq.receive('fo', 'tx')},
	q{SELECT * FROM txmq.receive('fo', 'tx', 5, wait => '1 s')},
	q{SELECT txmq.send('fo', '{}')},
	q{SELECT txmq.ack('fo', 'tx', 1)},
	q{SELECT txmq.nack('fo', 'tx', 1)},
	q{SELECT txmq.send_half('fo', '{}', producer_group => 'g')},
	q{SELECT txmq.create_queue('fo_standby')},
	q{SELECT txmq.purge('fo')},
	q{SELECT txmq.redrive('fo', 'tx')})
{
	like(standby_error($call),
		qr/ERROR:  25006: txmq cannot change queues on a hot standby/,
		"on the standby: $call fails with 25006 and txmq's message");
}
like(standby_error(q{SELECT * FROM txmq.receive('fo', 'tx')}),
	qr/HINT:  Producers and consumers must connect to the primary/,
	'the error says where to connect');
is($standby->safe_psql('postgres',
		q{SELECT ready FROM txmq.stats WHERE subscription = 'tx'}),
	'20', 'txmq.stats works on the standby');
is($standby->safe_psql('postgres',
		q{SELECT count(*) FROM txmq.dead_letters('fo', 'tx')}),
	'0', 'dead_letters works on the standby');
is($primary->safe_psql('postgres', q{SELECT count(*) FROM txmq.msg}),
	'40', 'nothing changed on the primary');

# leases taken on the primary, never acked: they must come back after
# failover
my $leased = $primary->safe_psql('postgres',
	q{SELECT string_agg(msg_id::text, ',' ORDER BY msg_id) FROM txmq.receive('fo', 'lease', 5, lease => '3 s')});
like($leased, qr/^\d+(,\d+){4}$/, 'five messages leased on the primary');

# Half messages around the failover.  H1: its local transaction is still
# open on the primary when the primary dies, so the old primary can only
# answer "unknown", and the new primary must roll it back (the transaction
# died with the old primary).  H2: its local transaction committed, its
# producer group is asked (no check function, no local_xid), and the
# producer's commit_half reaches the new primary only after the failover.
my $local = $primary->background_psql('postgres');
my $local_xid = $local->query_safe(
	q{BEGIN; INSERT INTO sent VALUES (-1, -1); SELECT pg_current_xact_id();});
like($local_xid, qr/^\d+$/, 'a local transaction is open on the primary');
my $h1 = $primary->safe_psql('postgres',
	qq{SELECT txmq.send_half('fo', '{"p": -1}', local_xid => '$local_xid')});
my $h2 = $primary->safe_psql('postgres', q{
	BEGIN;
	SELECT txmq.send_half('fo', '{"p": -2}', producer_group => 'fo_producers') AS h \gset
	INSERT INTO sent VALUES (:h, -2);
	COMMIT;
	SELECT :h;
});
like("$h1,$h2", qr/^\d+,\d+$/, 'half messages sent');
ok( $primary->poll_query_until('postgres',
		qq{SELECT last_result = 'unknown' FROM txmq.half WHERE msg_id = $h1}),
	'the old primary checks the open local transaction: unknown');

# ---- a producer and a consumer run while the primary dies ----
my $tmp      = tempdir(CLEANUP => 1);
my $deadline = time + 60;
my $connstr  = $primary->connstr('postgres');
my @kids;

sub spawn
{
	my ($name, $sql_of) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>', "$tmp/$name.out");
		open(STDERR, '>', "$tmp/$name.err");
		open(my $fh, '>', "$tmp/$name.sql") or POSIX::_exit(1);
		print $fh $sql_of->();
		close $fh;
		# one run: when the primary dies, psql exits
		exec('psql', '-X', '-q', '-At', '-d', $connstr, '-f', "$tmp/$name.sql");
	}
	push @kids, $pid;
}

spawn(
	'producer',
	sub {
		my $sql = '';
		for my $p (1001 .. 9000)
		{
			$sql .= "BEGIN;\nINSERT INTO sent SELECT txmq.send('fo', '{\"p\": $p}'), $p;\n"
			  . "COMMIT;\n\\echo committed $p\n";
		}
		return $sql;
	});
spawn(
	'consumer',
	sub {
		return q{
BEGIN;
WITH r AS (SELECT msg_id, payload FROM txmq.receive('fo', 'tx', 5, wait => '100 ms')),
	 ins AS (INSERT INTO consumed SELECT msg_id, (payload->>'p')::bigint FROM r RETURNING msg_id)
SELECT txmq.ack('fo', 'tx', coalesce(array_agg(msg_id), '{}')) FROM ins;
COMMIT;
} x 20000;
	});

# The commits the producer saw acknowledged, as its output says so far.
# A commit is visible on the primary a moment before its client hears of
# it, so the test waits on what the producer heard, not on the table.
sub acked
{
	return map { /^committed (\d+)$/ ? $1 : () }
	  split /\n/, slurp_file("$tmp/producer.out");
}

# let them run, then kill the primary in the middle of it
ok( $primary->poll_query_until('postgres',
		q{SELECT (SELECT count(*) FROM consumed) > 50}),
	'the consumer is running');
my $until = time + 180;
usleep(50_000) while scalar(acked()) < 300 && time < $until;
cmp_ok(scalar(acked()), '>=', 300, 'the producer is running');
$primary->stop('immediate');
$standby->promote;
waitpid($_, 0) for @kids;
$local->{run}->kill_kill;    # its server is gone

# the producer of H2 reconnects to the new primary and commits
$standby->safe_psql('postgres', "SELECT txmq.commit_half($h2)");

my @acked = acked();
cmp_ok(scalar(@acked), '>=', 300, 'the producer saw commits acknowledged');

# every acknowledged commit is on the new primary
$standby->safe_psql('postgres',
	'CREATE TABLE acked (pid bigint); INSERT INTO acked VALUES ('
	  . join('), (', @acked) . ')');
is( $standby->safe_psql('postgres',
		q{SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM sent s WHERE s.pid = a.pid)}),
	'0',
	'every commit the primary acknowledged is on the promoted standby');

# ---- consumers moved to the new primary ----
my $drain = q{
BEGIN;
WITH r AS (SELECT msg_id, payload FROM txmq.receive('fo', 'tx', 100)),
	 ins AS (INSERT INTO consumed SELECT msg_id, (payload->>'p')::bigint FROM r RETURNING msg_id)
SELECT txmq.ack('fo', 'tx', coalesce(array_agg(msg_id), '{}')) FROM ins;
COMMIT;
SELECT (SELECT count(*) FROM txmq.msg m JOIN txmq.subscription s USING (sub_id) WHERE s.name = 'tx')
	 + (SELECT count(*) FROM txmq.half WHERE state = 'half');
};
my $left = -1;
my $t0   = time;
while (time - $t0 < 60)
{
	my @out = split /\n/, $standby->safe_psql('postgres', $drain);
	$left = $out[-1];
	last if $left eq '0';
	usleep(100_000);
}
is($left, '0', 'drained on the new primary, the half message included');
is( $standby->safe_psql('postgres',
		qq{SELECT string_agg(state, ',' ORDER BY msg_id) FROM txmq.half WHERE msg_id IN ($h1, $h2)}),
	'rolled_back,committed',
	"the new primary's worker rolled back H1 (its local transaction died); H2 was committed");

my ($sent, $missing, $phantom, $dup) = split /\|/, $standby->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM sent),
		   (SELECT count(*) FROM sent s WHERE NOT EXISTS
				(SELECT 1 FROM consumed c WHERE c.msg_id = s.msg_id AND c.pid = s.pid)),
		   (SELECT count(*) FROM consumed c WHERE NOT EXISTS
				(SELECT 1 FROM sent s WHERE c.msg_id = s.msg_id AND c.pid = s.pid)),
		   (SELECT count(*) FROM (SELECT msg_id FROM consumed GROUP BY 1 HAVING count(*) > 1) d)
});
is($missing, '0', 'every committed message consumed (transactional mode)');
is($phantom, '0', 'nothing consumed that was not committed');
is($dup,     '0', 'nothing consumed twice');

# the leases taken on the old primary run out and come back
my $back = '';
$t0 = time;
while (time - $t0 < 30)
{
	$back = $standby->safe_psql('postgres',
		q{SELECT string_agg(msg_id::text, ',' ORDER BY msg_id)
			FROM txmq.receive('fo', 'lease', 5) WHERE attempt = 2});
	last if $back ne '';
	usleep(200_000);
}
is($back, $leased, 'leases taken on the old primary come back with attempt 2');

# the queue works after promotion
is( $standby->safe_psql('postgres', q{
		SELECT txmq.create_queue('fo_after') IS NULL;
		SELECT txmq.send('fo_after', '"hello"') > (SELECT max(msg_id) FROM sent);
	}),
	"t\nt",
	'sends on the new primary get new, higher ids');
is( $standby->safe_psql('postgres', q{
		BEGIN;
		SELECT txmq.ack('fo_after', 'fo_after', msg_id) FROM txmq.receive('fo_after', 'fo_after');
		COMMIT;
		SELECT ready + in_flight FROM txmq.stats WHERE topic = 'fo_after';
	}),
	"t\n0",
	'receive and ack work on the new primary');

diag("standby_failover: $sent committed messages checked after promotion ("
	  . scalar(@acked)
	  . " acknowledged to the producer), lost 0, duplicated 0");

$standby->stop;
done_testing();
