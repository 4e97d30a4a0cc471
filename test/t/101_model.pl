# 101_model: a randomized test checked against a model.
#
# Producers (send, send_batch, delayed, ordered, half messages resolved by
# the producer or by check-back, commit, rollback or unknown) and consumers
# (transactional and lease mode: ack, nack, reject, extend_lease, expiry,
# redrive) run for a while (test/model/model.c), every effect recorded in
# the transaction of the txmq call it describes; meanwhile sessions are
# terminated and the server is crashed (kill -9 of the postmaster) at
# random.  Then the queues are drained and every guarantee of SPEC §4 is
# checked per subscription: nothing committed lost, nothing rolled back
# delivered, no transactional effect twice, each message settled once,
# ordered keys in order, attempts within max_deliveries and never going
# back, stats consistent, and no consumer saw an error (a deadlock, say).
#
#   TXMQ_MODEL_SEED     the seed (default: from the clock); printed, and a
#                       failure's message names it
#   TXMQ_MODEL_SECONDS  how long the load runs (default 90)
#   TXMQ_MODEL_CRASHES  postmaster crashes during the load (default 2)
#   TXMQ_MODEL_INJECT   corrupt the test's own records before the checks,
#                       to see a check fail: lost, nowhere, twice, settled,
#                       order, attempts, back, stats or errors
#
# The same seed makes the same random choices (operations, pauses, which
# session is terminated, when the server crashes); the interleavings still
# depend on timing.
use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TxmqTest;

sub option
{
	my ($name, $default) = @_;
	return ($ENV{$name} // '') ne '' ? $ENV{$name} : $default;
}
my $seed = option('TXMQ_MODEL_SEED', int(time() * 1000) % 1_000_000_007);
my $seconds = option('TXMQ_MODEL_SECONDS', 90);
my $crashes = option('TXMQ_MODEL_CRASHES', 2);
my $inject = option('TXMQ_MODEL_INJECT', '');
diag("model test: TXMQ_MODEL_SEED=$seed TXMQ_MODEL_SECONDS=$seconds"
	  . " TXMQ_MODEL_CRASHES=$crashes");
srand($seed);

# ---- the driver ----
my $out = "${PostgreSQL::Test::Utils::tmp_check}/model";
mkdir $out;
my $src = dirname(__FILE__) . '/../model/model.c';
my $pg_config = $ENV{PG_CONFIG} // 'pg_config';
chomp(my $inc = `$pg_config --includedir`);
chomp(my $lib = `$pg_config --libdir`);
my ($cc_out, $cc_err);
ok( IPC::Run::run(
		[ 'cc', '-O1', '-Wall', '-Werror', "-I$inc", $src, "-L$lib", '-lpq',
		  '-o', "$out/model" ],
		'>', \$cc_out, '2>', \$cc_err),
	'the model driver compiles')
  or diag($cc_err);

# ---- the cluster, the topics, the model's tables ----
my $node = TxmqTest::node('model',
	conf => "max_connections = 50\nlog_min_messages = warning\n");
$node->safe_psql('postgres', q{
CREATE ROLE model_app LOGIN;
GRANT EXECUTE ON FUNCTION txmq.create_topic, txmq.create_queue,
	txmq.create_subscription TO model_app;
CREATE SCHEMA model AUTHORIZATION model_app;
SET ROLE model_app;
-- what committed, each written by the transaction of its txmq call
CREATE TABLE model.sent (msg_id bigint, topic text, key text);
CREATE TABLE model.half (msg_id bigint, intent text);  -- and its producer's
CREATE TABLE model.resolved (msg_id bigint, decision text);
CREATE TABLE model.delivery (sub text, msg_id bigint, attempt int, seq bigint);
CREATE TABLE model.effect (sub text, msg_id bigint, seq bigint);
CREATE TABLE model.settled (sub text, msg_id bigint, how text);
CREATE TABLE model.redriven (sub text, msg_id bigint, at timestamptz);
-- what the consumers were given, also in transactions that aborted
CREATE TABLE model.seen (sub text, msg_id bigint, attempt int,
	epoch timestamptz, at timestamptz);
CREATE SEQUENCE model.seq;
-- check-back answers as the producer meant to
CREATE FUNCTION model.check(m txmq.message) RETURNS txmq.check_result
LANGUAGE sql SET search_path = pg_catalog AS $$
	SELECT CASE (SELECT intent FROM model.half WHERE msg_id = m.msg_id)
	WHEN 'commit' THEN 'commit' WHEN 'rollback' THEN 'rollback'
	ELSE 'unknown' END::txmq.check_result $$;
SELECT txmq.create_topic('mt', check_function => 'model.check(txmq.message)',
	check_after => '300 ms', check_interval => '200 ms', max_checks => 3);
SELECT txmq.create_subscription('mt', 'a1', max_deliveries => 3,
	backoff_base => '20 ms', backoff_max => '200 ms');
SELECT txmq.create_subscription('mt', 'a2', max_deliveries => 3,
	backoff_base => '20 ms', backoff_max => '200 ms');
SELECT txmq.create_queue('mo', max_deliveries => 3, backoff_base => '20 ms',
	backoff_max => '200 ms', ordered => true);
-- the drain, after the load: a transactional consumer of every
-- subscription, until nothing is ready, delayed, leased or half
CREATE PROCEDURE model.drain() LANGUAGE plpgsql AS $$
DECLARE
	s record;
	r record;
	got int;
	quiet int := 0;
	deadline timestamptz := clock_timestamp() + interval '3 min';
BEGIN
	WHILE quiet < 3 LOOP
		got := 0;
		FOR s IN VALUES ('mt', 'a1'), ('mt', 'a2'), ('mo', 'mo') LOOP
			FOR r IN SELECT msg_id FROM txmq.receive(s.column1, s.column2, 100)
			LOOP
				INSERT INTO model.effect VALUES (s.column2, r.msg_id,
					nextval('model.seq'));
				INSERT INTO model.settled SELECT s.column2, r.msg_id, 'ack'
					WHERE txmq.ack(s.column1, s.column2, r.msg_id);
				got := got + 1;
			END LOOP;
			COMMIT;
		END LOOP;
		IF got = 0 AND NOT EXISTS (SELECT FROM txmq.stats
				WHERE topic IN ('mt', 'mo')
				  AND ready + delayed + in_flight + half_pending > 0) THEN
			quiet := quiet + 1;
		ELSE
			quiet := 0;
		END IF;
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'model: the drain did not end';
		END IF;
		PERFORM pg_sleep(0.2);
	END LOOP;
END $$;
});

# ---- the load, with sessions terminated and the server crashed ----
sub crash
{
	my $pm = $node->{_pid};
	my @children = grep { /^\d+$/ } map { s/\s+//gr }
	  split /\n/, `ps -o pid= --ppid $pm`;
	$node->kill9;
	my $t0 = time;
	usleep(50_000) while (grep { kill(0, $_) } @children) && time - $t0 < 60;
	$node->start;
}

my $conninfo = $node->connstr('postgres') . ' user=model_app';
my ($drv_out, $drv_err);
my $driver = IPC::Run::start(
	[ "$out/model", $conninfo, $seed, $seconds, $out ],
	'>', \$drv_out, '2>', \$drv_err);
my $t0 = time;
my @crash_at = sort { $a <=> $b } map { $seconds * (0.15 + rand(0.7)) } 1 .. $crashes;
my ($terminated, $crashed) = (0, 0);
while (time - $t0 < $seconds)
{
	usleep(int(300_000 + rand(1_200_000)));
	if (@crash_at && time - $t0 >= $crash_at[0])
	{
		shift @crash_at;
		crash();
		$crashed++;
		next;
	}
	my $k = int(rand(8));
	$terminated += $node->safe_psql('postgres', qq{
		SELECT count(pg_terminate_backend(pid)) FROM (
			SELECT pid FROM pg_stat_activity WHERE usename = 'model_app'
			ORDER BY pid OFFSET $k LIMIT 1) p});
}
ok($driver->finish, 'the driver ran to the end') or diag($drv_err);
diag("model test: $terminated sessions terminated, $crashed crashes");
is($crashed, $crashes, 'the server was crashed as planned');

# ---- drain, then gather what the consumers saw ----
$node->safe_psql('postgres', 'CALL model.drain()');
opendir(my $dh, $out) or die "cannot read $out: $!";
for my $f (sort grep { /^seen\.\d+$/ } readdir $dh)
{
	$node->safe_psql('postgres', "COPY model.seen FROM '$out/$f'");
}
closedir $dh;
my @errors = map { slurp_file("$out/errors.$_") } 0 .. 7;

# ---- the test's own bookkeeping corrupted on purpose: a check must fail ----
my %inject = (
	lost     => q{INSERT INTO model.sent SELECT max(msg_id) + 1000, 'mt' FROM model.sent},
	nowhere  => q{INSERT INTO model.seen SELECT 'a1', -1, 1, now(), now()},
	twice    => q{INSERT INTO model.effect SELECT sub, msg_id, seq FROM model.effect LIMIT 1},
	settled  => q{INSERT INTO model.settled SELECT sub, msg_id, how FROM model.settled WHERE how = 'ack' LIMIT 1},
	order    => q{UPDATE model.effect SET seq = -seq WHERE sub = 'mo'
		AND msg_id = (SELECT max(msg_id) FROM model.effect WHERE sub = 'mo')},
	attempts => q{INSERT INTO model.seen SELECT sub, msg_id, 4, epoch, at FROM model.seen LIMIT 1},
	back     => q{INSERT INTO model.seen SELECT sub, msg_id, 1, epoch, at + interval '1 hour'
		FROM model.seen WHERE attempt = 2 LIMIT 1},
	stats    => q{DELETE FROM model.settled WHERE ctid = (SELECT ctid FROM model.settled
		WHERE how = 'ack' LIMIT 1)},
	errors   => q{SELECT 1},
);
if ($inject)
{
	die "unknown TXMQ_MODEL_INJECT=$inject" unless $inject{$inject};
	$node->safe_psql('postgres', $inject{$inject});
	push @errors, "injected\n" if $inject eq 'errors';
	diag("model test: injected '$inject'");
}

# ---- the checks ----
my $committed = q{(
	SELECT msg_id, topic FROM model.sent
	UNION SELECT msg_id, 'mt' FROM model.half WHERE intent = 'commit')};
my $expected = qq{(
	SELECT c.msg_id, s.sub FROM $committed c
	JOIN (VALUES ('mt', 'a1'), ('mt', 'a2'), ('mo', 'mo')) s (topic, sub)
	USING (topic))};
my $dead = q{(
	SELECT 'a1' AS sub, msg_id, attempts FROM txmq.dead_letters('mt', 'a1')
	UNION ALL SELECT 'a2', msg_id, attempts FROM txmq.dead_letters('mt', 'a2')
	UNION ALL SELECT 'mo', msg_id, attempts FROM txmq.dead_letters('mo', 'mo'))};
my $acked = q{(SELECT DISTINCT sub, msg_id FROM model.settled WHERE how = 'ack')};

# check($what, $sql): $sql lists the violations; none is the pass
sub check
{
	my ($what, $sql) = @_;
	my $found = $node->safe_psql('postgres',
		"SELECT count(*) || coalesce(': ' || string_agg(v::text, ', ')"
		  . " FILTER (WHERE n <= 5), '') FROM (SELECT v, row_number() OVER ()"
		  . " AS n FROM ($sql) v) w");
	is($found, '0', "$what (seed $seed)");
}

my $n = $node->safe_psql('postgres', qq{
	SELECT (SELECT count(*) FROM $expected e) || ' expected, '
	|| (SELECT count(*) FROM $acked a) || ' acked, '
	|| (SELECT count(*) FROM $dead d) || ' dead letters, '
	|| (SELECT count(*) FROM model.seen) || ' deliveries, '
	|| (SELECT count(*) FROM model.redriven) || ' redriven, '
	|| (SELECT count(*) FROM model.half) || ' half messages'});
diag("model test: $n");
check('nothing committed is lost: each message acked or dead, per subscription',
	qq{SELECT msg_id, sub FROM $expected e EXCEPT
	   (SELECT msg_id, sub FROM $acked a UNION SELECT msg_id, sub FROM $dead d)});
check('nothing rolled back or unsent is delivered',
	qq{SELECT msg_id FROM (SELECT msg_id FROM model.seen
	   UNION SELECT msg_id FROM model.delivery
	   UNION SELECT msg_id FROM model.effect
	   UNION SELECT msg_id FROM model.settled
	   UNION SELECT msg_id FROM $dead d) x
	   EXCEPT SELECT msg_id FROM $committed c});
check('no transactional effect twice',
	q{SELECT sub, msg_id FROM model.effect GROUP BY 1, 2 HAVING count(*) > 1});
check('each message settled once: acked at most once, never acked and dead',
	qq{SELECT sub, msg_id FROM model.settled WHERE how = 'ack'
	   GROUP BY 1, 2 HAVING count(*) > 1
	   UNION ALL SELECT sub, msg_id FROM $acked a JOIN $dead d USING (sub, msg_id)});
check('an ordered key is delivered one message at a time, in id order',
	q{SELECT a.msg_id, b.msg_id FROM model.effect a
	   JOIN model.sent sa ON sa.msg_id = a.msg_id
	   JOIN model.sent sb ON sb.key = sa.key AND sb.msg_id > sa.msg_id
	   JOIN model.effect b ON b.msg_id = sb.msg_id AND b.sub = 'mo'
	   WHERE a.sub = 'mo' AND b.seq < a.seq
	   AND NOT EXISTS (SELECT FROM model.redriven r
		   WHERE r.sub = 'mo' AND r.msg_id IN (a.msg_id, b.msg_id))});
check('attempts stay within max_deliveries (3)',
	qq{SELECT sub, msg_id, attempt FROM model.seen WHERE attempt NOT BETWEEN 1 AND 3
	   UNION ALL SELECT sub, msg_id, attempts FROM $dead d
	   WHERE attempts NOT BETWEEN 1 AND 3});
check('attempts of a message only go up (between redrives, in one server run)',
	q{SELECT sub, msg_id, attempt, prev FROM (
		SELECT sub, msg_id, attempt, lag(attempt) OVER w AS prev FROM model.seen s
		WHERE NOT EXISTS (SELECT FROM model.redriven r
			WHERE r.sub = s.sub AND r.msg_id = s.msg_id)
		WINDOW w AS (PARTITION BY sub, msg_id, epoch ORDER BY at)) x
	   WHERE attempt <= prev});
check('txmq.stats: nothing left over, dead letters as the model expects',
	qq{SELECT st.subscription, st.ready, st.delayed, st.in_flight,
		st.half_pending, st.dead, m.n FROM txmq.stats st
	   LEFT JOIN (SELECT sub, count(*) AS n FROM (SELECT msg_id, sub FROM $expected e
		   EXCEPT SELECT msg_id, sub FROM $acked a) x GROUP BY sub) m
	   ON m.sub = st.subscription
	   WHERE st.topic IN ('mt', 'mo') AND (st.ready + st.delayed + st.in_flight
		+ st.half_pending > 0 OR st.dead <> coalesce(m.n, 0))});
is(join('', @errors), '', "no consumer or producer got an error (seed $seed)");

done_testing();
