# crash_attempts: delivery attempts count toward max_deliveries although
# the server crashes during them (issue 13, src/attempts.c).
#
#   * a consumer whose backend is killed (SIGKILL) in the middle of its
#     transaction, max_deliveries times: the message goes to the dead
#     letters, last_error saying the attempts were interrupted;
#   * the same with the postmaster killed (kill -9) between receive and
#     commit;
#   * a rollback counts once, and rollbacks mixed with crashes, lease mode
#     mixed with transactional mode, count right;
#   * a clean restart keeps the counts, also of a transaction that the
#     shutdown ended;
#   * a changed txmq.max_tracked_messages or a copied data directory starts
#     the count again (LOG);
#   * a full attempt table (txmq.max_tracked_messages): receives skip what
#     they cannot track, txmq.stats says so, and a waiting receive gets the
#     message once room is freed.
use strict;
use warnings;

use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $node = TxmqTest::node('attempts',
	conf => "restart_after_crash = on\nlog_min_messages = warning\n");

sub psql { return $node->safe_psql('postgres', $_[0]) }

# A queue with max_deliveries $max holding one message.
sub queue
{
	my ($q, $max) = @_;
	psql(qq{SELECT txmq.create_queue('$q', max_deliveries => $max,
		backoff_base => '10 ms', backoff_max => '10 ms');
		SELECT txmq.send('$q', '{"n": 1}')});
}

# A session that begins a transaction and receives from $q: returns it,
# its backend's pid and the attempt it was given ('' if none).
sub receive_in_xact
{
	my ($q, $lease) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->query_safe('BEGIN');
	my $attempt = $s->query_safe(
		"SELECT attempt FROM txmq.receive('$q', '$q', 1)");
	return ($s, $pid, $attempt);
}

# Wait until the server accepts connections again.
sub wait_up
{
	my $t0 = time;
	until ($node->psql('postgres', 'SELECT 1') == 0)
	{
		die "server did not come back" if time - $t0 > 120;
		usleep(100_000);
	}
}

sub kill_backend
{
	my ($s, $pid) = @_;
	my $offset = -s $node->logfile;
	ok(kill(9, $pid), "killed backend $pid");
	$node->wait_for_log(qr/all server processes terminated; reinitializing/,
		$offset);
	eval { $s->quit };
	wait_up();
}

sub server_children
{
	my $pm = $node->{_pid};
	return grep { /^\d+$/ } map { s/\s+//gr } split /\n/,
	  `ps -o pid= --ppid $pm`;
}

sub kill_postmaster
{
	my ($s) = @_;
	my @children = server_children();
	$node->kill9;
	my $t0 = time;
	usleep(100_000) while (grep { kill(0, $_) } @children) && time - $t0 < 60;
	eval { $s->quit };
	$node->start;
	wait_up();
}

sub dead_letter
{
	my ($q) = @_;
	return psql(qq{SELECT attempts || ' ' || coalesce(last_error, '')
		FROM txmq.dead_letters('$q', '$q')});
}

# A receive that finds nothing, and so dead-letters an exhausted message.
sub receive_none
{
	my ($q) = @_;
	return psql(qq{SELECT count(*) FROM txmq.receive('$q', '$q', 1)});
}

# ---- a consumer's backend killed in its transaction, max_deliveries times
queue('sigkill', 3);
for my $n (1 .. 3)
{
	my ($s, $pid, $attempt) = receive_in_xact('sigkill');
	is($attempt, $n, "SIGKILL: delivery $n has attempt $n");
	kill_backend($s, $pid);
}
is(receive_none('sigkill'), '0', 'SIGKILL: no fourth delivery');
is( dead_letter('sigkill'),
	'3 interrupted by a server crash: 3 of 3 delivery attempts',
	'SIGKILL: dead-lettered after 3 attempts, last_error says they were interrupted'
);

# ---- the postmaster killed between receive and commit
queue('pmkill', 2);
for my $n (1 .. 2)
{
	my ($s, $pid, $attempt) = receive_in_xact('pmkill');
	is($attempt, $n, "postmaster kill: delivery $n has attempt $n");
	kill_postmaster($s);
}
is(receive_none('pmkill'), '0', 'postmaster kill: no third delivery');
is( dead_letter('pmkill'),
	'2 interrupted by a server crash: 2 of 2 delivery attempts',
	'postmaster kill: dead-lettered after 2 attempts');

# ---- a rollback counts once; rollbacks and crashes mixed
queue('mixed', 4);
is( psql(q{BEGIN; SELECT attempt FROM txmq.receive('mixed', 'mixed', 1);
		ROLLBACK;}),
	'1', 'rollback: delivery 1');
{
	my ($s, $pid, $attempt) = receive_in_xact('mixed');
	is($attempt, '2', 'a rollback counted once: delivery 2');
	kill_backend($s, $pid);
}
is( psql(q{BEGIN; SELECT attempt FROM txmq.receive('mixed', 'mixed', 1);
		ROLLBACK;}),
	'3', 'after a rollback and a crash: delivery 3');
{
	my ($s, $pid, $attempt) = receive_in_xact('mixed');
	is($attempt, '4', 'delivery 4');
	kill_backend($s, $pid);
}
is(receive_none('mixed'), '0', 'rollbacks and crashes: no fifth delivery');
is( dead_letter('mixed'),
	'4 interrupted by a server crash: 2 of 4 delivery attempts',
	'rollbacks and crashes: dead-lettered after 4, 2 of them crashes');

# ---- lease mode mixed with transactional mode
queue('lease', 3);
is( psql(q{SELECT attempt FROM txmq.receive('lease', 'lease', 1,
		lease => '10 ms')}),
	'1', 'lease mode: delivery 1, committed');
TxmqTest::poll($node, 'postgres',
	q{SELECT ready FROM txmq.stats WHERE topic = 'lease'},
	'1', 'lease mode: the lease ran out');
{
	my ($s, $pid, $attempt) = receive_in_xact('lease');
	is($attempt, '2', 'after a lease: delivery 2, transactional');
	kill_backend($s, $pid);
}
is( psql(q{SELECT attempt FROM txmq.receive('lease', 'lease', 1,
		lease => '10 ms')}),
	'3', 'after a crash: delivery 3, in lease mode');
TxmqTest::poll($node, 'postgres',
	q{SELECT ready FROM txmq.stats WHERE topic = 'lease'},
	'1', 'lease mode: the second lease ran out');
is(receive_none('lease'), '0', 'lease and crash: no fourth delivery');
is( dead_letter('lease'),
	'3 interrupted by a server crash: 1 of 2 delivery attempts',
	'lease and crash: the lease row carried the interrupted attempt');

# ---- a clean restart keeps the counts, also of a transaction it ended
queue('clean', 5);
psql(q{BEGIN; SELECT FROM txmq.receive('clean', 'clean', 1); ROLLBACK;});
{
	my ($s, $pid, $attempt) = receive_in_xact('clean');
	is($attempt, '2', 'clean restart: delivery 2 open at shutdown');
	$node->restart;    # fast: the open transaction aborts
	eval { $s->quit };
}
is( psql(q{BEGIN; SELECT attempt FROM txmq.receive('clean', 'clean', 1);
		ROLLBACK;}),
	'3', 'clean restart: both earlier attempts still count');

# ---- a copy of the data directory does not bring the counts along
{
	$node->stop;
	$node->backup_fs_cold('cold');
	my $copy = PostgreSQL::Test::Cluster->new('copy');
	$copy->init_from_backup($node, 'cold');
	$copy->start;
	ok( $copy->log_contains(qr/are discarded: it is a copy/),
		'a copied attempt file is discarded');
	is( $copy->safe_psql('postgres',
			q{BEGIN; SELECT attempt FROM txmq.receive('clean', 'clean', 1);
			ROLLBACK;}),
		'1', 'the copy counts from the rows alone');
	$copy->stop;
	$node->start;
	is( psql(q{BEGIN; SELECT attempt FROM txmq.receive('clean', 'clean', 1);
			ROLLBACK;}),
		'4', 'the original keeps its counts after the copy ran');
}

# ---- a full attempt table
$node->append_conf('postgresql.conf', "txmq.max_tracked_messages = 128\n");
$node->restart;
ok($node->log_contains(qr/are discarded: txmq.max_tracked_messages changed/),
	'a changed txmq.max_tracked_messages starts the count again');
psql(q{SELECT txmq.create_queue('full');
	SELECT txmq.send_batch('full', array_fill('{}'::jsonb, ARRAY[129]))});
my $holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_safe('BEGIN');
is($holder->query(q{SELECT count(*) FROM txmq.receive('full', 'full', 200)}),
	'128', 'a receive takes as many messages as the table can track');
is( psql(q{SELECT tracked_messages FROM txmq.stats WHERE topic = 'full'}),
	'128', 'txmq.stats: the table is full');
my ($ret, $out, $err) = $node->psql('postgres',
	q{SELECT count(*) FROM txmq.receive('full', 'full', 1)});
is($out, '0', 'a full table: the ready message is not delivered');
like($err, qr/all 128 tracked-message entries are in use/,
	'a full table: WARNING');
ok(psql(q{SELECT tracking_skips > 0 FROM txmq.stats WHERE topic = 'full'}) eq 't',
	'txmq.stats: tracking_skips counts the skipped row');
my $waiter = $node->background_psql('postgres');
my $m = TxmqTest::start_query($waiter,
	q{SELECT attempt FROM txmq.receive('full', 'full', 1, wait => '60 s');});
$holder->query('ROLLBACK');
# the first message, whose record is there: its attempt and the rollback's
is(TxmqTest::wait_result($waiter, $m, 60), '2',
	'a waiting receive gets a message once the holder is done');
$holder->quit;
$waiter->quit;
TxmqTest::poll($node, 'postgres',
	q{SELECT tracked_messages < 128 FROM txmq.stats WHERE topic = 'full'},
	't', 'room again after the rollback');

# ---- the worker forgets records of messages gone without a receive
psql(q{BEGIN; SELECT FROM txmq.receive('full', 'full', 200); ROLLBACK;});
ok(psql(q{SELECT tracked_messages >= 128 FROM txmq.stats WHERE topic = 'full'}) eq 't',
	'aborted attempts are tracked');
psql(q{SELECT txmq.purge('full')});
TxmqTest::poll($node, 'postgres',
	q{SELECT tracked_messages FROM txmq.stats WHERE topic = 'full'},
	'0', 'the worker forgets the attempts of purged messages');

done_testing();
