# A send that looked up a topic's subscriptions before one of them was
# dropped, and commits after the drop, leaves a row for the dropped
# subscription.  The worker must reap it.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

# a long naptime, so that the orphan row can be seen before it is reaped
my $node = TxmqTest::node('main', conf => "txmq.worker_naptime = 60s\n");
$node->safe_psql('postgres', q{
	SELECT txmq.create_topic('o');
	SELECT txmq.create_subscription('o', 'c');
	SELECT txmq.create_subscription('o', 'k');
});
my $dropped = $node->safe_psql('postgres',
	q{SELECT sub_id FROM txmq.subscription WHERE name = 'c'});

# the sender's transaction stays open across the drop
my ($in, $out) = ('', '');
my $sender = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres') ],
	'<', \$in, '>', \$out, '2>', \$out);
$in .= "BEGIN;\nSELECT txmq.send('o', '1');\n\\echo sent\n";
$sender->pump until $out =~ /sent/;
$node->safe_psql('postgres', q{SELECT txmq.drop_subscription('o', 'c')});
$in .= "COMMIT;\n\\q\n";
$sender->finish;

is($node->safe_psql('postgres',
		"SELECT count(*) FROM txmq.msg WHERE sub_id = $dropped"),
	'1', 'the late send left a row for the dropped subscription');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM txmq.dropped_subscription WHERE sub_id = $dropped"),
	'1', 'the drop remembers the subscription');

# the worker's next round reaps it
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET txmq.worker_naptime = '100ms';
	SELECT pg_reload_conf();
});
TxmqTest::poll($node, 'postgres',
	"SELECT count(*) FROM txmq.msg WHERE sub_id = $dropped", '0',
	'the worker reaped the orphan row');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
		  WHERE s.name = 'k'}),
	'1', 'the surviving subscription keeps its message');

done_testing();
