# bad_input_fuzz: the bad-input sweep under a crash watch, then a fuzz pass
# (SPEC section 5, issue 6 "Bad-input sweep").
#
# 1. test/regress/sql/reliability_bad_input.sql (every public function with
#    nulls, empty strings, wrong types, out-of-range numbers and intervals,
#    unknown ids) runs on a fresh node: no call may end in XX000, and the
#    server log must show no crashed process.
# 2. Fuzz: several sessions (superuser, the topics' owner, an application
#    role with some grants) make random calls, valid and invalid, in random
#    order, inside and outside transactions and savepoints, for a bounded
#    time with fixed seeds.  Afterwards: no XX000 and no crash, the tables
#    are consistent with each other and with txmq.stats, and, once leases
#    and delays have run out, a receive gets every queued message (no claim
#    or shared-memory state was left behind).
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use POSIX ();
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $FUZZ_SECONDS = 20;
my $SESSIONS     = 4;

my $node = TxmqTest::node('fuzz',
	conf => "log_statement = none\nlog_min_messages = warning\n"
	  . "log_error_verbosity = verbose\n");

# Lines of the server log that mean a crash or an internal error.
sub crash_lines
{
	my ($offset) = @_;
	my $log = slurp_file($node->logfile, $offset);
	return grep {
		/terminated by signal|was terminated by exception|server process .* exited with exit code [^0]|PANIC|TRAP:|XX000|terminating any other active server processes/
	} split /\n/, $log;
}

# ---- 1. the sweep ----
my $sweep_file = dirname(__FILE__) . '/../regress/sql/reliability_bad_input.sql';
my $offset = -s $node->logfile;
my ($rc, $out, $err) = $node->psql('postgres', slurp_file($sweep_file),
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
my $calls = () = $out =~ /^\w+\(.*\|(?:\w{5}: |ok, )/mg;
cmp_ok($calls, '>=', 200, "the sweep made $calls calls");
unlike($out, qr/\|XX\d{3}:/, 'no call of the sweep ended in an internal error');
like($out, qr/^$calls\|\d+\|\d+\|0\nt$/m,
	'the sweep changed nothing (its totals line and "unchanged")');
is(join("\n", crash_lines($offset)), '', 'no crash during the sweep');

# ---- 2. the fuzz ----
$node->safe_psql('postgres', q{
	CREATE ROLE fz_owner;
	CREATE ROLE fz_app;
	GRANT EXECUTE ON FUNCTION txmq.create_topic,
		txmq.create_queue TO fz_owner;
	CREATE FUNCTION public.fz_check(m txmq.message) RETURNS txmq.check_result
	LANGUAGE plpgsql AS $$
	BEGIN
		CASE (m.msg_id % 5)
			WHEN 0 THEN RETURN 'commit';
			WHEN 1 THEN RETURN 'rollback';
			WHEN 2 THEN RAISE EXCEPTION 'fz_check fails for %', m.msg_id;
			WHEN 3 THEN RETURN NULL;
			ELSE RETURN 'unknown';
		END CASE;
	END $$;
	SET ROLE fz_owner;
	SELECT txmq.create_queue('fz_q', max_deliveries => 3, lease => '300 ms',
		backoff_base => '50 ms', backoff_max => '300 ms');
	SELECT txmq.create_topic('fz_t', notify => false,
		check_function => 'public.fz_check(txmq.message)',
		check_after => '100 ms', check_interval => '100 ms', max_checks => 3,
		on_checks_exhausted => 'dead_letter');
	SELECT txmq.create_subscription('fz_t', 'a', max_deliveries => 2,
		lease => '200 ms', backoff_base => '10 ms', backoff_max => '100 ms');
	SELECT txmq.create_subscription('fz_t', 'b', lease => '1 s',
		backoff_base => '10 ms', backoff_max => '100 ms');
	SELECT txmq.grant('fz_q', 'fz_app', 'send');
	SELECT txmq.grant('fz_t', 'fz_app', 'receive', 'a');
	RESET ROLE;
});

my @topics  = ("'fz_q'", "'fz_t'", "'fz_nope'", "''", 'NULL', "'fz q'");
my @subs    = ([ "'fz_q'", "'fz_q'" ], [ "'fz_t'", "'a'" ], [ "'fz_t'", "'b'" ],
	[ "'fz_t'", "'c'" ], [ "'fz_q'", "'a'" ], [ 'NULL', "'a'" ], [ "'fz_t'", "''" ]);
my @payloads = ("'{\"n\": %d}'", "'null'", "'\"s\"'", 'NULL', "'[1, 2]'", "'{'",
	"to_jsonb(repeat('x', 2000000))", "'{\"q\": \"it''s; DROP TABLE x\"}'");
my @headers  = ('NULL', "'{\"h\": 1}'", "'[]'", "'{}'");
my @keys     = ('NULL', "'k1'", "'k2'", "repeat('k', 2000)", "''");
my @delays   = ('NULL', "'0'", "'100 ms'", "'-1 s'", "'40 days'", "'300 ms'");
my @leases   = ('NULL', "'200 ms'", "'0'", "'1 ms'", "'13 h'");
my @waits    = ('NULL', "'0'", "'50 ms'", "'-1 s'", "'2 h'");
my @maxes    = (1, 3, 0, -1, 100, 'NULL', 20000);
my @groups   = ('NULL', "'fzg'", "'fz g'");

sub pick { return $_[ int(rand(@_)) ] }

# an id: of a queued, dead or half message, or anything
sub some_id
{
	my ($superuser) = @_;
	my @ids = ('-1', '0', 'NULL', int(rand(3000)), '9223372036854775807');
	push @ids,
	  '(SELECT msg_id FROM txmq.msg ORDER BY random() LIMIT 1)',
	  '(SELECT msg_id FROM txmq.msg ORDER BY random() LIMIT 1)',
	  '(SELECT msg_id FROM txmq.dead_letter ORDER BY random() LIMIT 1)',
	  '(SELECT msg_id FROM txmq.half ORDER BY random() LIMIT 1)'
	  if $superuser;
	return pick(@ids);
}

sub statement
{
	my ($superuser, $n) = @_;
	my $r = rand();
	my ($t, $s) = @{ pick(@subs) };
	my $id = some_id($superuser);
	if ($r < 0.20)
	{
		return sprintf("SELECT txmq.send(%s, %s, %s, %s, %s);", pick(@topics),
			sprintf(pick(@payloads), $n), pick(@headers), pick(@keys), pick(@delays));
	}
	elsif ($r < 0.25)
	{
		my @p = map { rand() < 0.1 ? 'NULL' : "'$_'" } 1 .. int(rand(5));
		return sprintf("SELECT txmq.send_batch(%s, ARRAY[%s]::jsonb[], %s, %s, %s);",
			pick(@topics), join(', ', @p), pick(@headers), pick(@keys), pick(@delays));
	}
	elsif ($r < 0.32)
	{
		return sprintf("SELECT txmq.send_half(%s, '{\"h\": %d}', %s, %s, %s, %s);",
			pick("'fz_t'", "'fz_t'", "'fz_q'", "'fz_nope'"), $n, pick(@headers),
			pick(@keys), pick(@groups),
			pick('NULL', 'NULL', 'pg_current_xact_id()', "'0'", "'3'"));
	}
	elsif ($r < 0.36)
	{
		return sprintf("SELECT txmq.%s(%s);",
			pick('commit_half', 'rollback_half', 'commit_half', '_check_half'), $id);
	}
	elsif ($r < 0.52)
	{
		return sprintf("SELECT msg_id, attempt FROM txmq.receive(%s, %s, %s, %s, %s);",
			$t, $s, pick(@maxes), pick(@leases), pick(@waits));
	}
	elsif ($r < 0.58)
	{
		return sprintf("WITH r AS (SELECT msg_id FROM txmq.receive(%s, %s, %s)) "
			  . "SELECT txmq.%s(%s, %s, msg_id) FROM r;",
			$t, $s, pick(1, 2, 5), pick('ack', 'ack', 'nack', 'reject'), $t, $s);
	}
	elsif ($r < 0.66)
	{
		return sprintf("SELECT txmq.ack(%s, %s, %s);", $t, $s,
			pick($id, "ARRAY[$id]::bigint[]", "'{}'::bigint[]", "'{NULL}'::bigint[]"));
	}
	elsif ($r < 0.71)
	{
		return sprintf("SELECT txmq.nack(%s, %s, %s, %s, %s);", $t, $s, $id,
			pick(@delays), pick('NULL', "'err'", "repeat('e', 70000)"));
	}
	elsif ($r < 0.74)
	{
		return sprintf("SELECT txmq.reject(%s, %s, %s, %s);", $t, $s, $id,
			pick('NULL', "'poison'"));
	}
	elsif ($r < 0.77)
	{
		return sprintf("SELECT txmq.extend_lease(%s, %s, %s, %s);", $t, $s, $id,
			pick(@leases));
	}
	elsif ($r < 0.81)
	{
		return sprintf("SELECT count(*) FROM txmq.dead_letters(%s, %s);", $t, $s)
		  if rand() < 0.5;
		return sprintf("SELECT txmq.redrive(%s, %s, %s);", $t, $s,
			pick('NULL', "ARRAY[$id]::bigint[]", "'{NULL}'"));
	}
	elsif ($r < 0.86)
	{
		return pick(
			'SELECT count(*) FROM txmq.stats;',
			"SELECT count(*) FROM txmq.half_messages();",
			"SELECT count(*) FROM txmq.half_messages('fz_t');",
			"SELECT count(*) FROM txmq.pending_checks('fzg');",
			"SELECT count(*) FROM txmq.pending_checks(NULL);");
	}
	elsif ($r < 0.88)
	{
		# (no drop_subscription / drop_topic: dropping while a send is
		# open leaves orphan rows behind, a known issue)
		return pick(
			"SELECT txmq.create_subscription('fz_t', 'c', lease => '100 ms');",
			"SELECT txmq.purge('fz_t', 'c');",
			"SELECT txmq.grant('fz_t', 'fz_app', 'receive', 'c');",
			"SELECT txmq.revoke('fz_t', 'fz_app', 'receive', 'c');",
			"SELECT txmq.create_topic('fz_nope');");
	}
	elsif ($r < 0.92)
	{
		return pick('BEGIN;', 'BEGIN;', 'BEGIN ISOLATION LEVEL REPEATABLE READ;',
			'SAVEPOINT s;', 'ROLLBACK TO SAVEPOINT s;', 'RELEASE SAVEPOINT s;');
	}
	elsif ($r < 0.97)
	{
		return pick('COMMIT;', 'COMMIT;', 'ROLLBACK;');
	}
	else
	{
		return pick("SELECT pg_sleep(0.05);", "SET statement_timeout = '20ms';",
			'RESET statement_timeout;',
			"SELECT count(*) FROM txmq.receive('fz_t', 'b', 10, wait => '100 ms');");
	}
}

my $tmp      = tempdir(CLEANUP => 1);
my $deadline = time + $FUZZ_SECONDS;
my @kids;
my @roles = (undef, undef, 'fz_owner', 'fz_app');
for my $i (0 .. $SESSIONS - 1)
{
	my $role = $roles[ $i % @roles ];
	my $pid  = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		srand(1000 + $i);
		my ($batch, $statements) = (0, 0);
		open(STDOUT, '>', "$tmp/fuzz$i.out");
		open(STDERR, '>', "$tmp/fuzz$i.err");
		while (time < $deadline)
		{
			$batch++;
			my $sql = "\\set VERBOSITY verbose\n";
			$sql .= "SET ROLE $role;\n" if $role;
			for my $n (1 .. 200)
			{
				$sql .= statement(!$role, $i * 1_000_000 + $batch * 1000 + $n) . "\n";
			}
			$sql .= "ROLLBACK;\n";
			open(my $fh, '>', "$tmp/fuzz$i.sql") or POSIX::_exit(1);
			print $fh $sql;
			close $fh;
			system('psql', '-X', '-q', '-d', $node->connstr('postgres'),
				'-f', "$tmp/fuzz$i.sql");
			$statements += 200;
		}
		open(my $fh, '>', "$tmp/fuzz$i.count");
		print $fh $statements;
		close $fh;
		POSIX::_exit(0);
	}
	push @kids, $pid;
}
$offset = -s $node->logfile;
waitpid($_, 0) for @kids;

my ($statements, $errors, %states) = (0, 0);
for my $i (0 .. $SESSIONS - 1)
{
	$statements += slurp_file("$tmp/fuzz$i.count");
	for (split /\n/, slurp_file("$tmp/fuzz$i.err"))
	{
		next unless /ERROR:  (\w{5}):/;
		$errors++;
		$states{$1}++;
	}
}
cmp_ok($statements, '>', 1000, "fuzz: $statements random statements");
ok(!exists $states{XX000}, 'fuzz: no internal error (XX000)')
  or diag(`grep -h XX000 $tmp/fuzz*.err | sort | uniq -c | head -20`);
is(join("\n", crash_lines($offset)), '', 'fuzz: no crash in the server log');
diag("fuzz: $statements statements, $errors errors by SQLSTATE: "
	  . join(', ', map { "$_ $states{$_}" } sort keys %states));

# ---- afterwards: consistency ----
is( $node->safe_psql('postgres', q{
	SELECT
	 (SELECT count(*) FROM txmq.msg m WHERE NOT EXISTS
		(SELECT 1 FROM txmq.subscription s WHERE s.sub_id = m.sub_id)) || ' orphan queued, ' ||
	 (SELECT count(*) FROM txmq.dead_letter d WHERE NOT EXISTS
		(SELECT 1 FROM txmq.subscription s WHERE s.sub_id = d.sub_id)) || ' orphan dead, ' ||
	 (SELECT count(*) FROM txmq.msg m JOIN txmq.dead_letter d USING (sub_id, msg_id)) || ' both queued and dead, ' ||
	 (SELECT count(*) FROM txmq.msg WHERE attempt < 0 OR msg_id > (SELECT last_value FROM txmq.msg_id_seq)) || ' bad rows, ' ||
	 (SELECT count(*) FROM txmq.msg m JOIN txmq.half h USING (msg_id) WHERE h.state IN ('half', 'rolled_back')) || ' delivered uncommitted half, ' ||
	 (SELECT count(*) FROM txmq.dead_letter m JOIN txmq.half h USING (msg_id) WHERE h.state IN ('half', 'rolled_back')) || ' dead uncommitted half, ' ||
	 (SELECT count(*) FROM txmq.half WHERE state = 'half' AND check_count > 3) || ' half over max_checks'
}), '0 orphan queued, 0 orphan dead, 0 both queued and dead, 0 bad rows, 0 delivered uncommitted half, 0 dead uncommitted half, 0 half over max_checks',
	'fuzz: the tables are consistent');

my $stats_check = q{
	SELECT count(*) FILTER (WHERE NOT ok) || ' inconsistent of ' || count(*)
	  FROM (SELECT st.ready + st.delayed + st.in_flight =
				   (SELECT count(*) FROM txmq.msg m WHERE m.sub_id = s.sub_id)
			   AND st.dead = (SELECT count(*) FROM txmq.dead_letter d WHERE d.sub_id = s.sub_id)
			   AND st.half_pending = (SELECT count(*) FROM txmq.half h
									   WHERE h.topic_id = t.topic_id AND h.state = 'half')
			   -- the view reads the clock after now(): a lease may expire between
			   AND st.in_flight BETWEEN
				   (SELECT count(*) FROM txmq.msg m WHERE m.sub_id = s.sub_id
					   AND m.leased AND m.vt > clock_timestamp())
			   AND (SELECT count(*) FROM txmq.msg m WHERE m.sub_id = s.sub_id
					   AND m.leased AND m.vt > now()) AS ok
		  FROM txmq.stats st
		  JOIN txmq.topic t ON t.name = st.topic
		  JOIN txmq.subscription s ON s.topic_id = t.topic_id AND s.name = st.subscription) x
};
is($node->safe_psql('postgres', "BEGIN ISOLATION LEVEL REPEATABLE READ; $stats_check; COMMIT;"),
	'0 inconsistent of ' . $node->safe_psql('postgres',
		q{SELECT count(*) FROM txmq.subscription}),
	'fuzz: txmq.stats agrees with the tables for every subscription');

# every half message is eventually resolved by the worker (max_checks 3)
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM txmq.half WHERE state = 'half' AND topic_id =
			(SELECT topic_id FROM txmq.topic WHERE name = 'fz_t')}),
	'fuzz: the worker resolves every half message of the checked topic');
# and those of fz_q that name a local transaction (all have ended): else
# one could be committed into the queue during the drain below
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM txmq.half WHERE state = 'half'
			AND local_xid IS NOT NULL AND topic_id =
			(SELECT topic_id FROM txmq.topic WHERE name = 'fz_q')}),
	'fuzz: the worker resolves every half message that names a local transaction');

# once leases, delays and backoffs are over, a receive gets every queued
# message: no claim or other shared state was left behind.  Rows changed
# by hand wake no receiver; receives find them within a second (README,
# "Where a receive starts"), so wait that second.
$node->safe_psql('postgres', q{
	UPDATE txmq.msg SET vt = now() - interval '1 s' WHERE vt > now();
	SELECT pg_sleep(1.1);});
# (a receive dead-letters what has used up its deliveries instead)
my $drained = $node->safe_psql('postgres', q{
	CREATE TEMP TABLE before AS
		SELECT s.sub_id, t.name AS topic, s.name,
			   (SELECT count(*) FROM txmq.msg m WHERE m.sub_id = s.sub_id) AS queued,
			   (SELECT count(*) FROM txmq.dead_letter d WHERE d.sub_id = s.sub_id) AS dead
		  FROM txmq.subscription s JOIN txmq.topic t USING (topic_id);
	CREATE TEMP TABLE got AS
		SELECT sub_id, (SELECT count(*) FROM txmq.receive(topic, name, 10000, '1 min')) AS n
		  FROM before;
	SELECT string_agg(b.name || ':' || b.queued || '/' || g.n || '+'
			|| ((SELECT count(*) FROM txmq.dead_letter d WHERE d.sub_id = b.sub_id) - b.dead),
			' ' ORDER BY b.sub_id)
	  FROM before b JOIN got g USING (sub_id);
});
my $all_got = 1;
for (split / /, $drained)
{
	my ($name, $queued, $got, $dead) = /^(.*):(\d+)\/(\d+)\+(\d+)$/;
	$all_got = 0 unless defined $dead && $queued == $got + $dead;
}
ok($all_got,
	"fuzz: every queued message is received or dead-lettered (subscription:queued/received+dead-lettered $drained)");
is($node->safe_psql('postgres', "BEGIN ISOLATION LEVEL REPEATABLE READ; $stats_check; COMMIT;"),
	'0 inconsistent of ' . $node->safe_psql('postgres',
		q{SELECT count(*) FROM txmq.subscription}),
	'fuzz: txmq.stats still agrees after the drain');
is(join("\n", crash_lines($offset)), '', 'no crash at all');

$node->stop;
done_testing();
