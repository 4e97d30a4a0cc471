# auto_failover: automatic failover with pg_auto_failover (issue 16).
#
# A formation on loopback — a monitor and two data nodes, with the
# synchronous replication pg_auto_failover sets up — and clients that know
# only its multi-host connection string (`pg_autoctl show uri`,
# target_session_attrs=read-write): a producer that records every message
# whose COMMIT it saw acknowledged, a transactional-mode consumer, a
# lease-mode consumer, and two long-poll receivers (CALL txmq.wait,
# CALL txmq.poll) on quiet queues.  Each reconnects when its connection
# breaks.  Two failovers under that load:
#
#   1. the primary's node dies: SIGKILL of its pg_autoctl and every
#      process under it (postmaster, backends); the monitor promotes the
#      standby; the old node is started again and rejoins as the standby;
#   2. a clean `pg_autoctl perform failover` back.
#
# At each, half messages are pending (check function and local_xid), a
# lease is held and a transactional receive is open.  Afterwards: every
# acknowledged send is delivered, nothing acked is delivered again, no
# transactional delivery twice, the new primary's worker resolves the half
# messages, the long-poll receivers are woken on the new primary, the held
# lease can still be acked there with its receipt while the open receive's
# message is ready at once, and the standby runs no txmq worker.  It
# prints the figures (`measured:` lines): lost, duplicated, seconds from
# the failover's start to the first delivery by the new primary.
#
# Skips where pg_auto_failover is not packaged for this server (it says so);
# fails where the package exists but is not installed.
use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run ();
use POSIX ();
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

# ---------------------------------------------------------------- skip?
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my ($major) = `pg_config --version` =~ /PostgreSQL (\d+)/;
my $pkg = "postgresql-$major-auto-failover";
my $autoctl = (grep { -x "$_/pg_autoctl" } split /:/, $ENV{PATH})[0];
if (!$autoctl || !-f "$sharedir/extension/pgautofailover.control")
{
	my $policy = `apt-cache policy $pkg pg-auto-failover-cli 2>/dev/null` // '';
	if ($policy =~ /^\s+Candidate: [^(\s]/m)
	{
		plan tests => 1;
		fail("pg_auto_failover is packaged here ($pkg, pg-auto-failover-cli) "
			  . 'but not installed: test/bootstrap.sh installs it');
		exit 0;
	}
	plan skip_all => "no automatic failover test: pg_auto_failover is not "
	  . "packaged for PostgreSQL $major here (no $pkg)";
}
diag("measured: pg_auto_failover " . (`pg_autoctl --version` =~ /version (\S+)/)[0]
	  . " on PostgreSQL $major");

# ------------------------------------------------------------ the formation
my $base = "${PostgreSQL::Test::Utils::tmp_check}/af";
my $sock = tempdir('txmqafXXXX', TMPDIR => 1, CLEANUP => 1);  # short path
my $tmp  = tempdir(CLEANUP => 1);
mkdir $base;
my %env = (
	XDG_CONFIG_HOME => "$base/config",
	XDG_DATA_HOME   => "$base/data",
	XDG_RUNTIME_DIR => "$base/run",
	PGHOST          => $sock);
mkdir $env{$_} for qw(XDG_CONFIG_HOME XDG_DATA_HOME XDG_RUNTIME_DIR);

my %port = map { $_ => PostgreSQL::Test::Cluster::get_free_port() } qw(mon n1 n2);
my %group;    # node => process group of its `pg_autoctl run`
my @kids;     # client process groups

END
{
	# the clients, then the nodes; keep the servers' logs
	kill 'KILL', -$_ for @kids;
	# pg_autoctl stops its Postgres on SIGTERM
	kill 'TERM', $group{$_} for grep { $group{$_} } qw(n2 n1 mon);
	for my $n (grep { $group{$_} } qw(n2 n1 mon))
	{
		my $until = time + 20;
		usleep(100_000) while !gone($group{$n}) && time < $until;
		kill 'KILL', -$group{$n};
	}
	for my $n (qw(mon n1 n2))
	{
		for my $f (glob("$base/$n/log/*.log"))
		{
			my ($leaf) = $f =~ m{([^/]+)$};
			system('cp', $f, "${PostgreSQL::Test::Utils::log_path}/$n-$leaf");
		}
	}
}
$SIG{TERM} = $SIG{INT} = sub { die "interrupted\n" };

# whether a child process has exited (and is reaped)
sub gone { return waitpid($_[0], POSIX::WNOHANG()) != 0; }

sub autoctl
{
	my @args = @_;
	my ($out, $err) = ('', '');
	local @ENV{ keys %env } = values %env;
	my $ok = IPC::Run::run([ 'pg_autoctl', @args ], '>', \$out, '2>', \$err);
	return ($ok, $out, $err);
}

# `pg_autoctl run` for a node, in a process group of its own (a node's
# death is a SIGKILL of that group)
sub run_node
{
	my ($n) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		POSIX::setpgid(0, 0);
		@ENV{ keys %env } = values %env;
		open(STDOUT, '>>', "${PostgreSQL::Test::Utils::log_path}/autoctl-$n.log");
		open(STDERR, '>&', \*STDOUT);
		exec('pg_autoctl', 'run', '--pgdata', "$base/$n");
	}
	$group{$n} = $pid;
}

# initdb with the settings pg_autoctl's tuning must not override
# (postgresql.auto.conf comes last): small shared buffers, private sockets
sub initdb
{
	my ($n, $extra) = @_;
	system('initdb', '-D', "$base/$n", '-A', 'trust', '-E', 'UTF8', '--no-locale')
	  == 0 or die "initdb $n failed";
	open(my $fh, '>>', "$base/$n/postgresql.auto.conf") or die;
	print $fh "unix_socket_directories = '$sock'\nshared_buffers = '32MB'\n"
	  . "fsync = off\n$extra";
	close $fh;
}

sub sql_at
{
	my ($n, $sql, %o) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ 'psql', '-X', '-At', '-q', '-v', 'ON_ERROR_STOP=1', '-d',
			"host=127.0.0.1 port=$port{$n} dbname=" . ($o{db} // 'postgres') ],
		'<', \$sql, '>', \$out, '2>', \$err);
	chomp $out;
	return wantarray ? ($out, $err) : $out;
}

sub poll_at
{
	my ($n, $sql, $expected, $timeout) = @_;
	my $until = time + ($timeout // 60);
	my $got;
	while (time < $until)
	{
		$got = sql_at($n, $sql);
		return 1 if $got eq $expected;
		usleep(100_000);
	}
	diag("poll at $n: $sql: got '$got', wanted '$expected'");
	return 0;
}

# the monitor: fast health checks, so that a dead node is noticed in
# seconds (defaults: 5 s checks, 20 s before a node is unhealthy), and a
# short wait for a dead primary to demote itself before the standby takes
# writes (default 30 s: the standby is promoted at once, but read-only
# until then)
initdb('mon', join('', map { "pgautofailover.$_\n" }
	'health_check_period = 1000', 'health_check_timeout = 1000',
	'health_check_max_retries = 1', 'health_check_retry_delay = 500',
	'node_considered_unhealthy_timeout = 3000', 'primary_demote_timeout = 3000'));
my $t_setup = time;
my ($ok, $out, $err) = autoctl('create', 'monitor', '--pgdata', "$base/mon",
	'--pgport', $port{mon}, '--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl');
ok($ok, 'pg_autoctl create monitor') or diag($err);
run_node('mon');
my $monitor = "postgres://autoctl_node\@127.0.0.1:$port{mon}/pg_auto_failover?sslmode=disable";

# the first data node: txmq preloaded with the suite's settings (after
# pg_autoctl's include, so they win); two-phase commit for a local
# transaction that a producer prepares
initdb('n1', "max_prepared_transactions = 10\n");
open(my $conf, '>>', "$base/n1/postgresql.conf") or die;
print $conf TxmqTest::conf_text(), "log_min_messages = info\n";
close $conf;
for my $n (qw(n1 n2))
{
	($ok, $out, $err) = autoctl('create', 'postgres', '--pgdata', "$base/$n",
		'--pgport', $port{$n}, '--hostname', '127.0.0.1', '--name', $n,
		'--auth', 'trust', '--no-ssl', '--monitor', $monitor);
	ok($ok, "pg_autoctl create postgres $n") or diag($err);
	run_node($n);
	if ($n eq 'n1')
	{
		ok(poll_at('n1', 'SELECT pg_is_in_recovery()', 'f'), 'n1 runs');
	}
}

# the formation is ready when n2 streams as a synchronous standby
sub sync_standby_of
{
	my ($primary, $standby) = @_;
	return poll_at($primary,
		"SELECT string_agg(sync_state, ',') FROM pg_stat_replication
		  WHERE application_name = 'pgautofailover_standby_"
		  . substr($standby, 1) . "'", 'quorum', 90);
}
ok(sync_standby_of('n1', 'n2'), 'n2 is the synchronous standby of n1');
my $uri = (autoctl('show', 'uri', '--pgdata', "$base/mon", '--formation', 'default'))[1];
chomp $uri;
like($uri, qr{^postgres://127\.0\.0\.1:$port{n1},127\.0\.0\.1:$port{n2}/postgres\?target_session_attrs=read-write},
	'the formation URI names both nodes, read-write');
note(sprintf('formation ready in %.1f s: %s', time - $t_setup, $uri));
is(sql_at('n1', 'SHOW synchronous_commit'), 'on', 'synchronous_commit = on');

# ------------------------------------------------------------- the queues
sql_at('n1', q{
	CREATE EXTENSION txmq;
	CREATE TABLE sent (msg_id bigint NOT NULL, p bigint NOT NULL);
	CREATE TABLE consumed (msg_id bigint NOT NULL, p bigint NOT NULL,
		port int NOT NULL DEFAULT inet_server_port(),
		at timestamptz NOT NULL DEFAULT clock_timestamp());
	CREATE TABLE local_orders (id int PRIMARY KEY);
	SELECT txmq.create_topic('fo', notify => false);
	SELECT txmq.create_subscription('fo', 'tx', lease => '2 s');
	SELECT txmq.create_subscription('fo', 'lease', lease => '2 s');
	SELECT txmq.create_queue('lpw');       -- CALL txmq.wait's
	SELECT txmq.create_queue('lpp');       -- CALL txmq.poll's
	SELECT txmq.create_queue('inflight', lease => '1 min');
	SELECT txmq.create_queue('hx', check_after => '200 ms',
		check_interval => '300 ms', max_checks => 1000);

	-- check-back: the order service answers "unknown" until its round is
	-- released (after the failover), then from its orders
	CREATE ROLE app;
	GRANT EXECUTE ON FUNCTION txmq.create_topic, txmq.create_queue TO app;
	CREATE SCHEMA shop AUTHORIZATION app;
	SET ROLE app;
	CREATE TABLE shop.orders (id int PRIMARY KEY);
	CREATE TABLE shop.released (round int PRIMARY KEY);
	CREATE FUNCTION shop.check_order(m txmq.message) RETURNS txmq.check_result
	LANGUAGE sql AS $$
		SELECT CASE
			WHEN NOT EXISTS (SELECT FROM shop.released
							  WHERE round = (m.payload->>'round')::int) THEN 'unknown'
			WHEN EXISTS (SELECT FROM shop.orders
						  WHERE id = (m.payload->>'order')::int) THEN 'commit'
			ELSE 'rollback' END::txmq.check_result
	$$;
	SELECT txmq.create_queue('hc', check_function => 'shop.check_order(txmq.message)',
		check_after => '200 ms', check_interval => '300 ms', max_checks => 1000);
	RESET ROLE;
});
is(sql_at('n1', q{SELECT count(*) FROM txmq.stats WHERE topic IS NOT NULL}), '7',
	'queues created on n1');

# ------------------------------------------------------------- the clients
# Each is a process group of its own: a Perl loop that runs psql on the
# formation URI, one session after another, until its stop file exists.
# psql exits when its connection breaks; the loop connects again.
sub client
{
	my ($name, $script_of) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		POSIX::setpgid(0, 0);
		open(STDOUT, '>>', "$tmp/$name.out") or POSIX::_exit(1);
		open(STDERR, '>>', "$tmp/$name.err") or POSIX::_exit(1);
		STDOUT->autoflush(1);
		my $n = 0;
		until (-e "$tmp/stop.$name")
		{
			my $sql = $script_of->();
			open(my $fh, '>', "$tmp/$name.sql") or POSIX::_exit(1);
			print $fh $sql;
			close $fh;
			printf "session %d %.3f\n", ++$n, time;
			system('psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1',
				'-d', $uri, '-f', "$tmp/$name.sql");
			usleep(100_000) if $? != 0;
		}
		POSIX::_exit(0);
	}
	push @kids, $pid;
	return $pid;
}

sub lines_of
{
	my ($name) = @_;
	return () unless -e "$tmp/$name.out";
	return split /\n/, slurp_file("$tmp/$name.out");
}

# the producer: one message per transaction; "committed P" once COMMIT
# returned.  A transaction whose COMMIT got no answer is not counted (it
# may or may not have committed: the checks allow both).
client('producer', sub {
	my $next = 1;
	for (lines_of('producer')) { $next = $1 + 1 if /^try (\d+)$/ && $1 >= $next; }
	my $sql = '';
	for my $p ($next .. $next + 199)
	{
		$sql .= "\\echo try $p\nBEGIN;\n"
		  . "INSERT INTO sent SELECT txmq.send('fo', '{\"p\": $p}'), $p;\n"
		  . "COMMIT;\n\\echo committed $p\nSELECT pg_sleep(0.002) \\g /dev/null\n";
	}
	return $sql;
});

# transactional mode: receive, record, ack, commit: one transaction
client('tx', sub {
	return q{
BEGIN;
WITH r AS (SELECT msg_id, payload FROM txmq.receive('fo', 'tx', 10, wait => '200 ms')),
	 ins AS (INSERT INTO consumed (msg_id, p)
			 SELECT msg_id, (payload->>'p')::bigint FROM r RETURNING msg_id)
SELECT txmq.ack('fo', 'tx', coalesce(array_agg(msg_id), '{}')) FROM ins \g /dev/null
COMMIT;
} x 50;
});

# lease mode: a committed receive (the lease), then each message's ack with
# its receipt, each in a transaction of its own (autocommit): "got ID
# ATTEMPT" once the receive returned, "acked ID true" once the ack committed
client('lease', sub {
	return q{
SELECT format('SELECT ''got %s %s''', msg_id, attempt),
	   format('SELECT ''acked %s '' || txmq.ack(''fo'', ''lease'', %s, %L)', msg_id, msg_id, receipt)
  FROM txmq.receive('fo', 'lease', 10, wait => '200 ms') \gexec
} x 50;
});

# long polls on quiet queues: "woken ID" for what they then get
client('lpw', sub {
	return q{
CALL txmq.wait('lpw', 'lpw', '60 s') \g /dev/null
BEGIN;
SELECT 'woken ' || msg_id || ' ' || txmq.ack('lpw', 'lpw', msg_id) FROM txmq.receive('lpw', 'lpw');
COMMIT;
} x 5;
});
client('lpp', sub {
	return q{
CALL txmq.poll('lpp', 'lpp', wait => '60 s') \gset
SELECT 'woken ' || m.msg_id || ' ' || txmq.ack('lpp', 'lpp', m.msg_id, m.receipt)
  FROM unnest(:'messages'::txmq.delivery[]) m;
} x 5;
});

# ---------------------------------------------------------- the failovers
my %round_acked;    # round => number of sends acknowledged during it
my %figure;         # round => [ seconds to first delivery ]
my @in_round;       # [round, first p acknowledged in it]

sub acked_ps { return map { /^committed (\d+)$/ ? $1 : () } lines_of('producer'); }

# a session held open on one node (not through the URI): psql reading
# from a pipe
sub session_at
{
	my ($n) = @_;
	my $s = { in => '', out => '', err => '' };
	$s->{h} = IPC::Run::start(
		[ 'psql', '-X', '-At', '-q', '-v', 'ON_ERROR_STOP=1', '-d',
			"host=127.0.0.1 port=$port{$n} dbname=postgres" ],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err});
	return $s;
}

sub session_query
{
	my ($s, $sql) = @_;
	$s->{out} = '';
	$s->{in} .= "$sql\n\\echo __done\n";
	my $until = time + 30;
	until ($s->{out} =~ /^__done$/m)
	{
		die "session: $s->{err}" if time > $until;
		$s->{h}->pump_nb;
		usleep(10_000);
	}
	(my $out = $s->{out}) =~ s/^__done\n//m;
	chomp $out;
	return $out;
}

sub txmq_backends
{
	my ($n) = @_;
	return sql_at($n, q{SELECT count(*) FROM pg_stat_activity
		WHERE backend_type IN ('txmq launcher', 'txmq worker')});
}

# the long polls' sessions waiting on a node
my $polls_sql = q{SELECT count(*) FROM pg_stat_activity
	WHERE query LIKE '%CALL txmq.wait(''lpw''%' OR query LIKE '%CALL txmq.poll(''lpp''%'};

for my $round (1, 2)
{
	my ($old, $new) = $round == 1 ? ('n1', 'n2') : ('n2', 'n1');
	my $kind = $round == 1 ? 'SIGKILL of the primary node' : 'pg_autoctl perform failover';
	note("round $round: $kind, $old -> $new");
	my $acked_before = scalar(acked_ps());
	push @in_round, [ $round, (acked_ps())[-1] // 0 ];

	# half messages pending: H_c1 (its order exists) and H_c2 (none), to
	# the check function; H_x1 (its local transaction is open at the
	# failover) and H_x2 (prepared at the failover, committed on the new
	# primary), by local_xid
	my $o1 = $round * 10 + 1;
	my $o2 = $round * 10 + 2;
	my @hc = split /\n/, sql_at($old, qq{
		INSERT INTO shop.orders VALUES ($o1);
		SELECT txmq.send_half('hc', '{"round": $round, "order": $o1}');
		SELECT txmq.send_half('hc', '{"round": $round, "order": $o2}');
	});
	my $local1 = session_at($old);
	my $xid1 = session_query($local1,
		"BEGIN; INSERT INTO local_orders VALUES ($o1); SELECT pg_current_xact_id();");
	my $local2 = session_at($old);
	my $xid2 = session_query($local2,
		"BEGIN; INSERT INTO local_orders VALUES ($o2); SELECT pg_current_xact_id();");
	my @hx = split /\n/, sql_at($old, qq{
		SELECT txmq.send_half('hx', '{"round": $round, "x": 1}', local_xid => '$xid1');
		SELECT txmq.send_half('hx', '{"round": $round, "x": 2}', local_xid => '$xid2');
	});
	session_query($local2, "PREPARE TRANSACTION 'local_$round';");
	my $halves = join(',', @hc, @hx);
	like($halves, qr/^\d+(,\d+){3}$/, "round $round: four half messages sent");
	ok( poll_at($old, qq{SELECT count(*) FROM txmq.half
			WHERE msg_id IN ($halves) AND state = 'half' AND last_result = 'unknown'}, '4'),
		"round $round: the old primary checked them: unknown, pending");

	# a lease held and a transactional receive open at the failover
	my ($m1, $m2) = split /\n/, sql_at($old,
		q{SELECT txmq.send('inflight', '1'); SELECT txmq.send('inflight', '2');});
	my ($lease_id, $receipt) = split /\|/, sql_at($old,
		q{SELECT msg_id, receipt FROM txmq.receive('inflight', 'inflight')});
	is($lease_id, $m1, "round $round: a message leased on the old primary");
	my $open = session_at($old);
	is( session_query($open,
			q{BEGIN; SELECT msg_id FROM txmq.receive('inflight', 'inflight');}),
		$m2, "round $round: a message received in a transaction left open");

	# the load runs, the long polls wait, the standby is synchronous
	my $until = time + 60;
	usleep(50_000) while scalar(acked_ps()) < $acked_before + 150 && time < $until;
	cmp_ok(scalar(acked_ps()), '>=', $acked_before + 150, "round $round: the producer runs");
	ok(poll_at($old, q{SELECT count(*) > 0 FROM consumed WHERE at > now() - '2 s'::interval}, 't'),
		"round $round: the transactional consumer runs");
	ok(poll_at($old, $polls_sql, '2'),
		"round $round: both long polls wait on the old primary");
	ok(sync_standby_of($old, $new), "round $round: $new is a synchronous standby");
	is(txmq_backends($new), '0', "round $round: the standby $new runs no txmq worker");

	# ---- the failover ----
	my $t0 = time;
	my ($perform, $fout, $ferr) = (undef, '', '');
	if ($round == 1)
	{
		kill 'KILL', -$group{$old};
		waitpid($group{$old}, 0);
		delete $group{$old};
	}
	else
	{
		local @ENV{ keys %env } = values %env;
		$perform = IPC::Run::start(
			[ 'pg_autoctl', 'perform', 'failover', '--pgdata', "$base/mon", '--wait', '90' ],
			'>', \$fout, '2>', \$ferr);
	}
	ok( poll_at($new, q{SELECT NOT pg_is_in_recovery()
			AND current_setting('transaction_read_only') = 'off'}, 't', 90),
		"round $round: $new is the primary");
	my $t_promoted = time - $t0;
	if ($perform)
	{
		ok($perform->finish, 'pg_autoctl perform failover') or diag($ferr);
	}
	eval { $_->{h}->kill_kill } for $local1, $local2, $open;    # their server is gone

	# the first message delivered by the new primary
	ok( poll_at($new, sprintf(q{SELECT count(*) > 0 FROM consumed
			WHERE port = %d AND at > to_timestamp(%.3f)}, $port{$new}, $t0), 't', 60),
		"round $round: the transactional consumer gets messages from $new");
	my $first = sql_at($new, sprintf(q{SELECT extract(epoch FROM min(at)) - %.3f
		FROM consumed WHERE port = %d AND at > to_timestamp(%.3f)}, $t0, $port{$new}, $t0));
	$figure{$round} = [ $t_promoted, $first ];

	# the half messages: the producer of H_x2 commits its prepared local
	# transaction on the new primary, the order service's round is released
	sql_at($new, "COMMIT PREPARED 'local_$round'; INSERT INTO shop.released VALUES ($round);");
	ok( poll_at($new, qq{SELECT string_agg(state, ',' ORDER BY msg_id) FROM txmq.half
			WHERE msg_id IN ($halves)}, 'committed,rolled_back,rolled_back,committed', 30),
		"round $round: the new primary's worker resolved the half messages "
		  . '(check function: commit, rollback; local_xid: aborted, committed)');

	# the lease taken on the old primary is acked with its receipt; the open
	# receive's message is ready at once
	is(sql_at($new, "SELECT txmq.ack('inflight', 'inflight', $m1, '$receipt')"), 't',
		"round $round: the lease held on the old primary is acked on $new with its receipt");
	is(sql_at($new, q{SELECT msg_id FROM txmq.receive('inflight', 'inflight')}), $m2,
		"round $round: the message of the open receive is ready on $new at once");
	sql_at($new, "SELECT txmq.ack('inflight', 'inflight', $m2)");

	# the long polls reconnect, wait on the new primary and are woken
	ok(poll_at($new, $polls_sql, '2', 60),
		"round $round: both long polls wait again, on $new");
	my ($w, $p) = split /\n/, sql_at($new,
		q{SELECT txmq.send('lpw', '"wake"'); SELECT txmq.send('lpp', '"wake"');});
	my $t_send = time;
	$until = time + 30;
	usleep(20_000)
	  until (grep { $_ eq "woken $w true" } lines_of('lpw'))
	  && (grep { $_ eq "woken $p true" } lines_of('lpp'))
	  || time > $until;
	ok((grep { $_ eq "woken $w true" } lines_of('lpw')), "round $round: CALL txmq.wait woken on $new");
	ok((grep { $_ eq "woken $p true" } lines_of('lpp')), "round $round: CALL txmq.poll woken on $new");
	cmp_ok(time - $t_send, '<', 20, "round $round: woken by the send, not by their timeout");

	# the worker runs on the new primary
	ok(poll_at($new, q{SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'txmq worker' AND datname = 'postgres'}, '1'),
		"round $round: txmq's worker runs on $new");

	# the old node back as the standby: started again after its death;
	# demoted by pg_autoctl after perform failover
	run_node($old) if $round == 1;
	ok(sync_standby_of($new, $old), "round $round: $old rejoined as the synchronous standby");
	is(sql_at($old, 'SELECT pg_is_in_recovery()'), 't', "round $round: $old is in recovery");
	is(txmq_backends($old), '0', "round $round: the new standby $old runs no txmq worker");
	is(sql_at($old, q{SELECT bool_or(worker_running) FROM txmq.stats WHERE topic = 'fo'}), 'f',
		"round $round: txmq.stats on $old says no worker runs");
	like( sql_at($old, q{SELECT count(*) FROM txmq.peek('fo', 'tx');
			SELECT count(*) FROM txmq.half_messages();
			SELECT count(*) FROM txmq.dead_letters('fo', 'tx');}),
		qr/^\d+\n\d+\n0$/, "round $round: peek, half_messages and dead_letters work on $old");
	$round_acked{$round} = scalar(acked_ps()) - $acked_before;
}
push @in_round, [ 3, (acked_ps())[-1] // 0 ];

# ------------------------------------------------------------- the checks
# the producer stops; the consumers drain on the final primary
my $final = 'n1';
open(my $stop, '>', "$tmp/stop.producer") or die;
close $stop;
my $until = time + 60;
my $stopped = 0;
usleep(100_000) until ($stopped = gone($kids[0])) || time > $until;
ok($stopped, 'the producer stopped');
ok( poll_at($final, q{SELECT sum(ready + delayed + in_flight) FROM txmq.stats
		WHERE topic = 'fo'}, '0', 60),
	'both subscriptions drained on the final primary');
is(sql_at($final, q{SELECT sum(dead) FROM txmq.stats WHERE topic = 'fo'}), '0',
	'no dead letters');
my @acked = acked_ps();
sql_at($final, 'CREATE TABLE acked (p bigint PRIMARY KEY); INSERT INTO acked VALUES ('
	  . join('), (', @acked) . ')');
my @lease_lines = lines_of('lease');
{
	# lease mode: the consumer's own record, in order
	my (%acked_at, @redelivered, %acks, %got);
	for my $i (0 .. $#lease_lines)
	{
		if ($lease_lines[$i] =~ /^acked (\d+) true$/) { $acks{$1}++; $acked_at{$1} //= $i; }
		elsif ($lease_lines[$i] =~ /^got (\d+) /)
		{
			$got{$1}++;
			push @redelivered, $1 if defined $acked_at{$1};
		}
	}
	my $values = join('), (', map { "$_, $got{$_}, " . ($acks{$_} // 0) } keys %got)
	  || 'NULL, NULL, NULL';
	sql_at($final, "CREATE TABLE lease_got (msg_id bigint, got int, acked int);
		INSERT INTO lease_got VALUES ($values)");
	is(scalar(@redelivered), 0, 'lease mode: no message delivered again after its ack was acknowledged')
	  or diag("redelivered after ack: @redelivered[0 .. ($#redelivered < 9 ? $#redelivered : 9)]");
}

for my $r (1, 2)
{
	my ($from, $to) = ($in_round[ $r - 1 ][1], $in_round[$r][1]);
	my ($lost_tx, $dup_tx, $lost_lease, $dup_lease, $unknown) = split /\|/, sql_at($final, qq{
		WITH a AS (SELECT s.msg_id, a.p FROM acked a JOIN sent s USING (p)
				   WHERE a.p > $from AND a.p <= $to)
		SELECT (SELECT count(*) FROM acked a WHERE a.p > $from AND a.p <= $to
				  AND NOT EXISTS (SELECT FROM consumed c WHERE c.p = a.p)),
			   (SELECT count(*) FROM (SELECT c.msg_id FROM consumed c JOIN a USING (msg_id)
									  GROUP BY 1 HAVING count(*) > 1) d),
			   (SELECT count(*) FROM a WHERE NOT EXISTS (SELECT FROM lease_got l WHERE l.msg_id = a.msg_id)),
			   (SELECT count(*) FROM a JOIN lease_got l USING (msg_id) WHERE l.acked > 1),
			   (SELECT count(*) FROM a JOIN lease_got l USING (msg_id) WHERE l.acked = 0)
	});
	my $kind = $r == 1 ? 'SIGKILL' : 'perform failover';
	is($lost_tx, '0', "round $r ($kind): every acknowledged send delivered (transactional mode)");
	is($dup_tx, '0', "round $r ($kind): none delivered twice (transactional mode)");
	is($lost_lease, '0', "round $r ($kind): every acknowledged send delivered (lease mode)");
	is($dup_lease, '0', "round $r ($kind): none acked twice (lease mode)");
	diag(sprintf("measured: round %d (%s): %d sends acknowledged, lost %s / duplicated %s "
		  . "(transactional), lost %s / acked twice %s (lease; %s whose ack got no answer); "
		  . "new primary read-write %.1f s, first delivery by it %.1f s after the failover began",
		$r, $kind, $to - $from, $lost_tx, $dup_tx, $lost_lease, $dup_lease, $unknown,
		@{ $figure{$r} }));
}
is( sql_at($final, q{SELECT count(*) FROM consumed c
		WHERE NOT EXISTS (SELECT FROM sent s WHERE s.msg_id = c.msg_id AND s.p = c.p)}),
	'0', 'nothing consumed that was not sent');
is( sql_at($final, q{SELECT count(*) FROM sent s
		WHERE NOT EXISTS (SELECT FROM consumed c WHERE c.msg_id = s.msg_id)}),
	'0', 'every committed send consumed, also those whose COMMIT got no answer');

# the committed half messages are delivered, the rolled back ones not
is( sql_at($final, q{
		SELECT string_agg(payload::text, ' ' ORDER BY msg_id) FROM txmq.receive('hc', 'hc', 10);
		SELECT string_agg(payload::text, ' ' ORDER BY msg_id) FROM txmq.receive('hx', 'hx', 10);}),
	qq{{"order": 11, "round": 1} {"order": 21, "round": 2}\n{"x": 2, "round": 1} {"x": 2, "round": 2}},
	'the committed half messages are delivered, the rolled back ones are not');

open($stop, '>', "$tmp/stop.$_") && close($stop) for qw(tx lease lpw lpp);

# what the clients were told when their server went away
for my $name (qw(producer tx lease lpw lpp))
{
	my %seen;
	for (split /\n/, (-e "$tmp/$name.err" ? slurp_file("$tmp/$name.err") : ''))
	{
		next unless /(ERROR|FATAL|WARNING|error|server closed|connection)/;
		s/^psql:[^:]*:\d+: //;
		s/\d+/N/g;
		$seen{$_}++;
	}
	note("$name was told: " . join(' | ', map { "$_ (${seen{$_}}x)" } sort keys %seen));
}
done_testing();
