# smoke: a TAP node made by TxmqTest has txmq preloaded with the test
# settings, and a committed message survives an immediate shutdown.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $node = TxmqTest::node('main');

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'txmq', 'txmq is preloaded');
is($node->safe_psql('postgres', 'SHOW txmq.worker_naptime'),
	'100ms', 'test settings applied');

$node->safe_psql('postgres', q{
	SELECT txmq.create_queue('tap_smoke');
	SELECT txmq.send('tap_smoke', '{"n": 42}');
});

$node->stop('immediate');
$node->start;

is( $node->safe_psql(
		'postgres',
		q{SELECT payload FROM txmq.receive('tap_smoke', 'tap_smoke')}),
	'{"n": 42}',
	'committed message survives an immediate shutdown');

$node->stop;
done_testing();
