# events: the payload a topic's subscriptions share (txmq.event, issue 12)
# lives until every subscription has settled its message, and no longer.
# The worker deletes an event once no subscription has a row of it: not
# while one subscription has not received it, not while a transaction
# holds it (a rollback makes it available again, whole), not while a
# sender that took an earlier id is still running (its message arrives
# whole after later ones were reclaimed); and it deletes the events of
# purged subscriptions and dropped topics.  Shared messages survive an
# immediate shutdown.  More than one round's batch all goes.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $node = TxmqTest::node('main');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# the events of topic $t
sub events
{
	my ($t) = @_;
	return sql(qq{SELECT count(*) FROM txmq.event e
		JOIN txmq.topic t USING (topic_id) WHERE t.name = '$t'});
}

# let the worker run about ten rounds (txmq.worker_naptime is 100 ms in
# the tests), for what it must not do
sub rounds { sleep 1; }

# receive up to $n messages of $t/$sub and ack them in one transaction;
# returns "count sum(payload.n)"
sub drain
{
	my ($t, $sub, $n) = @_;
	return sql(qq{
		SELECT count(*) || ' ' || coalesce(sum((payload->>'n')::int), 0)
		  FROM txmq.receive('$t', '$sub', $n) r
		 WHERE txmq.ack('$t', '$sub', r.msg_id)});
}

sql(q{
	SELECT txmq.create_topic('ev', notify => false);
	SELECT txmq.create_subscription('ev', s) FROM unnest(ARRAY['a', 'b']) s;
	SELECT count(*) FROM txmq.send_batch('ev',
		ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 100) i));
});
is(events('ev'), '100', 'a send to two subscriptions writes one event per message');

# ---- a subscription that has not received a message keeps its event ----
is(drain('ev', 'a', 1000), '100 5050', 'a receives every message whole');
rounds();
is(events('ev'), '100', 'b has not received them: every event is kept');

# ---- a transaction holding messages keeps their events ----
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN');
is($holder->query_safe(q{
	SELECT count(*) || ' ' || sum((payload->>'n')::int) FROM txmq.receive('ev', 'b', 10)}),
	'10 55', 'b: an open transaction holds the first ten');
is(drain('ev', 'b', 1000), '90 4995', 'b: another consumer settles the rest');
TxmqTest::poll($node, 'postgres', q{SELECT count(*) FROM txmq.event}, '10',
	'the worker deletes the events nothing names any more');
rounds();
is(events('ev'), '10', 'and keeps those of the messages held');
$holder->query_safe('ROLLBACK');
is(drain('ev', 'b', 1000), '10 55',
	'rolled back: the held messages are received again, whole');
TxmqTest::poll($node, 'postgres', q{SELECT count(*) FROM txmq.event}, '0',
	'settled everywhere: no event is left');

# ---- a sender that took an earlier id commits after later ones went ----
my $late = $node->background_psql('postgres');
$late->query_safe('BEGIN');
$late->query_safe(q{SELECT txmq.send('ev', '{"n": 1000}')});
sql(q{SELECT count(*) FROM txmq.send_batch('ev',
	ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 20) i))});
is(drain('ev', 'a', 1000) . ' / ' . drain('ev', 'b', 1000), '20 210 / 20 210',
	'the later messages are settled by both subscriptions');
TxmqTest::poll($node, 'postgres', q{SELECT count(*) FROM txmq.event}, '0',
	'and their events deleted');
$late->query_safe('COMMIT');
is(drain('ev', 'a', 1000) . ' / ' . drain('ev', 'b', 1000), '1 1000 / 1 1000',
	'the late sender\'s message arrives whole at both');
TxmqTest::poll($node, 'postgres', q{SELECT count(*) FROM txmq.event}, '0',
	'and its event goes when both have settled it');

# ---- purge and drop ----
sql(q{
	SELECT txmq.create_topic('ev2', notify => false);
	SELECT txmq.create_subscription('ev2', s) FROM unnest(ARRAY['x', 'y', 'z']) s;
	SELECT count(*) FROM txmq.send_batch('ev2',
		ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 30) i));
	SELECT txmq.purge('ev2', 'x');
});
is(drain('ev2', 'y', 1000), '30 465', 'y settles everything; z nothing');
rounds();
is(events('ev2'), '30', 'z keeps every event');
sql(q{SELECT txmq.purge('ev2', 'z')});
TxmqTest::poll($node, 'postgres', q{SELECT count(*) FROM txmq.event}, '0',
	'purged in z: the events go');
my $topic_id = sql(q{
	SELECT count(*) FROM txmq.send_batch('ev2',
		ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 5) i));
	SELECT topic_id FROM txmq.topic WHERE name = 'ev2'});
$topic_id = (split /\n/, $topic_id)[-1];
is(sql(q{SELECT count(*) FROM txmq.event}), '5', 'five more events');
sql(q{SELECT txmq.drop_topic('ev2', force => true)});
TxmqTest::poll($node, 'postgres',
	qq{SELECT count(*) FROM txmq.event WHERE topic_id = $topic_id}, '0',
	'a dropped topic\'s events go');

# ---- more than a round's batch (10,000 events) ----
sql(q{SELECT count(*) FROM txmq.send_batch('ev',
	ARRAY(SELECT jsonb_build_object('n', 1) FROM generate_series(1, 10000) i))})
  for 1 .. 3;
is(events('ev'), '30000', '30,000 events');
is(join(' / ', map { drain('ev', $_, 10000) } qw(a a a b b b)),
	join(' / ', ('10000 10000') x 6), 'settled by both');
TxmqTest::poll($node, 'postgres', q{SELECT count(*) FROM txmq.event}, '0',
	'all of them go');

$holder->quit;
$late->quit;

# ---- shared messages survive an immediate shutdown ----
sql(q{SELECT count(*) FROM txmq.send_batch('ev',
	ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 10) i))});
is(drain('ev', 'a', 5), '5 15', 'a settles half of them');
$node->stop('immediate');
$node->start;
is(drain('ev', 'a', 1000) . ' / ' . drain('ev', 'b', 1000), '5 40 / 10 55',
	'after a crash restart every unsettled message arrives whole');
TxmqTest::poll($node, 'postgres', q{SELECT count(*) FROM txmq.event}, '0',
	'and the events go once settled');

$node->stop;
done_testing();
