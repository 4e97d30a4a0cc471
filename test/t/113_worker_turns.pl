# worker_turns: more databases with txmq than txmq.max_workers (issue 13).
# The launcher's worker table is full, txmq.stats says how full, the log
# says that databases wait, and no guarantee is lost: the databases take
# turns, so check-back resolves the half messages of every one of them.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

# one worker for three databases (postgres, d1, d2); in each, an
# application role owns a queue whose check function says commit
my $node = TxmqTest::node('main', conf => "txmq.max_workers = 1\n");
my @dbs = qw(postgres d1 d2);
$node->safe_psql('postgres', 'CREATE ROLE app');
for my $db (@dbs)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db") if $db ne 'postgres';
	$node->safe_psql($db, q{
		SET client_min_messages = warning;
		CREATE EXTENSION IF NOT EXISTS txmq;
		GRANT EXECUTE ON FUNCTION txmq.create_topic, txmq.create_queue TO app;
		CREATE SCHEMA app AUTHORIZATION app;
		SET ROLE app;
		CREATE FUNCTION app.yes(m txmq.message) RETURNS txmq.check_result
			LANGUAGE sql AS $$ SELECT 'commit'::txmq.check_result $$;
		SELECT txmq.create_queue('q', check_function => 'app.yes(txmq.message)',
			check_after => '100 ms', check_interval => '200 ms');
		SELECT txmq.send_half('q', '{}');
	});
}

TxmqTest::poll($node, 'postgres', q{
	SELECT concat_ws(' ', capacity, in_use, needed) FROM txmq.stats
	 WHERE setting = 'txmq.max_workers'}, '1 1 3',
	'txmq.stats: 1 worker of 1 in use, 3 databases want one');
for my $db (@dbs)
{
	TxmqTest::poll($node, $db, q{SELECT ready FROM txmq.stats WHERE topic = 'q'},
		'1', "$db: check-back committed its half message");
}
like(slurp_file($node->logfile),
	qr/WARNING:  txmq launcher: all 1 workers are busy, some databases wait for one\n.*DETAIL:  The databases take turns/s,
	'the log says that databases wait and take turns');

# a second round of half messages: every database is served again
$node->safe_psql($_, q{SELECT txmq.send_half('q', '{}')}) for @dbs;
for my $db (@dbs)
{
	TxmqTest::poll($node, $db, q{SELECT ready FROM txmq.stats WHERE topic = 'q'},
		'2', "$db: and the next one");
}
$node->stop;

done_testing();
