# notify: a consumer that LISTENs on txmq_<topic> is told of every message
# that becomes receivable, when it becomes receivable, at most once per
# topic per transaction or worker round.  One case per event:
#
#  1. commit of a send, of a commit_half, of a check-back's commit;
#  2. a delay running out (and not at the send's commit), many messages due
#     at once giving one notification;
#  3. a nack's backoff running out;
#  4. a lease running out;
#  5. a receive rolled back: the whole transaction, and a savepoint while
#     the transaction goes on;
#  6. a redrive;
#  7. in an ordered subscription, the ack that releases a key's next
#     message;
#  8. notify turned on for a topic with a message already due; and no
#     second notification for a topic created while the worker runs.
#
# The listener is a psql session; after each notification it receives at
# once, so a notification that came before its message was receivable
# fails the test (it receives nothing).  Notifications that no transaction
# commits (2-5) must come from the database's worker.  Every wait is
# bounded but generous: nothing here depends on how fast the machine is.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use TxmqTest;

my $node = TxmqTest::node('main');
my $wait_s = 60;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub run_in
{
	my ($bg, $q) = @_;
	return TxmqTest::wait_result($bg, TxmqTest::start_query($bg, $q), $wait_s);
}

# ---- the listener ----

my $l = $node->background_psql('postgres');
my @pending;    # notifications read but not yet consumed: [channel, pid]
my $l_pid;      # the listener's own (an ack in an ordered subscription)

# Run $q in the listener; notifications that psql prints go to @pending,
# the rest is returned.
sub listener_run
{
	my ($q) = @_;
	my @rest;
	for my $line (split /\n/, run_in($l, $q))
	{
		if ($line =~
			/^Asynchronous notification "([^"]+)" received from server process with PID (\d+)\.$/)
		{
			push @pending, [ $1, $2 ] unless defined $l_pid && $2 == $l_pid;
		}
		else
		{
			push @rest, $line;
		}
	}
	return join("\n", @rest);
}

# Take the pending notifications of $channel (all of them).
sub take
{
	my ($channel) = @_;
	my @mine = grep { $_->[0] eq $channel } @pending;
	@pending = grep { $_->[0] ne $channel } @pending;
	return @mine;
}

# Wait for the first notification on $channel; returns its sender's pid.
# Any others stay pending, for the next take().
sub wait_notify
{
	my ($channel, $what) = @_;
	my $until = time + $wait_s;
	for (;;)
	{
		listener_run('SELECT 1;');
		my @got = take($channel);
		if (@got)
		{
			unshift @pending, @got[ 1 .. $#got ];
			return $got[0][1];
		}
		if (time > $until)
		{
			fail("$what: notification on $channel within $wait_s s");
			return -1;
		}
		sleep 0.02;
	}
}

# What the listener gets from receive() right now (and acks): "n:attempts".
sub listener_receive
{
	my ($q) = @_;
	return listener_run(
		"SELECT count(*) || ':' || coalesce(string_agg(attempt::text, ',' ORDER BY msg_id), '')"
		  . " FROM txmq.receive('$q', '$q', 1000) r, txmq.ack('$q', '$q', r.msg_id);");
}

sub worker_pid
{
	my $pid;
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE backend_type = 'txmq worker' AND datname = 'postgres'})
	  or die 'no txmq worker';
	return sql(q{SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'txmq worker' AND datname = 'postgres'});
}

sql(q{
	SELECT txmq.create_queue('nq', lease => '30 s', backoff_base => '1 s',
							 backoff_max => '1 s');
	SELECT txmq.create_queue('nq_late');
	SELECT txmq.create_queue('nq_off', notify => false);
	SELECT txmq.create_queue('nq_half', check_after => '100 ms',
							 check_interval => '100 ms');
});
listener_run('LISTEN txmq_nq; LISTEN txmq_nq_late; LISTEN txmq_nq_off; LISTEN txmq_nq_half;');
$l_pid = listener_run('SELECT pg_backend_pid();');
my $worker = worker_pid();
my $other = $node->background_psql('postgres');
my $other_pid = run_in($other, 'SELECT pg_backend_pid();');

# A notification that came, from $from, with its message receivable.
sub notified
{
	my ($q, $from, $expect, $what) = @_;
	my $pid = wait_notify("txmq_$q", $what);
	is(listener_receive($q), $expect,
		"$what: after the notification the message is receivable");
	is($pid, $from, "$what: notified by the " .
		  ($from == $worker ? 'worker' : 'committing session'));
	is(scalar(take("txmq_$q")), 0, "$what: one notification");
}

# The worker reads which topics have notify on once per naptime, and looks
# at everything already due in a topic it did not know: let it know these
# before the cases begin, so that what it finds then is not counted.
run_in($other, q{SELECT txmq.send('nq_late', '{"e": "start"}', delay => '200 ms');});
wait_notify('txmq_nq_late', 'worker serving');
is(listener_receive('nq_late'), '1:1', 'worker serving: receivable');
take('txmq_nq_late');

# ---- 1. commits ----

run_in($other, q{SELECT txmq.send('nq', '{"e": "send"}');});
notified('nq', $other_pid, '1:1', 'send');

my $half = run_in($other,
	q{SELECT txmq.send_half('nq', '{"e": "half"}', producer_group => 'g');});
run_in($other, "SELECT txmq.commit_half($half);");
notified('nq', $other_pid, '1:1', 'commit_half');

# check-back commits a half message whose local transaction committed
run_in($other, 'BEGIN;');
my $xid = run_in($other, 'SELECT pg_current_xact_id();');
sql("SELECT txmq.send_half('nq_half', '{\"e\": \"check\"}', local_xid => '$xid')");
run_in($other, 'COMMIT;');
notified('nq_half', $worker, '1:1', 'check-back commit');

# ---- 2. a delay running out ----

# 50 messages due at once, and one due much later: its commit says nothing,
# the 50 make one notification when they are due
run_in($other, q{SELECT count(*) FROM txmq.send('nq_late', '{}', delay => '1 h');});
run_in($other, q{SELECT count(*) FROM txmq.send_batch('nq',
	array_fill('{"e": "delayed"}'::jsonb, ARRAY[50]), delay => '1 s');});
notified('nq', $worker, '50:' . join(',', (1) x 50), 'delayed send');
is(scalar(take('txmq_nq_late')), 0, 'a send delayed by an hour notifies no one yet');

# a delayed send whose transaction outlasts its delay: due at its commit
run_in($other, 'BEGIN;');
run_in($other, q{SELECT txmq.send('nq', '{"e": "late commit"}', delay => '10 ms');});
run_in($other, 'SELECT pg_sleep(0.05);');
run_in($other, 'COMMIT;');
wait_notify('txmq_nq', 'delay over before commit');
is(listener_receive('nq'), '1:1', 'delay over before commit: receivable');
take('txmq_nq');

# a topic with notify off stays silent
run_in($other, q{SELECT txmq.send('nq_off', '{}', delay => '10 ms');});

# ---- 3. a nack's backoff running out ----

sql(q{SELECT txmq.send('nq', '{"e": "nack"}')});
wait_notify('txmq_nq', 'send before nack');
take('txmq_nq');
is(run_in($other, q{SELECT txmq.nack('nq', 'nq', msg_id) FROM txmq.receive('nq', 'nq');}),
	't', 'nacked with the subscription backoff');
notified('nq', $worker, '1:2', 'nack backoff');

# ---- 4. a lease running out ----

sql(q{SELECT txmq.send('nq', '{"e": "lease"}')});
wait_notify('txmq_nq', 'send before lease');
take('txmq_nq');
is(run_in($other, q{SELECT count(*) FROM txmq.receive('nq', 'nq', lease => '1 s');}),
	'1', 'leased for a second');
notified('nq', $worker, '1:2', 'lease expiry');

# ---- 5. a receive rolled back ----

sql(q{SELECT txmq.send_batch('nq', array_fill('{"e": "rollback"}'::jsonb, ARRAY[20]))});
wait_notify('txmq_nq', 'send before rollback');
take('txmq_nq');
run_in($other, 'BEGIN;');
is(run_in($other, q{SELECT count(*) FROM txmq.receive('nq', 'nq', 100);}),
	'20', 'received in a transaction');
listener_run('SELECT 1;');
is(scalar(take('txmq_nq')), 0, 'no notification while the receiver holds them');
run_in($other, 'ROLLBACK;');
notified('nq', $worker, '20:' . join(',', (2) x 20), 'receive rolled back');

sql(q{SELECT txmq.send('nq', '{"e": "savepoint"}')});
wait_notify('txmq_nq', 'send before savepoint');
take('txmq_nq');
run_in($other, 'BEGIN;');
run_in($other, 'SAVEPOINT s;');
is(run_in($other, q{SELECT count(*) FROM txmq.receive('nq', 'nq');}),
	'1', 'received in a savepoint');
run_in($other, 'ROLLBACK TO SAVEPOINT s;');
# the receiver's transaction is still open: the worker tells
notified('nq', $worker, '1:2', 'savepoint rolled back');
run_in($other, 'COMMIT;');

# ---- 6. redrive ----

sql(q{SELECT txmq.send('nq', '{"e": "redrive"}')});
wait_notify('txmq_nq', 'send before redrive');
take('txmq_nq');
run_in($other, q{SELECT txmq.reject('nq', 'nq', msg_id) FROM txmq.receive('nq', 'nq');});
listener_run('SELECT 1;');
is(scalar(take('txmq_nq')), 0, 'a reject makes nothing receivable');
run_in($other, q{SELECT txmq.redrive('nq', 'nq');});
notified('nq', $other_pid, '1:1', 'redrive');

# ---- 7. an ordered subscription releases a key ----

sql(q{SELECT txmq.create_queue('nq_ord', ordered => true)});
listener_run('LISTEN txmq_nq_ord;');
sql(q{BEGIN;
	SELECT txmq.send('nq_ord', '{"n": 1}', key => 'k');
	SELECT txmq.send('nq_ord', '{"n": 2}', key => 'k');
	COMMIT;});
wait_notify('txmq_nq_ord', 'ordered sends');
take('txmq_nq_ord');
my $first = run_in($other, q{SELECT msg_id FROM txmq.receive('nq_ord', 'nq_ord');});
is(listener_receive('nq_ord'), '0:', "the key's next message waits while the first is leased");
run_in($other, "SELECT txmq.ack('nq_ord', 'nq_ord', $first);");
notified('nq_ord', $other_pid, '1:1', 'ordered: the ack releases the key');

# ---- 8. notify turned on; a topic new to the worker ----

# A delay that ran out while notify was off told nobody; turning notify
# on tells at once, in the altering transaction's commit.  The topic is
# new, so the worker cannot know it yet either way.
sql(q{SELECT txmq.create_queue('nq_on', notify => false)});
listener_run('LISTEN txmq_nq_on;');
sql(q{SELECT txmq.send('nq_on', '{"e": "while off"}', delay => '100 ms')});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM txmq.peek('nq_on', 'nq_on')})
  or die 'the delayed message never became ready';
listener_run('SELECT 1;');
is(scalar(take('txmq_nq_on')), 0, 'notify off: not told when the delay ran out');
run_in($other, q{SELECT txmq.alter_topic('nq_on', notify => true);});
notified('nq_on', $other_pid, '1:1', 'notify turned on');

# A topic created after the worker last read the topics: its nack told
# the listener at commit, and the worker's next read (before it commits
# the half message below) must not tell it again.  The message stays
# queued, so a second round would find it.
sql(q{SELECT txmq.create_queue('nq_new', backoff_base => '0', backoff_max => '0')});
listener_run('LISTEN txmq_nq_new;');
run_in($other, q{SELECT txmq.send('nq_new', '{"e": "new"}');});
is(wait_notify('txmq_nq_new', 'new topic: send'), $other_pid, 'new topic: the send notified');
run_in($other, q{SELECT count(*) FROM txmq.receive('nq_new', 'nq_new') r,
	txmq.nack('nq_new', 'nq_new', r.msg_id, delay => '0');});
is(wait_notify('txmq_nq_new', 'new topic: nack'), $other_pid, 'new topic: the nack notified');
run_in($other, 'BEGIN;');
$xid = run_in($other, 'SELECT pg_current_xact_id();');
sql("SELECT txmq.send_half('nq_half', '{\"e\": \"after new\"}', local_xid => '$xid')");
run_in($other, 'COMMIT;');
notified('nq_half', $worker, '1:1', 'check-back commit after the new topic');

# ---- nothing else came ----

# The worker's rounds come in order: once it has notified of this message,
# due after everything above, it has had its chance to send anything more.
sql(q{SELECT txmq.send('nq_late', '{"e": "marker"}', delay => '200 ms')});
wait_notify('txmq_nq_late', 'marker');
is(listener_receive('nq_late'), '1:1', 'marker receivable');
listener_run('SELECT 1;');
is(scalar(take('txmq_nq')), 0, 'no further notification on txmq_nq');
is(scalar(take('txmq_nq_off')), 0, 'none on a topic with notify off');
is(scalar(take('txmq_nq_half')), 0, 'none more on txmq_nq_half');
is(scalar(take('txmq_nq_on')), 0, 'none more on txmq_nq_on');
is(scalar(take('txmq_nq_new')), 0, 'none more on txmq_nq_new, a topic created while the worker ran');
is(scalar(@pending), 0, 'no other notification');

$other->quit;
$l->quit;
done_testing();
