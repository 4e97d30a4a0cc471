# crash_recovery: kill -9 of a backend, of the txmq worker and of the
# postmaster, several times, under load (SPEC section 4, issue 6 "Faults").
#
# Load, all on topic "crash" (owned by a non-superuser, with a check
# function) with two subscriptions:
#   * producers send in transactions that also write the ground truth,
#     sent(msg_id, pid), with send, send_batch and delayed sends, and roll
#     some of those transactions back on purpose;
#   * a half-message producer: a local transaction inserts its ground-truth
#     row and, through dblink (a separate, committed session), sends a half
#     message naming that transaction (local_xid, or its xid in the headers
#     for the check function); the local transaction then commits or rolls
#     back, and the producer calls commit_half / rollback_half or leaves it
#     to check-back;
#   * consumers of "tx" in transactional mode (receive + insert into
#     consumed + ack in one transaction, some rolled back on purpose);
#   * a consumer of "lease" in lease mode (receive and commit, then insert
#     into consumed_lease, then ack; sometimes no ack or a nack).
#
# After every crash, in one snapshot: nothing sent is lost (each sent row is
# consumed, still queued, dead-lettered or a pending half message, for both
# subscriptions), nothing delivered was never committed, no message was
# consumed twice in transactional mode, and every resolved half message was
# resolved the way its local transaction ended.  At the end, after draining:
# every sent row was consumed by both subscriptions, the queue is empty and
# no half message is left unresolved.
use strict;
use warnings;

use File::Temp qw(tempdir);
use POSIX ();
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $LOAD_SECONDS_PER_CRASH = 5;
my @CRASHES = qw(backend worker postmaster backend worker postmaster);

my $node = TxmqTest::node('crash',
	conf => "restart_after_crash = on\nmax_connections = 40\n"
	  . "log_statement = none\n"
	  . "log_min_messages = warning\n");

$node->safe_psql('postgres', q{
	CREATE EXTENSION dblink;
	CREATE ROLE crash_owner;
	GRANT EXECUTE ON FUNCTION txmq.create_topic TO crash_owner;
	CREATE TABLE sent (msg_id bigint NOT NULL, pid bigint NOT NULL, kind text NOT NULL);
	CREATE INDEX ON sent (msg_id);
	CREATE TABLE consumed (msg_id bigint NOT NULL, pid bigint NOT NULL, attempt int NOT NULL);
	CREATE INDEX ON consumed (msg_id);
	CREATE TABLE consumed_lease (msg_id bigint NOT NULL, pid bigint NOT NULL);
	CREATE INDEX ON consumed_lease (msg_id);
	-- the half producer's "did my local transaction commit?"
	CREATE FUNCTION public.crash_check(m txmq.message) RETURNS txmq.check_result
	LANGUAGE sql AS $$
		SELECT CASE pg_catalog.pg_xact_status((m.headers->>'xid')::xid8)
			WHEN 'committed' THEN 'commit'
			WHEN 'aborted' THEN 'rollback'
			ELSE 'unknown' END::txmq.check_result
	$$;
	SET ROLE crash_owner;
	SELECT txmq.create_topic('crash', notify => false,
		check_function => 'public.crash_check(txmq.message)',
		check_after => '1 s', check_interval => '1 s', max_checks => 1000);
	SELECT txmq.create_subscription('crash', 'tx', max_deliveries => 1000,
		lease => '2 s');
	SELECT txmq.create_subscription('crash', 'lease', max_deliveries => 1000,
		lease => '2 s', backoff_base => '100 ms', backoff_max => '500 ms');
	RESET ROLE;
});

my $tmp      = tempdir(CLEANUP => 1);
my $stopfile = "$tmp/stop";
my $deadline = time + 150;    # the clients stop by themselves at the latest
my $connstr  = $node->connstr('postgres') . ' application_name=crash_load';
my $conn_dblink = $node->connstr('postgres') . ' application_name=crash_dblink';

srand(20240601);

# ---- the clients: forked loops of psql scripts, restarted after a crash ----

sub producer_script
{
	my ($c, $batch) = @_;
	my $sql = '';
	for my $i (1 .. 40)
	{
		my $pid = $c * 10_000_000 + $batch * 1000 + $i * 10;
		my $r = rand();
		# a steady load that the consumers keep up with
		$sql .= "SELECT pg_sleep(0.01);\n";
		if ($r < 0.55)
		{
			$sql .= "BEGIN;\nINSERT INTO sent SELECT txmq.send('crash', "
			  . "'{\"p\": $pid}', key => 'k$c'), $pid, 'send';\nCOMMIT;\n";
		}
		elsif ($r < 0.65)
		{
			$sql .= "BEGIN;\nINSERT INTO sent SELECT txmq.send('crash', "
			  . "'{\"p\": $pid}', delay => '300 ms'), $pid, 'delayed';\nCOMMIT;\n";
		}
		elsif ($r < 0.85)
		{
			my @p = map { "'{\"p\": " . ($pid + $_) . "}'" } 0 .. 2;
			$sql .=
			    "BEGIN;\nINSERT INTO sent SELECT b.id, $pid + b.ord - 1, 'batch' "
			  . "FROM txmq.send_batch('crash', ARRAY[" . join(', ', @p)
			  . "]::jsonb[]) WITH ORDINALITY AS b(id, ord);\nCOMMIT;\n";
		}
		else
		{
			# rolled back: must never be delivered
			$sql .= "BEGIN;\nINSERT INTO sent SELECT txmq.send('crash', "
			  . "'{\"p\": $pid}'), $pid, 'rolled back';\nROLLBACK;\n";
		}
	}
	return $sql;
}

sub half_script
{
	my ($c, $batch) = @_;
	my $sql = '';
	for my $i (1 .. 15)
	{
		my $pid = $c * 10_000_000 + $batch * 1000 + $i * 10;
		my $with_xid = rand() < 0.5;
		my $commit   = rand() < 0.7;
		my $tell     = rand() < 0.5;
		# the half message is sent and committed by a separate session
		# (dblink) while this local transaction is open
		my $send_half = $with_xid
		  ? "pg_catalog.format('SELECT txmq.send_half(''crash'', %L::jsonb, %L::jsonb, "
		  . "producer_group => ''crashg'', local_xid => %L::xid8)', "
		  . "jsonb_build_object('p', $pid), "
		  . "jsonb_build_object('xid', pg_current_xact_id()::text), "
		  . "pg_current_xact_id()::text)"
		  : "pg_catalog.format('SELECT txmq.send_half(''crash'', %L::jsonb, %L::jsonb, "
		  . "producer_group => ''crashg'')', "
		  . "jsonb_build_object('p', $pid), "
		  . "jsonb_build_object('xid', pg_current_xact_id()::text))";
		$sql .= "\\unset h\nBEGIN;\n"
		  . "INSERT INTO sent SELECT h, $pid, 'half' FROM dblink(:'conn', $send_half) "
		  . "AS t(h bigint) RETURNING msg_id AS h \\gset\n";
		$sql .= $commit ? "COMMIT;\n" : "ROLLBACK;\n";
		if ($tell)
		{
			$sql .= $commit
			  ? "SELECT txmq.commit_half(:h);\n"
			  : "SELECT txmq.rollback_half(:h);\n";
		}
	}
	return $sql;
}

my $TX_CONSUME = q{
BEGIN;
WITH r AS (SELECT msg_id, payload, attempt FROM txmq.receive('crash', 'tx', 5, wait => '200 ms')),
	 ins AS (INSERT INTO consumed SELECT msg_id, (payload->>'p')::bigint, attempt FROM r RETURNING msg_id)
SELECT txmq.ack('crash', 'tx', coalesce(array_agg(msg_id), '{}')) FROM ins;
};

sub tx_consumer_script
{
	my $sql = '';
	for my $i (1 .. 40)
	{
		$sql .= $TX_CONSUME . (rand() < 0.1 ? "ROLLBACK;\n" : "COMMIT;\n");
	}
	return $sql;
}

sub lease_consumer_script
{
	my $sql = '';
	for my $i (1 .. 40)
	{
		$sql .= q{\set got '[]'
SELECT coalesce(jsonb_agg(jsonb_build_array(msg_id, payload->'p')), '[]') AS got
  FROM txmq.receive('crash', 'lease', 5, wait => '200 ms') \gset
INSERT INTO consumed_lease SELECT (e->>0)::bigint, (e->>1)::bigint FROM jsonb_array_elements(:'got') e;
};
		my $r = rand();
		if ($r < 0.08)
		{
			# the consumer "dies": the leases run out, the messages come back
		}
		elsif ($r < 0.15)
		{
			$sql .= q{SELECT txmq.nack('crash', 'lease', (e->>0)::bigint, error => 'try again')
  FROM jsonb_array_elements(:'got') e;
};
		}
		else
		{
			$sql .= q{SELECT txmq.ack('crash', 'lease', ARRAY(SELECT (e->>0)::bigint FROM jsonb_array_elements(:'got') e));
};
		}
	}
	return $sql;
}

my %client_pids;

sub spawn_client
{
	my ($name, $gen) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $batch = 0;
		open(STDOUT, '>>', "$tmp/$name.out");
		open(STDERR, '>>', "$tmp/$name.err");
		while (!-e $stopfile && time < $deadline)
		{
			$batch++;
			my $file = "$tmp/$name.sql";
			open(my $fh, '>', $file) or POSIX::_exit(1);
			print $fh $gen->($batch);
			close $fh;
			my $rc = system('psql', '-X', '-q', '-v', "conn=$conn_dblink",
				'-d', $connstr, '-f', $file, '-o', '/dev/null');
			usleep(200_000) if $rc != 0;
		}
		POSIX::_exit(0);    # no END blocks: they would stop the node
	}
	$client_pids{$pid} = $name;
	return;
}

# ---- the checks ----

# In one snapshot: lost, phantom, duplicated and wrongly resolved messages.
my $CHECK = q{
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT
 (SELECT count(*) FROM sent s CROSS JOIN txmq.subscription su
   WHERE su.name IN ('tx', 'lease')
	 AND NOT EXISTS (SELECT 1 FROM txmq.msg m WHERE m.sub_id = su.sub_id AND m.msg_id = s.msg_id)
	 AND NOT EXISTS (SELECT 1 FROM txmq.dead_letter d WHERE d.sub_id = su.sub_id AND d.msg_id = s.msg_id)
	 AND NOT EXISTS (SELECT 1 FROM txmq.half h WHERE h.msg_id = s.msg_id AND h.state = 'half')
	 AND NOT (CASE su.name WHEN 'tx' THEN EXISTS (SELECT 1 FROM consumed c WHERE c.msg_id = s.msg_id)
			  ELSE EXISTS (SELECT 1 FROM consumed_lease c WHERE c.msg_id = s.msg_id) END))
 || ' lost, ' ||
 ((SELECT count(*) FROM consumed c WHERE NOT EXISTS
	(SELECT 1 FROM sent s WHERE s.msg_id = c.msg_id AND s.pid = c.pid))
  + (SELECT count(*) FROM consumed_lease c WHERE NOT EXISTS
	(SELECT 1 FROM sent s WHERE s.msg_id = c.msg_id AND s.pid = c.pid))
  + (SELECT count(*) FROM txmq.msg m WHERE NOT EXISTS
	(SELECT 1 FROM sent s WHERE s.msg_id = m.msg_id AND s.pid = (m.payload->>'p')::bigint)))
 || ' phantom, ' ||
 (SELECT count(*) FROM (SELECT msg_id FROM consumed GROUP BY msg_id HAVING count(*) > 1) d)
 || ' duplicated, ' ||
 ((SELECT count(*) FROM txmq.half h WHERE h.state = 'committed'
	AND NOT EXISTS (SELECT 1 FROM sent s WHERE s.msg_id = h.msg_id))
  + (SELECT count(*) FROM txmq.half h WHERE h.state IN ('rolled_back', 'dead_letter')
	AND EXISTS (SELECT 1 FROM sent s WHERE s.msg_id = h.msg_id)))
 || ' misresolved';
COMMIT;
};

my $crashes = 0;

sub check_invariants
{
	my ($when) = @_;
	is($node->safe_psql('postgres', $CHECK),
		'0 lost, 0 phantom, 0 duplicated, 0 misresolved',
		"$when: nothing lost, phantom, duplicated or misresolved");
}

sub wait_ready
{
	my ($what) = @_;
	ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
		"$what: server accepts connections again");
	ok( $node->poll_query_until(
			'postgres',
			q{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'txmq worker'}),
		"$what: the txmq worker runs again");
}

# Children of the postmaster (backends, background workers).
sub server_children
{
	my $pm = $node->{_pid};
	my @pids = grep { /^\d+$/ }
	  map { s/\s+//gr } split /\n/, `ps -o pid= --ppid $pm`;
	return @pids;
}

sub crash
{
	my ($kind, $n) = @_;
	my $what = "crash $n ($kind)";
	if ($kind eq 'postmaster')
	{
		my @children = server_children();
		$node->kill9;
		# the children notice the postmaster's death and exit; only then
		# can a new postmaster attach to the data directory
		my $t0 = time;
		while (grep { kill(0, $_) } @children and time - $t0 < 60)
		{
			usleep(100_000);
		}
		ok(!(grep { kill(0, $_) } @children), "$what: old server processes exited");
		$node->start;
	}
	else
	{
		my $sql = $kind eq 'worker'
		  ? q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'txmq worker' LIMIT 1}
		  : q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'
			   AND application_name = 'crash_load' AND state <> 'idle'
			 ORDER BY random() LIMIT 1};
		# a backend may end between the look-up and the kill: try again
		my ($victim, $killed, $offset) = ('', 0, 0);
		for (1 .. 100)
		{
			$victim = $node->safe_psql('postgres', $sql);
			$offset = -s $node->logfile;
			$killed = kill(9, $victim) if $victim ne '';
			last if $killed;
			usleep(50_000);
		}
		ok($killed, "$what: killed process $victim");
		# the postmaster resets everything after any child's crash
		$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	}
	wait_ready($what);
	$crashes++;
	check_invariants("after $what");
}

# ---- run ----

for my $c (1 .. 2)
{
	spawn_client("producer$c", sub { producer_script($c, $_[0]) });
}
spawn_client('half', sub { half_script(3, $_[0]) });
spawn_client("tx$_", \&tx_consumer_script) for 1 .. 2;
spawn_client('lease', \&lease_consumer_script);

my $n = 0;
for my $kind (@CRASHES)
{
	$n++;
	sleep $LOAD_SECONDS_PER_CRASH;
	crash($kind, $n);
}
sleep 2;

# stop the clients
open(my $fh, '>', $stopfile) or die;
close $fh;
for my $pid (keys %client_pids)
{
	waitpid($pid, 0);
}
pass('clients stopped');
check_invariants('after the load');

# ---- drain ----
my $drain = q{
BEGIN;
WITH r AS (SELECT msg_id, payload, attempt FROM txmq.receive('crash', 'tx', 1000)),
	 ins AS (INSERT INTO consumed SELECT msg_id, (payload->>'p')::bigint, attempt FROM r RETURNING msg_id)
SELECT txmq.ack('crash', 'tx', coalesce(array_agg(msg_id), '{}')) FROM ins;
COMMIT;
WITH r AS (SELECT msg_id, payload FROM txmq.receive('crash', 'lease', 1000)),
	 ins AS (INSERT INTO consumed_lease SELECT msg_id, (payload->>'p')::bigint FROM r RETURNING msg_id)
SELECT txmq.ack('crash', 'lease', coalesce(array_agg(msg_id), '{}')) FROM ins;
SELECT (SELECT count(*) FROM txmq.msg) + (SELECT count(*) FROM txmq.half WHERE state = 'half');
};
my $left = -1;
my $t0   = time;
while (time - $t0 < 60)
{
	my @out = split /\n/, $node->safe_psql('postgres', $drain);
	$left = $out[-1];
	last if $left eq '0';
	usleep(100_000);
}
is($left, '0', 'drained: no queued message and no unresolved half message left');

check_invariants('after draining');

my ($sent, $sent_half, $rolled_back_half, $consumed, $consumed_lease, $missing_tx,
	$missing_lease, $dead, $stats_ok)
  = split /\|/, $node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM sent),
		   (SELECT count(*) FROM sent WHERE kind = 'half'),
		   (SELECT count(*) FROM txmq.half WHERE state = 'rolled_back'),
		   (SELECT count(*) FROM consumed),
		   (SELECT count(*) FROM consumed_lease),
		   (SELECT count(*) FROM sent s WHERE NOT EXISTS
				(SELECT 1 FROM consumed c WHERE c.msg_id = s.msg_id AND c.pid = s.pid)),
		   (SELECT count(*) FROM sent s WHERE NOT EXISTS
				(SELECT 1 FROM consumed_lease c WHERE c.msg_id = s.msg_id AND c.pid = s.pid)),
		   (SELECT count(*) FROM txmq.dead_letter),
		   (SELECT bool_and(ready = 0 AND delayed = 0 AND in_flight = 0 AND dead = 0
							AND half_pending = 0)
			  FROM txmq.stats WHERE topic = 'crash')
});

is($crashes, scalar(@CRASHES), 'all crashes survived');
cmp_ok($sent, '>', 200, 'a real load was sent');
cmp_ok($sent_half, '>', 5, 'half messages were committed under load');
cmp_ok($rolled_back_half, '>', 0, 'half messages were rolled back under load');
is($missing_tx,    '0', 'every committed message consumed in transactional mode');
is($missing_lease, '0', 'every committed message consumed in lease mode');
is($consumed, $sent,
	'transactional mode consumed each committed message exactly once');
is($dead,     '0', 'no dead letters');
is($stats_ok, 't', 'txmq.stats: nothing ready, delayed, in flight, dead or half');
diag("crash_recovery: $crashes crashes survived (@CRASHES); $sent committed "
	  . "messages checked ($sent_half half), $rolled_back_half half messages rolled back; "
	  . "consumed: $consumed transactional, $consumed_lease lease mode "
	  . "(lease redeliveries: " . ($consumed_lease - $sent) . "); lost 0, duplicated 0");

# the queue still works normally
is( $node->safe_psql('postgres', q{
		SELECT txmq.send('crash', '{"p": -1}') > max(msg_id) FROM sent;
}), 't', 'a new send gets a higher id');

$node->stop;
done_testing();
