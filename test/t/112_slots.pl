# slots: the shared-memory slots of subscriptions and topics (issue 13) are
# bounded by what is in use, not by what was used since the server started.
#
#  1. Queues created, used and dropped in a loop while others are kept and
#     used, with room for the kept ones: the drops free their slots, so the
#     kept queues are never evicted and count every message since their
#     first use.
#  2. The same with more kept queues than slots: idle slots are evicted and
#     rebuilt, and every kept queue is still woken at commit by its
#     condition variable (its waiter's txmq.poll_interval, the fallback, is
#     60 s, twice the wait) and has counters.  Wake-up latency is printed,
#     not asserted.
#  3. Every slot held by a waiting receiver (the worker holds one more): a
#     new waiter gets none, the log and txmq.stats say how many are needed,
#     and its queue still works, by polling.  Once the others let go, it
#     gets a slot again.
#
# The issue's size, measured once: TXMQ_SLOTS_MAX=1024 TXMQ_SLOTS_KEEP=5000
# TXMQ_SLOTS_CHURN=10000 (TXMQ_SLOTS_WAITS: how many kept queues are waited
# on, all by default).  The defaults press 64 slots with 48 kept queues.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $max = $ENV{TXMQ_SLOTS_MAX} || 64;
my $keep = $ENV{TXMQ_SLOTS_KEEP} || 48;
my $churn = $ENV{TXMQ_SLOTS_CHURN} || 160;
my $waits = $ENV{TXMQ_SLOTS_WAITS} || $keep;    # kept queues waited on
my $rounds = 4;

my $node = TxmqTest::node('main', conf => "txmq.max_subscriptions = $max\n");

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
	-- n queues prefix1 .. prefixn, each created, sent to, received from
	-- and dropped, a transaction each
	CREATE PROCEDURE churn(prefix text, n int) LANGUAGE plpgsql AS $$
	DECLARE
		q text;
	BEGIN
		FOR i IN 1 .. n LOOP
			q := prefix || i;
			PERFORM txmq.create_queue(q, notify => false);
			COMMIT;
			PERFORM txmq.send(q, '{}');
			COMMIT;
			PERFORM txmq.ack(q, q, msg_id) FROM txmq.receive(q, q);
			COMMIT;
			PERFORM txmq.drop_topic(q);
			COMMIT;
		END LOOP;
	END $$;
	CREATE PROCEDURE make_kept(prefix text, n int) LANGUAGE plpgsql AS $$
	BEGIN
		FOR i IN 1 .. n LOOP
			PERFORM txmq.create_queue(prefix || i, notify => false);
			COMMIT;
		END LOOP;
	END $$;
	-- one message through each kept queue, received and acked in one
	-- transaction
	CREATE PROCEDURE use_kept(prefix text, n int) LANGUAGE plpgsql AS $$
	DECLARE
		q text;
	BEGIN
		FOR i IN 1 .. n LOOP
			q := prefix || i;
			PERFORM txmq.send(q, '{}');
			COMMIT;
			PERFORM txmq.ack(q, q, msg_id) FROM txmq.receive(q, q);
			COMMIT;
		END LOOP;
	END $$;
});

# ---- 1. room for the kept queues: the drops free their slots ----
# each kept queue takes two slots (its topic's, its subscription's), the
# worker one; each round churns through twice the table (at most 4096
# slots' worth)
my $keep1 = $max < 904 ? int(($max - 4) / 3) : 300;
my $churn1 = $max < 2048 ? $max : 2048;
sql("CALL make_kept('k1_', $keep1)");
for my $round (1 .. 3)
{
	sql("CALL churn('c1_${round}_', $churn1)");
	sql("CALL use_kept('k1_', $keep1)");
	sql(q{CREATE TABLE first_since AS SELECT topic, counters_since
		FROM txmq.stats WHERE topic LIKE 'k1\_%'}) if $round == 1;
}
is(sql(q{
	SELECT count(*) FROM txmq.stats s JOIN first_since f USING (topic)
	 WHERE sent = 3 AND delivered = 3 AND acked = 3
	   AND s.counters_since = f.counters_since}),
	$keep1, "all $keep1 kept queues counted all 3 messages since their first use");
is(sql(q{SELECT count(*) FROM txmq.stats WHERE topic LIKE 'c1\_%'}), '0',
	'the churned queues are gone');

# ---- 2. more kept queues than slots ----
sql("CALL make_kept('k2_', $keep)");
my $waiter = $node->background_psql('postgres');
TxmqTest::wait_result($waiter,
	TxmqTest::start_query($waiter, q{SET txmq.poll_interval = '60s';}));
my $waiter_pid = TxmqTest::wait_result($waiter,
	TxmqTest::start_query($waiter, 'SELECT pg_backend_pid();'));

# Wake the waiter on queue $q: it must get the message long before its
# 30 s wait ends (without a slot it would sleep through it).  Returns the
# latency in ms, from just before the sender's COMMIT to the receive's
# return (so the commit's own time counts too).
sub woken
{
	my ($q) = @_;
	my $m = TxmqTest::start_query($waiter, qq{
		SELECT count(txmq.ack('$q', '$q', msg_id)) || ' '
			   || (clock_timestamp() - statement_timestamp() < '25 s') || ' '
			   || extract(epoch FROM clock_timestamp())
		  FROM txmq.receive('$q', '$q', wait => '30 s');});
	$node->poll_query_until('postgres', qq{
		SELECT wait_event_type = 'Extension' AND wait_event = 'Extension'
		  FROM pg_stat_activity WHERE pid = $waiter_pid}) or die 'waiter never slept';
	my ($id, $sent_at) = split /\n/,
	  sql(qq{BEGIN;
			 SELECT txmq.send('$q', '{}');
			 SELECT extract(epoch FROM clock_timestamp());
			 COMMIT;});
	my ($got, $in_time, $recv_at) = split / /,
	  TxmqTest::wait_result($waiter, $m, 60);
	return undef unless $got eq '1' && $in_time eq 'true';
	return ($recv_at - $sent_at) * 1000;
}

my (@latency, @late);
my $per_round = int($waits / $rounds);
for my $round (1 .. $rounds)
{
	sql("CALL churn('c2_${round}_', " . int($churn / $rounds) . ")");
	sql("CALL use_kept('k2_', $keep)");
	for my $i (($round - 1) * $per_round + 1 .. $round * $per_round)
	{
		my $ms = woken("k2_$i");
		defined $ms ? push(@latency, $ms) : push(@late, "k2_$i");
	}
}
is(scalar(@late), 0,
	"every kept queue waited on ($per_round per round) was woken at commit by its condition variable")
  or diag("not woken: @late");
@latency = sort { $a <=> $b } @latency;
diag(sprintf('wake-up latency over %d kept queues (%d slots, %d kept, %d churned): '
	  . 'p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d within 5 ms',
	scalar(@latency), $max, $keep, $churn,
	$latency[ int(@latency / 2) ], $latency[ int(@latency * 0.99) ],
	$latency[-1], scalar(grep { $_ <= 5 } @latency))) if @latency;
is(sql(qq{
	SELECT count(*) FROM txmq.stats
	 WHERE topic LIKE 'k2\\_%' AND sent IS NOT NULL AND delivered IS NOT NULL
	   AND acked BETWEEN 0 AND $rounds + 1 AND counters_since <= now()}),
	$keep, "all $keep kept queues have counters, since their slot's last build");
is(sql(q{SELECT needed <= capacity FROM txmq.stats
	WHERE setting = 'txmq.max_subscriptions'}), 't',
	'evicting idle slots was enough: never were all held');
unlike(slurp_file($node->logfile), qr/subscription slots are held/,
	'and the log says nothing of running out');
$waiter->quit;
$node->stop;

# ---- 3. every slot held ----
# 16 slots: the worker's and 15 waiters'; a 16th waiter finds none
my $full = TxmqTest::node('full', conf => "txmq.max_subscriptions = 16\n");
$full->safe_psql('postgres', q{
	SELECT txmq.create_queue('w' || g, notify => false) FROM generate_series(1, 16) g});
TxmqTest::poll($full, 'postgres',
	q{SELECT worker_running FROM txmq.stats WHERE topic = 'w1'}, 't',
	'the worker runs');
my (@bg, @m);
for my $i (1 .. 16)
{
	my $bg = $full->background_psql('postgres');
	push @bg, $bg;
	push @m, TxmqTest::start_query($bg, qq{
		SELECT count(txmq.ack('w$i', 'w$i', msg_id))
		  FROM txmq.receive('w$i', 'w$i', wait => '60 s');});
	TxmqTest::poll($full, 'postgres', qq{
		SELECT count(*) FROM pg_stat_activity
		 WHERE wait_event_type = 'Extension' AND backend_type = 'client backend'},
		$i, "waiter $i sleeps") if $i < 16;
}
TxmqTest::poll($full, 'postgres', q{
	SELECT concat_ws(' ', capacity, in_use, needed) FROM txmq.stats
	 WHERE setting = 'txmq.max_subscriptions'}, '16 16 17',
	'txmq.stats: all 16 slots held, 17 needed');
like(slurp_file($full->logfile),
	qr/WARNING:  txmq: all 16 subscription slots are held, 17 are needed/,
	'the log says so, with the number needed');
$full->safe_psql('postgres', q{SELECT txmq.send('w16', '{}')});
is(TxmqTest::wait_result($bg[15], $m[15], 30), '1',
	'the waiter without a slot still gets its message (it polls)');
$full->safe_psql('postgres',
	q{SELECT txmq.send('w' || g, '{}') FROM generate_series(1, 15) g});
is(join(',', map { TxmqTest::wait_result($bg[$_], $m[$_], 30) } 0 .. 14),
	join(',', ('1') x 15), 'the other waiters get theirs');
TxmqTest::poll($full, 'postgres', q{
	SELECT in_use FROM txmq.stats WHERE setting = 'txmq.max_subscriptions'},
	'1', 'and let go of their slots: only the worker holds one');
# now w16 gets a slot: it is woken at commit, long before its poll interval
TxmqTest::wait_result($bg[15], TxmqTest::start_query($bg[15],
	q{SET txmq.poll_interval = '60s';}));
my $m16 = TxmqTest::start_query($bg[15], q{
	SELECT count(*) || ' ' || (clock_timestamp() - statement_timestamp() < '25 s')
	  FROM txmq.receive('w16', 'w16', wait => '30 s');});
TxmqTest::poll($full, 'postgres', q{
	SELECT count(*) FROM pg_stat_activity
	 WHERE wait_event_type = 'Extension' AND backend_type = 'client backend'},
	'1', 'w16 waits again');
$full->safe_psql('postgres', q{SELECT txmq.send('w16', '{}')});
is(TxmqTest::wait_result($bg[15], $m16, 60), '1 true',
	'with a slot again, w16 is woken at commit');
$_->quit for @bg;
$full->stop;

done_testing();
