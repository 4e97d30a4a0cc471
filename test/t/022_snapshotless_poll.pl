# snapshotless_poll: txmq.poll and txmq.wait hold no snapshot while they
# sleep, unlike receive(wait => ...).
#
#  1. While a consumer waits in txmq.poll, its backend_xmin and backend_xid
#     in pg_stat_activity stay NULL for the whole wait, and VACUUM of an
#     unrelated table removes the dead tuples made after the wait began;
#     the same with receive(wait => ...) shows an xmin and leaves them (the
#     control that shows the measurement can fail).
#  2. Wake-up latency of the three long polls side by side: a sender
#     commits 300 messages one at a time (10 ms apart) to each; latency =
#     the consumer's clock_timestamp() when it had the message - the
#     sender's after its COMMIT.  p50 / p99 printed; asserted only that
#     every wait was ended by a commit (well under the 10 s wait), and
#     that most of them slept.
#  3. A message another consumer holds is not ready for txmq.wait; that
#     consumer rolling back wakes it.
#  4. statement_timeout and pg_cancel_backend end a wait; nothing is left
#     taken.
#  5. A consumer that disconnects mid-wait (with client_connection_check_
#     interval, which ends its backend without waiting out the wait)
#     leaves nothing behind: its backend goes, the next message goes to
#     another consumer on its first attempt.
#  6. Without shared_preload_libraries, txmq.poll still works, by polling.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use TxmqTest;

my $node = TxmqTest::node('main');
sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
	SELECT txmq.create_queue('sp');
	CREATE TABLE bystander (i int);
});

# the pid of the one backend running a query that starts with $prefix,
# once it sleeps
sub sleeper
{
	my ($prefix) = @_;
	my $q = qq{SELECT pid FROM pg_stat_activity
		WHERE query LIKE '$prefix%' AND state = 'active'
		  AND wait_event_type = 'Extension'};
	$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($q) s")
	  or die "no backend sleeping in $prefix";
	return sql($q);
}

# VACUUM VERBOSE bystander after making 1000 dead tuples in it: "removed
# not-removable"
sub dead_tuples_removed
{
	sql('INSERT INTO bystander SELECT generate_series(1, 1000)');
	sql('DELETE FROM bystander');
	my ($ret, $out, $err) = $node->psql('postgres', 'VACUUM (VERBOSE) bystander');
	$err =~ /tuples: (\d+) removed, \d+ remain, (\d+) are dead but not yet removable/
	  or die "no tuple counts in VACUUM VERBOSE: $err";
	return "$1 $2";
}

# Sample the sleeping backend $pid 20 times over 5 s: how many samples saw
# an xmin, an xid, and it asleep.
sub sample
{
	my ($pid) = @_;
	my ($xmin, $xid, $asleep) = (0, 0, 0);
	for (1 .. 20)
	{
		my ($x, $i, $w) = split /\|/, sql(qq{
			SELECT backend_xmin IS NOT NULL, backend_xid IS NOT NULL,
				   wait_event_type = 'Extension'
			  FROM pg_stat_activity WHERE pid = $pid});
		$xmin++ if $x eq 't';
		$xid++ if $i eq 't';
		$asleep++ if $w eq 't';
		sleep 0.25;
	}
	return "$xmin $xid $asleep";
}

# ---- 1. no snapshot while the wait sleeps ----
my $bg = $node->background_psql('postgres');
my $m = TxmqTest::start_query($bg,
	q{CALL txmq.poll('sp', 'sp', 1, wait => '20 s');});
my $pid = sleeper('CALL txmq.poll');
is(sample($pid), '0 0 20', 'txmq.poll: no xmin, no xid in 20 samples over 5 s, asleep in all');
is(dead_tuples_removed(), '1000 0',
	'txmq.poll: VACUUM removes the dead tuples made during the wait');
is(sample($pid), '0 0 20', '... still none after 10 s of the 20 s wait');
my $t0 = time;
sql(q{SELECT txmq.send('sp', '{"n": 1}')});
like(TxmqTest::wait_result($bg, $m, 15), qr/n\\"\\": 1\}/,
	'the wait returns the message sent');
cmp_ok(time - $t0, '<', 5, '... when it was sent, not at the end of the wait');
sql(q{SELECT txmq.purge('sp')});

$m = TxmqTest::start_query($bg, q{CALL txmq.wait('sp', 'sp', '20 s');});
$pid = sleeper('CALL txmq.wait');
is(sample($pid), '0 0 20', 'txmq.wait: no xmin, no xid, asleep');
is(dead_tuples_removed(), '1000 0', 'txmq.wait: VACUUM removes them');
sql(q{SELECT txmq.send('sp', '{"n": 2}')});
is(TxmqTest::wait_result($bg, $m, 15), 't', 'txmq.wait says a message is ready');
is(sql(q{SELECT count(*) FROM txmq.msg WHERE attempt = 0 AND NOT leased}), '1',
	'... and left it there');
sql(q{SELECT txmq.purge('sp')});

# the control: receive(wait => ...) holds its statement's snapshot
$m = TxmqTest::start_query($bg,
	q{SELECT count(*) FROM txmq.receive('sp', 'sp', 1, wait => '20 s');});
$pid = sleeper('SELECT count(*) FROM txmq.receive');
my ($xmin) = split / /, sample($pid);
is($xmin, 20, 'receive(wait => ...): an xmin in every sample');
like(dead_tuples_removed(), qr/^0 1000$/,
	'receive(wait => ...): VACUUM cannot remove them');
sql(q{SELECT txmq.send('sp', '{"n": 3}')});
is(TxmqTest::wait_result($bg, $m, 15), '1', 'receive got the message');
$bg->quit;

# ---- 2. wake-up latency, side by side ----
sql(q{
	SELECT txmq.create_queue('sp_' || mode) FROM unnest('{receive,poll,wait}'::text[]) mode;
	CREATE TABLE sp_sent (mode text, i int, t timestamptz, PRIMARY KEY (mode, i));
	CREATE TABLE sp_recv (mode text, i int, t timestamptz, waited interval,
						  PRIMARY KEY (mode, i));
	CREATE PROCEDURE sp_producer(mode text, n int) LANGUAGE plpgsql AS $$
	BEGIN
		FOR i IN 1 .. n LOOP
			PERFORM pg_sleep(0.01);
			PERFORM txmq.send('sp_' || mode, jsonb_build_object('i', i));
			COMMIT;
			INSERT INTO sp_sent VALUES (mode, i, clock_timestamp());
			COMMIT;
		END LOOP;
	END $$;
	-- each consumer: long poll, record and ack what came, commit
	CREATE PROCEDURE sp_got(mode text, d txmq.delivery, t0 timestamptz)
	LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO sp_recv VALUES (mode, (d.payload->>'i')::int,
									clock_timestamp(), clock_timestamp() - t0);
		PERFORM txmq.ack('sp_' || mode, 'sp_' || mode, d.msg_id);
	END $$;
	CREATE PROCEDURE sp_consumer_receive(n int) LANGUAGE plpgsql AS $$
	DECLARE
		d txmq.delivery;
		t0 timestamptz;
	BEGIN
		WHILE (SELECT count(*) FROM sp_recv WHERE mode = 'receive') < n LOOP
			t0 := clock_timestamp();
			FOR d IN SELECT * FROM txmq.receive('sp_receive', 'sp_receive', 100,
												wait => '10 s') LOOP
				CALL sp_got('receive', d, t0);
			END LOOP;
			COMMIT;
		END LOOP;
	END $$;
	CREATE PROCEDURE sp_consumer_poll(n int) LANGUAGE plpgsql AS $$
	DECLARE
		msgs txmq.delivery[];
		d txmq.delivery;
		t0 timestamptz;
	BEGIN
		WHILE (SELECT count(*) FROM sp_recv WHERE mode = 'poll') < n LOOP
			t0 := clock_timestamp();
			CALL txmq.poll('sp_poll', 'sp_poll', 100, NULL, '10 s', msgs);
			FOREACH d IN ARRAY msgs LOOP
				CALL sp_got('poll', d, t0);
			END LOOP;
			COMMIT;
		END LOOP;
	END $$;
	CREATE PROCEDURE sp_consumer_wait(n int) LANGUAGE plpgsql AS $$
	DECLARE
		ready boolean;
		d txmq.delivery;
		t0 timestamptz;
	BEGIN
		WHILE (SELECT count(*) FROM sp_recv WHERE mode = 'wait') < n LOOP
			t0 := clock_timestamp();
			CALL txmq.wait('sp_wait', 'sp_wait', '10 s', ready);
			FOR d IN SELECT * FROM txmq.receive('sp_wait', 'sp_wait', 100) LOOP
				CALL sp_got('wait', d, t0);
			END LOOP;
			COMMIT;
		END LOOP;
	END $$;
});

my $n = 300;
for my $mode (qw(receive poll wait))
{
	my $consumer = $node->background_psql('postgres');
	my $cm = TxmqTest::start_query($consumer, "CALL sp_consumer_$mode($n);");
	sleep 0.3;
	sql("CALL sp_producer('$mode', $n)");
	TxmqTest::wait_result($consumer, $cm, 120);
	$consumer->quit;
	my ($count, $p50, $p99, $max, $slept) = split /\|/, sql(qq{
		SELECT count(*),
			   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 3),
			   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 3),
			   round(max(ms)::numeric, 3),
			   count(*) FILTER (WHERE waited > '5 ms')
		  FROM (SELECT extract(epoch FROM r.t - s.t) * 1000 AS ms, r.waited
				  FROM sp_sent s JOIN sp_recv r USING (mode, i)
				 WHERE mode = '$mode') x});
	is($count, $n, "$mode: the consumer received all $n messages");
	diag("$mode: wake-up latency over $count messages: p50 $p50 ms, "
		  . "p99 $p99 ms, max $max ms ($slept slept > 5 ms before their message)");
	cmp_ok($slept, '>', $n / 2, "$mode: most long polls were asleep when the commit came");
	cmp_ok($max, '<', 5000, "$mode: every wait was ended by a commit, none by its 10 s timeout");
}

# ---- 3. a message another consumer holds ----
sql(q{SELECT txmq.send('sp', '{"n": 4}')});
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN');
is($holder->query_safe(q{SELECT count(*) FROM txmq.receive('sp', 'sp')}), '1',
	'a transactional consumer holds the message');
is(sql(q{CALL txmq.wait('sp', 'sp', '300 ms')}), 'f',
	'txmq.wait: a message another consumer holds is not ready');
my $waiter = $node->background_psql('postgres');
$m = TxmqTest::start_query($waiter, q{CALL txmq.wait('sp', 'sp', '20 s');});
sleeper('CALL txmq.wait');
$t0 = time;
$holder->query_safe('ROLLBACK');
is(TxmqTest::wait_result($waiter, $m, 15), 't',
	'its rollback makes it ready for the waiter');
cmp_ok(time - $t0, '<', 5, '... at once, not at the end of the wait');
$holder->quit;
$waiter->quit;
sql(q{SELECT txmq.purge('sp')});

# ---- 4. statement_timeout, pg_cancel_backend ----
for my $proc (q{txmq.wait('sp', 'sp', '20 s')},
	q{txmq.poll('sp', 'sp', wait => '20 s')})
{
	$t0 = time;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '300ms'; CALL $proc;");
	like($err, qr/canceling statement due to statement timeout/,
		"statement_timeout ends CALL $proc");
	cmp_ok(time - $t0, '<', 10, '... long before the wait would');

	my $c = $node->background_psql('postgres', on_error_stop => 0);
	$m = TxmqTest::start_query($c, "CALL $proc;");
	$pid = sleeper('CALL txmq.');
	sql("SELECT pg_cancel_backend($pid)");
	TxmqTest::wait_result($c, $m, 15);
	like($c->{stderr}, qr/canceling statement due to user request/,
		"pg_cancel_backend ends CALL $proc");
	$c->{stdout} = $c->{stderr} = '';
	is($c->query_safe('SELECT 1'), '1', '... and the session goes on');
	$c->quit;
}

# ---- 5. a consumer that disconnects mid-wait ----
my $gone = $node->background_psql('postgres');
$gone->query_safe(q{SET client_connection_check_interval = '100ms'});
TxmqTest::start_query($gone, q{CALL txmq.poll('sp', 'sp', 10, wait => '20 s');});
$pid = sleeper('CALL txmq.poll');
$t0 = time;
$gone->{run}->kill_kill;
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
  or die 'the backend of the disconnected consumer stays';
my $left = time - $t0;
diag(sprintf('the backend of a consumer that disconnected ended after %.2f s', $left));
cmp_ok($left, '<', 15, 'a disconnected consumer\'s backend ends before its wait would');
sql(q{SELECT txmq.send('sp', '{"n": 5}')});
is(sql(q{SELECT string_agg(payload->>'n' || ' attempt ' || attempt, ',')
		 FROM txmq.receive('sp', 'sp', 10)}), '5 attempt 1',
	'the next message goes to the next consumer, on its first attempt');
is(sql(q{SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		  WHERE a.query LIKE 'CALL txmq.%'}), '0', 'no locks are left');

# ---- 6. without preloading, by polling ----
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$plain->append_conf('postgresql.conf', "txmq.poll_interval = 50ms\n");
$plain->start;
$plain->safe_psql('postgres',
	q{CREATE EXTENSION txmq; SELECT txmq.create_queue('np')});
my $np = $plain->background_psql('postgres');
$m = TxmqTest::start_query($np,
	q{CALL txmq.poll('np', 'np', 1, wait => '20 s');});
$plain->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE query LIKE 'CALL txmq.poll%' AND wait_event_type = 'Extension'})
  or die 'no poll waiting on the plain node';
$t0 = time;
$plain->safe_psql('postgres', q{SELECT txmq.send('np', '{"n": 6}')});
like(TxmqTest::wait_result($np, $m, 15), qr/n\\"\\": 6\}/,
	'without preloading, txmq.poll gets a message sent during its wait');
cmp_ok(time - $t0, '<', 5, '... by polling, long before the wait ends');
$np->quit;
$plain->stop;

done_testing();
