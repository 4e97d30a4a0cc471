# core_long_poll: receive(wait => ...) measured.
#
#  1. wake-up latency: a sender commits 1000 messages one at a time (10 ms
#     apart) while a consumer long-polls; latency = time the consumer's
#     receive returned - time the sender's COMMIT returned, both read with
#     clock_timestamp() in the two backends (server side, so psql and the
#     network are not part of it).  p50 / p99 printed, p99 < 50 ms asserted.
#  2. two waiters, one message: exactly one gets it, the other keeps
#     waiting and gets the next one; with a short wait it returns empty.
#  3. 50 idle waiters for 10 s: CPU (utime + stime of their backends from
#     /proc/<pid>/stat) printed, < 5 % of one core asserted; then 50
#     messages wake all of them, one message each.
#  4. a node without shared_preload_libraries: receive with wait still
#     works, by polling every txmq.poll_interval.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use TxmqTest;

sub stat_ticks
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or die "cannot read /proc/$pid/stat: $!";
	my $line = <$fh>;
	close $fh;
	$line =~ s/^.*\) //;    # fields after "(comm)"; utime, stime are 14, 15
	my @f = split / /, $line;
	return $f[11] + $f[12];
}

my $node = TxmqTest::node('main');

# ---- 1. wake-up latency ----
$node->safe_psql('postgres', q{
	SELECT txmq.create_queue('core_lp');
	CREATE TABLE core_lp_sent (i int PRIMARY KEY, t timestamptz NOT NULL);
	CREATE TABLE core_lp_recv (i int PRIMARY KEY, t timestamptz NOT NULL,
							   waited interval NOT NULL);
	CREATE PROCEDURE core_lp_consumer(n int) LANGUAGE plpgsql AS $$
	DECLARE
		r record;
		got int := 0;
		t0 timestamptz;
	BEGIN
		WHILE got < n LOOP
			t0 := clock_timestamp();
			FOR r IN SELECT * FROM txmq.receive('core_lp', 'core_lp', 100,
												wait => '10 s') LOOP
				INSERT INTO core_lp_recv
					VALUES ((r.payload->>'i')::int, clock_timestamp(),
							clock_timestamp() - t0);
				PERFORM txmq.ack('core_lp', 'core_lp', r.msg_id);
				got := got + 1;
			END LOOP;
			COMMIT;
		END LOOP;
	END $$;
	CREATE PROCEDURE core_lp_producer(n int) LANGUAGE plpgsql AS $$
	BEGIN
		FOR i IN 1 .. n LOOP
			PERFORM pg_sleep(0.01);
			PERFORM txmq.send('core_lp', jsonb_build_object('i', i));
			COMMIT;
			INSERT INTO core_lp_sent VALUES (i, clock_timestamp());
			COMMIT;
		END LOOP;
	END $$;
});

my $n = 1000;
my $consumer = $node->background_psql('postgres');
my $cm = TxmqTest::start_query($consumer, "CALL core_lp_consumer($n);");
sleep 0.3;
$node->safe_psql('postgres', "CALL core_lp_producer($n);");
TxmqTest::wait_result($consumer, $cm, 120);

my ($count, $p50, $p99, $max, $slept) = split /\|/, $node->safe_psql('postgres', q{
	SELECT count(*),
		   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 3),
		   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 3),
		   round(max(ms)::numeric, 3),
		   count(*) FILTER (WHERE waited > '5 ms')
	  FROM (SELECT extract(epoch FROM r.t - s.t) * 1000 AS ms, r.waited
			  FROM core_lp_sent s JOIN core_lp_recv r USING (i)) x});
is($count, $n, "consumer received all $n messages");
diag("wake-up latency over $count messages: p50 $p50 ms, p99 $p99 ms, max $max ms"
	  . " ($slept receives slept > 5 ms before their message)");
# the consumer really was asleep most of the time, not handed a backlog
cmp_ok($slept, '>', $n / 2, 'most receives were waiting when the commit came');
cmp_ok($p99, '<', 50, 'p99 wake-up latency < 50 ms');
# (core_lp_recv's primary key: a message received twice would have failed
# the consumer)
$consumer->quit;

# ---- 2. two waiters, one message ----
$node->safe_psql('postgres', q{SELECT txmq.create_queue('core_lp2')});
my @w = map { $node->background_psql('postgres') } 1 .. 2;
my $recv10 = q{SELECT coalesce(string_agg(payload->>'m', ','), '-')
	FROM txmq.receive('core_lp2', 'core_lp2', 10, wait => '10 s');};
my @m = map { TxmqTest::start_query($_, $recv10) } @w;
sleep 0.5;
my $t0 = time;
$node->safe_psql('postgres', q{SELECT txmq.send('core_lp2', '{"m": "one"}')});
my $first;
until (defined $first)
{
	for my $k (0, 1) { $first = $k if TxmqTest::finished($w[$k], $m[$k]); }
	die 'no waiter woke' if time - $t0 > 5;
	sleep 0.002;
}
my $first_ms = (time - $t0) * 1000;
my $other = 1 - $first;
is(TxmqTest::wait_result($w[$first], $m[$first]), 'one', 'one waiter got the message');
cmp_ok($first_ms, '<', 1000, sprintf('... woken at once (%.1f ms)', $first_ms));
sleep 0.5;
ok(!TxmqTest::finished($w[$other], $m[$other]), 'the other waiter is still waiting');
$node->safe_psql('postgres', q{SELECT txmq.send('core_lp2', '{"m": "two"}')});
is(TxmqTest::wait_result($w[$other], $m[$other], 5), 'two',
	'the other waiter got the second message');

# short waits: one message, one gets it, the other returns empty after 2 s
my $recv2 = q{SELECT coalesce(string_agg(payload->>'m', ','), '-')
	FROM txmq.receive('core_lp2', 'core_lp2', 10, wait => '2 s');};
@m = map { TxmqTest::start_query($_, $recv2) } @w;
sleep 0.3;
$t0 = time;
$node->safe_psql('postgres', q{SELECT txmq.send('core_lp2', '{"m": "three"}')});
my @res = map { TxmqTest::wait_result($w[$_], $m[$_], 10) } 0, 1;
my $elapsed = time - $t0;
is(join(' ', sort @res), '- three', 'one waiter got it, the other nothing');
cmp_ok($elapsed, '>=', 1.5, 'the empty one waited out its wait');
$_->quit for @w;

# ---- 3. 50 idle waiters ----
$node->safe_psql('postgres', q{SELECT txmq.create_queue('core_lp_idle')});
my $nw = 50;
my @idle = map { $node->background_psql('postgres') } 1 .. $nw;
my @im = map {
	TxmqTest::start_query($_, q{SELECT count(*) FROM txmq.receive('core_lp_idle',
		'core_lp_idle', wait => '60 s');})
} @idle;
TxmqTest::poll($node, 'postgres',
	q{SELECT count(*) FROM pg_stat_activity
	   WHERE query LIKE '%txmq.receive(''core_lp_idle''%'
		 AND state = 'active' AND wait_event_type = 'Extension'},
	$nw, "$nw waiters are asleep");
my @pids = split /\n/, $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity
	   WHERE query LIKE '%txmq.receive(''core_lp_idle''%' AND state = 'active'});
is(scalar @pids, $nw, "found the $nw backends");
my $ticks_per_s = `getconf CLK_TCK` + 0 || 100;
my $before = 0;
$before += stat_ticks($_) for @pids;
my $tb = time;
sleep 10;
my $after = 0;
$after += stat_ticks($_) for @pids;
my $secs = time - $tb;
my $cpu_pct = ($after - $before) / $ticks_per_s / $secs * 100;
diag(sprintf('%d idle waiters over %.1f s used %d ticks = %.2f %% of one core',
		$nw, $secs, $after - $before, $cpu_pct));
cmp_ok($cpu_pct, '<', 5, "$nw idle waiters use < 5 % of one core");
ok(!(grep { TxmqTest::finished($idle[$_], $im[$_]) } 0 .. $nw - 1),
	'all waiters are still waiting');
$node->safe_psql('postgres',
	"SELECT count(*) FROM txmq.send_batch('core_lp_idle', array_fill('{}'::jsonb, ARRAY[$nw]))");
my @got = map { TxmqTest::wait_result($idle[$_], $im[$_], 10) } 0 .. $nw - 1;
is(join(',', @got), join(',', ('1') x $nw), "$nw messages woke $nw waiters, one each");
$_->quit for @idle;
$node->stop;

# ---- 4. without shared_preload_libraries ----
my $plain = TxmqTest::node('plain', conf => "shared_preload_libraries = ''\n");
is($plain->safe_psql('postgres', 'SHOW shared_preload_libraries'), '',
	'node without shared_preload_libraries');
is($plain->safe_psql('postgres', 'SHOW txmq.poll_interval'), '50ms',
	'poll interval of the test settings');
$plain->safe_psql('postgres', q{SELECT txmq.create_queue('core_lp_plain')});
my $pw = $plain->background_psql('postgres');
my $pm = TxmqTest::start_query($pw, q{SELECT payload->>'m', attempt,
	clock_timestamp() - statement_timestamp() < '5 s'
	FROM txmq.receive('core_lp_plain', 'core_lp_plain', wait => '10 s');});
sleep 0.5;
$t0 = time;
$plain->safe_psql('postgres', q{SELECT txmq.send('core_lp_plain', '{"m": "polled"}')});
is(TxmqTest::wait_result($pw, $pm, 15), 'polled|1|t', 'a waiting receive gets the message by polling');
my $poll_ms = (time - $t0) * 1000;
diag(sprintf('without preload: message received %.1f ms after the commit', $poll_ms));
cmp_ok($poll_ms, '<', 2000, 'within a few poll intervals');
$pm = TxmqTest::start_query($pw, q{SELECT count(*), clock_timestamp() - statement_timestamp() >= '290 ms'
	FROM txmq.receive('core_lp_plain', 'core_lp_plain', wait => '300 ms');});
is(TxmqTest::wait_result($pw, $pm, 10), '0|t', 'an empty wait returns empty after the wait');
$pw->quit;
$plain->stop;

done_testing();
