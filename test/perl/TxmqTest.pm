# TxmqTest: helpers for txmq's TAP tests (test/t/*.pl).
#
#   use lib 'test/perl';      # not needed under `make test`
#   use TxmqTest;
#   my $node = TxmqTest::node('main');            # started, extension created
#   my $node = TxmqTest::node('p', start => 0);   # initialised only
#   my $node = TxmqTest::node('x', conf => "txmq.worker_naptime = 20ms\n",
#                             dbname => 'app', create_extension => 0);
#   my $bg = $node->background_psql('postgres');
#   my $m = TxmqTest::start_query($bg, 'CALL txmq.wait(...);');
#   ... TxmqTest::finished($bg, $m) ...
#   my $out = TxmqTest::wait_result($bg, $m, 10);
#
# Every node gets the server settings of test/txmq_test.conf (txmq in
# shared_preload_libraries, short worker naptimes), the same file pg_regress
# and pg_isolation_regress use, so that test-wide settings live in one place.
package TxmqTest;

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

# The server settings file: $TXMQ_TEST_CONF (set by test/run.sh), else the
# one beside this module.
sub conf_file
{
	return $ENV{TXMQ_TEST_CONF}
	  if $ENV{TXMQ_TEST_CONF} && -f $ENV{TXMQ_TEST_CONF};
	return File::Spec->catfile(dirname(__FILE__), '..', 'txmq_test.conf');
}

sub conf_text
{
	my $file = conf_file();
	open(my $fh, '<', $file) or die "cannot read $file: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	return $text;
}

# node($name, %opts): a PostgreSQL::Test::Cluster with txmq preloaded.
#   start            => 1   start it
#   create_extension => 1   CREATE EXTENSION txmq in dbname (needs start)
#   dbname           => 'postgres'  created first unless it is 'postgres'
#   conf             => ''  extra postgresql.conf lines, after the defaults
#   init             => {}  extra arguments for $node->init (allows_streaming...)
sub node
{
	my ($name, %opts) = @_;
	my $start  = $opts{start}            // 1;
	my $create = $opts{create_extension} // 1;
	my $dbname = $opts{dbname}           // 'postgres';

	my $node = PostgreSQL::Test::Cluster->new($name);
	my %init = %{ $opts{init} // {} };
	$init{extra} = [ '--encoding=UTF8', '--no-locale', @{ $init{extra} // [] } ];
	$node->init(%init);
	# test/run.sh also sets TEMP_CONFIG to this file, which init() already
	# applied; a test run by hand gets it here.
	$node->append_conf('postgresql.conf', conf_text())
	  unless ($ENV{TEMP_CONFIG} // '') eq conf_file();
	$node->append_conf('postgresql.conf', $opts{conf}) if $opts{conf};
	return $node unless $start;

	$node->start;
	$node->safe_psql('postgres', qq{CREATE DATABASE "$dbname"})
	  if $dbname ne 'postgres';
	$node->safe_psql($dbname, 'CREATE EXTENSION txmq') if $create;
	return $node;
}

# poll($node, $dbname, $sql, $expected, $what): wait (up to the TAP default
# timeout) until $sql returns $expected, and report it as one test.
sub poll
{
	my ($node, $dbname, $sql, $expected, $what) = @_;
	ok($node->poll_query_until($dbname, $sql, $expected),
		$what // "poll: $sql = $expected");
}

# ---- background psql sessions that run one query at a time ----

my $marker = 0;

# start_query($bg, $sql): send $sql to a background psql without waiting;
# returns a marker that finished() and wait_result() look for.
sub start_query
{
	my ($bg, $sql) = @_;
	my $m = 'txmq_done_' . ++$marker;
	$bg->{stdout} = '';
	$bg->{stderr} = '';
	$bg->{stdin} .= "$sql\n\\echo $m\n";
	# the session's timer bounds one query, not the whole test
	$bg->{timeout}->start() if $bg->{timeout};
	$bg->{run}->pump_nb;
	return $m;
}

# finished($bg, $m): is the query that start_query() returned $m for done?
sub finished
{
	my ($bg, $m) = @_;
	$bg->{run}->pump_nb;
	return $bg->{stdout} =~ /^$m$/m;
}

# wait_result($bg, $m, $timeout): wait (at most $timeout s, default 60) for
# it; returns its output, without the marker.
sub wait_result
{
	my ($bg, $m, $timeout) = @_;
	my $until = time + ($timeout // 60);
	until (finished($bg, $m))
	{
		die "timed out waiting for $m; stderr: $bg->{stderr}" if time > $until;
		sleep 0.005;
	}
	my $out = $bg->{stdout};
	$out =~ s/^$m\n//m;
	chomp $out;
	return $out;
}

1;
