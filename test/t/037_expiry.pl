# expiry: the worker expires what a subscription with a retention did not
# settle within it (issue 14): to the dead letters with a last_error that
# says so, or nowhere with on_expiry 'drop'.  A lease still running and a
# message a transaction holds are left alone until they come back; a
# subscription without a retention, or with a longer one, keeps
# everything; txmq.stats counts what expired; more than one round's batch
# all goes.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $node = TxmqTest::node('main');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# what the subscription $sub of topic ex has queued: "id:leased,..."
sub queued
{
	my ($sub) = @_;
	return sql(qq{
		SELECT coalesce(string_agg(m.msg_id || ':' || m.leased, ',' ORDER BY m.msg_id), '')
		  FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
		 WHERE s.name = '$sub'});
}

sql(q{
	SELECT txmq.create_topic('ex', notify => false);
	SELECT txmq.create_subscription('ex', 'dl', retention => '2 s', lease => '1 h');
	SELECT txmq.create_subscription('ex', 'drop', retention => '2 s',
									on_expiry => 'drop');
	SELECT txmq.create_subscription('ex', 'long', retention => '1 h');
	SELECT txmq.create_subscription('ex', 'keep');
});
my ($m1, $m2) = split /\n/, sql(q{
	SELECT txmq.send('ex', '{"n": 1}');
	SELECT txmq.send('ex', '{"n": 2}');});

# dl: the first message leased for an hour, through its retention
my ($leased, $receipt) = split /\|/,
  sql(q{SELECT msg_id, receipt FROM txmq.receive('ex', 'dl')});
is($leased, $m1, 'dl: the first message is leased');

# drop: the first message held by an open transaction
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN');
is($holder->query_safe(q{SELECT msg_id FROM txmq.receive('ex', 'drop')}),
	$m1, 'drop: the first message is held by a transaction');

TxmqTest::poll($node, 'postgres', q{SELECT count(*) FROM txmq.dead_letters('ex', 'dl')},
	'1', 'dl: the unsettled message expires to the dead letters');
is(sql(q{SELECT msg_id || ' ' || attempts || ' ' || last_error
		 FROM txmq.dead_letters('ex', 'dl')}),
	"$m2 0 expired: not settled within the subscription's retention of 00:00:02",
	'dl: its dead letter says it expired, and after how long');
is(queued('dl'), "$m1:true", 'dl: the lease still running is kept');
TxmqTest::poll($node, 'postgres', qq{SELECT count(*) FROM txmq.msg m
	JOIN txmq.subscription s USING (sub_id) WHERE s.name = 'drop' AND m.msg_id = $m2},
	'0', 'drop: the unsettled message expires');
is(queued('drop'), "$m1:false", 'drop: the held message is kept');
is(sql(q{SELECT count(*) FROM txmq.dead_letters('ex', 'drop')}), '0',
	'drop: nothing goes to the dead letters');
is(queued('long'), "$m1:false,$m2:false", 'long: kept within its retention');
is(queued('keep'), "$m1:false,$m2:false", 'keep: no retention, nothing expires');

# what was in flight expires once it comes back, not before
is(sql(qq{SELECT txmq.ack('ex', 'dl', $leased, '$receipt')}), 't',
	'dl: the lease that ran through the retention still settles');
$holder->query_safe('ROLLBACK');
TxmqTest::poll($node, 'postgres', q{SELECT count(*) FROM txmq.msg m
	JOIN txmq.subscription s USING (sub_id) WHERE s.name = 'drop'},
	'0', 'drop: the message the rollback gave back expires');

is(sql(q{SELECT string_agg(subscription || '=' || expired || '/' || dead_lettered, ' '
			ORDER BY subscription) FROM txmq.stats WHERE topic = 'ex'}),
	'dl=1/1 drop=2/0 keep=0/0 long=0/0',
	'txmq.stats counts expired messages (and dead-lettered ones)');

# more than a round's batch (1,000) of a subscription
sql(q{
	SELECT txmq.create_queue('ex_many', notify => false, retention => '1 s',
							 on_expiry => 'drop');
	SELECT count(*) FROM txmq.send_batch('ex_many', array_fill('{}'::jsonb, ARRAY[2500]));
});
TxmqTest::poll($node, 'postgres',
	q{SELECT count(*) FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
	  WHERE s.name = 'ex_many'},
	'0', '2,500 messages expire');
is(sql(q{SELECT expired FROM txmq.stats WHERE topic = 'ex_many'}), '2500',
	'all counted');

# turned off: nothing more expires.  A message sent later to another
# queue with the same retention expiring shows the worker had a round
# after this one's retention would have passed.
sql(q{
	SELECT txmq.alter_subscription('ex_many', 'ex_many', retention => '0');
	SELECT txmq.send('ex_many', '{}');
	SELECT txmq.create_queue('ex_marker', notify => false, retention => '1 s',
							 on_expiry => 'drop');
	SELECT txmq.send('ex_marker', '{}');
});
TxmqTest::poll($node, 'postgres',
	q{SELECT count(*) FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
	  WHERE s.name = 'ex_marker'}, '0', 'a later message of another queue expired');
is(sql(q{SELECT count(*) FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
		 WHERE s.name = 'ex_many'}), '1', 'retention turned off: the message stays');

$holder->quit;
$node->stop;
done_testing();
