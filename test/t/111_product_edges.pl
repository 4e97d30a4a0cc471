# product_edges: the limits a new user hits (issue 17), each reported
# where it happens instead of silently:
#   - without shared_preload_libraries, a rolled-back transactional-mode
#     delivery is not counted: the rollback warns;
#   - max_worker_processes caps the databases that get a worker at once:
#     the log says so at start and names the database left without one,
#     which gets a worker when another one's turn is over.
# (Subscription slots: 112_slots; txmq.max_workers: 113_worker_turns.)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TxmqTest;

# --- without shared_preload_libraries --------------------------------------
my $plain = TxmqTest::node('plain', conf => "shared_preload_libraries = ''\n",
	create_extension => 0);
$plain->safe_psql('postgres', q{SET client_min_messages = error; CREATE EXTENSION txmq});
$plain->safe_psql('postgres', q{
	SELECT txmq.create_queue('np', max_deliveries => 2);
	SELECT txmq.send('np', '{"poison": true}');
});
for my $round (1 .. 2)
{
	my ($rc, $out, $err) = $plain->psql('postgres', q{
		BEGIN;
		SELECT attempt FROM txmq.receive('np', 'np');
		ROLLBACK;
	});
	is($out, '1', "round $round: the attempt is 1 again");
	like($err,
		qr/WARNING:  txmq: the rolled-back delivery of 1 message was not counted\n.*shared_preload_libraries/s,
		"round $round: the rollback warns that it was not counted");
}
my ($rc, $out, $err) = $plain->psql('postgres', q{
	BEGIN;
	SAVEPOINT s;
	SELECT count(*) FROM txmq.receive('np', 'np');
	ROLLBACK TO SAVEPOINT s;
	COMMIT;
});
like($err, qr/WARNING:  txmq: the rolled-back delivery of 1 message was not counted/,
	'so does the rollback of a savepoint');
# lease mode counts fine without preloading, and says nothing
($rc, $out, $err) = $plain->psql('postgres', q{
	SELECT attempt FROM txmq.receive('np', 'np', lease => '10 ms');
	SELECT pg_sleep(0.05);
	SELECT attempt FROM txmq.receive('np', 'np', lease => '10 ms');
});
is($out, "1\n\n2", 'lease mode counts its attempts');
is($err, '', 'and does not warn');
is($plain->safe_psql('postgres', q{
	SELECT concat_ws(',', sent IS NULL, delivered IS NULL, worker_running) FROM txmq.stats}),
	't,t,f', 'the counters are NULL, worker_running false');
like(slurp_file($plain->logfile),
	qr/WARNING:  txmq: the rolled-back delivery of 1 message was not counted/,
	'the warning is in the server log too');
$plain->stop;

# --- max_worker_processes ---------------------------------------------------
# 4 background worker slots: txmq's launcher, the logical replication
# launcher, and room for two txmq workers.
my $few = TxmqTest::node('few', conf => "max_worker_processes = 4\n",
	create_extension => 0);
like(slurp_file($few->logfile),
	qr/LOG:  txmq: max_worker_processes = 4 leaves room for at most 2 txmq workers \(txmq.max_workers = 8\)/,
	'the start says how many workers max_worker_processes leaves room for');
for my $db (qw(w1 w2 w3))
{
	$few->safe_psql('postgres', "CREATE DATABASE $db");
	$few->safe_psql($db, 'CREATE EXTENSION txmq');
	TxmqTest::poll($few, 'postgres',
		qq{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txmq worker' AND datname = '$db'},
		'1', "$db gets its worker") unless $db eq 'w3';
}
my $named = 0;
for (1 .. 600)
{
	$named = slurp_file($few->logfile) =~
	  /WARNING:  txmq launcher could not start a worker for database "w3": no background worker slot is free/;
	last if $named;
	usleep(100_000);
}
ok($named, 'the launcher names the database left without a worker');
$few->safe_psql('w3', q{SELECT txmq.create_queue('x')});
TxmqTest::poll($few, 'w3', q{SELECT worker_running FROM txmq.stats WHERE topic = 'x'},
	't', 'it gets one when the turn of another database is over');
$few->stop;

done_testing();
