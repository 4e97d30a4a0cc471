# prometheus-postgres-exporter with tools/prometheus/txmq-queries.yaml
# against a throwaway cluster, connected as a monitoring role over the Unix
# socket: what /metrics says of a queue and of a topic without
# subscriptions, before and after the role's grants, and after the queue
# changed (gauges move, counters grow).
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use HTTP::Tiny;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use TxmqTest;

my $queries = File::Spec->catfile(dirname(__FILE__), '..', '..',
	'tools', 'prometheus', 'txmq-queries.yaml');
my $node = TxmqTest::node('main');

sub sql { return $node->safe_psql('postgres', shift) }

# A monitoring role with what every role has: txmq.stats shows it the
# shared tables only, until it is given pg_monitor.
sql(q{
	CREATE ROLE txmq_monitor LOGIN;
	SELECT txmq.create_queue('q');
	SELECT txmq.send_batch('q', ARRAY['1', '2', '3', '4', '5', '6']::jsonb[]);
	SELECT txmq.send('q', '7', delay => '1 hour');
	SELECT txmq.create_topic('h', check_after => '1 hour');
	SELECT txmq.send_half('h', '{}', producer_group => 'g');
});
my $leased = sql(q{SELECT msg_id FROM txmq.receive('q', 'q', lease => '1 hour')});
sql(q{
	BEGIN;
	SELECT txmq.reject('q', 'q', msg_id, 'poison') FROM txmq.receive('q', 'q');
	COMMIT;
	BEGIN;
	SELECT txmq.ack('q', 'q', msg_id) FROM txmq.receive('q', 'q');
	COMMIT;
});
TxmqTest::poll($node, 'postgres',
	q{SELECT bool_and(worker_running) FROM txmq.stats WHERE topic IS NOT NULL},
	't', 'the worker runs');

# ---- the exporter ----
my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($xout, $xerr) = ('', '');
my $exporter;
{
	local $ENV{DATA_SOURCE_NAME} = sprintf(
		'host=%s port=%d user=txmq_monitor dbname=postgres sslmode=disable',
		$node->host, $node->port);
	$exporter = IPC::Run::start(
		[
			'prometheus-postgres-exporter', "--extend.query-path=$queries",
			'--disable-default-metrics', '--disable-settings-metrics',
			"--web.listen-address=127.0.0.1:$port"
		],
		'<', \'', '>', \$xout, '2>', \$xerr);
}
# also when the test dies
END { $exporter->kill_kill if $exporter }

# No proxy from the environment: the exporter is on the loopback.
my $http = HTTP::Tiny->new(timeout => 30, proxy => undef, http_proxy => undef);

my $server = $node->host . ':' . $node->port;

# The samples of the txmq metrics: "name{label="value",...}" (the labels in
# the exporter's order, which is by name; without its label "server") =>
# value.
sub scrape
{
	my $until = time + $PostgreSQL::Test::Utils::timeout_default;
	my $res;
	while (1)
	{
		$res = $http->get("http://127.0.0.1:$port/metrics");
		last if $res->{success};
		$exporter->pump_nb if $exporter->pumpable;
		die "no /metrics: $res->{status} $res->{content}\nexporter: $xerr"
		  if time > $until || !$exporter->pumpable;
		sleep 0.1;
	}
	$exporter->pump_nb;
	my %m;
	for (split /\n/, $res->{content})
	{
		next unless /^(txmq_\S+) (\S+)$/;
		my ($s, $v) = ($1, $2);
		# the exporter's own label, the DSN's host and port
		$s =~ s/,server="\Q$server\E"//;
		$m{$s} = $v;
	}
	return \%m;
}

sub series
{
	my ($name, %labels) = @_;
	return $name . '{'
	  . join(',', map { qq{$_="$labels{$_}"} } sort keys %labels) . '}';
}

my @q = (database => 'postgres', subscription => 'q', topic => 'q');
my @h = (database => 'postgres', subscription => '', topic => 'h');

my $m = scrape();
is_deeply([ grep { !/^txmq_shared_table_/ } sort keys %$m ], [],
	'without pg_monitor or a grant, a role sees no topic');
for my $setting (qw(txmq.max_subscriptions txmq.max_workers txmq.max_tracked_messages))
{
	my %s = (database => 'postgres', setting => $setting);
	my $row = sql(qq{SELECT capacity || ' ' || in_use || ' ' || needed
		FROM txmq.stats WHERE setting = '$setting'});
	is( join(' ', map { $m->{ series("txmq_shared_table_$_", %s) } // 'none' }
			qw(capacity in_use needed)),
		$row, "$setting: capacity, in_use, needed as in txmq.stats");
}
like($m->{ series('txmq_shared_table_capacity',
	database => 'postgres', setting => 'txmq.max_workers') },
	qr/^[1-9]\d*$/, 'max_workers has a capacity');

# pg_monitor (its pg_read_all_stats) shows every row, and lets it do
# nothing with the queues
sql(q{GRANT pg_monitor TO txmq_monitor;});
my ($rc, $out, $err) = $node->psql('postgres',
	q{SET ROLE txmq_monitor; SELECT txmq.send('q', '0');});
like($err, qr/permission denied/, 'pg_monitor may not send');

# expect($m, \@labels, name => value, ...): one test per sample
sub expect
{
	my ($m, $labels, @want) = @_;
	while (my ($name, $value) = splice(@want, 0, 2))
	{
		my $s = series("txmq_$name", @$labels);
		is($m->{$s}, $value, "$s $value");
	}
}

$m = scrape();
expect($m, \@q,
	ready => 3, delayed => 1, in_flight => 1, dead => 1, half_pending => 0,
	sent_total => 7, delivered_total => 3, acked_total => 1,
	nacked_total => 0, dead_lettered_total => 1, expired_total => 0,
	checks_total => 0,
	checks_commit_total => 0, checks_rollback_total => 0,
	checks_unknown_total => 0, worker_running => 1);
expect($m, \@h,
	ready => 0, delayed => 0, in_flight => 0, dead => 0, half_pending => 1,
	oldest_ready_age_seconds => 0, sent_total => 0, checks_total => 0,
	worker_running => 1);
my %sample = map { $_ => 1 } keys %$m;
delete @sample{ grep { /^txmq_shared_table_/ } keys %sample };
is(scalar(keys %sample), 2 * 18, 'two rows of 18 metrics, nothing else');

my $age = $m->{ series('txmq_oldest_ready_age_seconds', @q) };
my $sql_age = sql(q{SELECT extract(epoch FROM oldest_ready_age)
	FROM txmq.stats WHERE topic = 'q'});
ok($age > 0 && $age <= $sql_age, "oldest_ready_age_seconds $age, in seconds");
my $since = $m->{ series('txmq_counters_since_timestamp_seconds', @q) };
my $sql_since = sql(q{SELECT extract(epoch FROM counters_since)
	FROM txmq.stats WHERE topic = 'q'});
ok(abs($since - $sql_since) < 0.001,
	"counters_since_timestamp_seconds $since is counters_since");

# ---- the queue changes ----
sql(qq{
	SELECT txmq.ack('q', 'q', $leased);
	SELECT txmq.send_batch('q', ARRAY['8', '9']::jsonb[]);
	BEGIN;
	SELECT txmq.nack('q', 'q', msg_id, delay => '1 hour') FROM txmq.receive('q', 'q');
	COMMIT;
});
$m = scrape();
expect($m, \@q,
	ready => 4, delayed => 2, in_flight => 0, dead => 1,
	sent_total => 9, delivered_total => 4, acked_total => 2,
	nacked_total => 1, dead_lettered_total => 1);

$exporter->kill_kill;
$exporter = undef;
done_testing();
