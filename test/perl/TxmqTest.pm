# TxmqTest: helpers for txmq's TAP tests (test/t/*.pl).
#
#   use lib 'test/perl';      # not needed under `make test`
#   use TxmqTest;
#   my $node = TxmqTest::node('main');            # started, extension created
#   my $node = TxmqTest::node('p', start => 0);   # initialised only
#   my $node = TxmqTest::node('x', conf => "txmq.worker_naptime = 20ms\n",
#                             dbname => 'app', create_extension => 0);
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

1;
