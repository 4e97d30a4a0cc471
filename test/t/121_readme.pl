# readme: README.md's SQL snippets run as written, in order, on a fresh
# database of a server with txmq preloaded (issue 17: a snippet that stops
# working fails make test).
#
# Every ```sql fence is one snippet, run by psql in a session of its own
# (as a reader pasting it into psql would), as a superuser, with
# ON_ERROR_STOP: it must give no ERROR and no WARNING.  A fence right after
# a line "<!-- readme-test: skip ... -->" is not run; use that sparingly,
# for illustrations that cannot run where they stand.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $readme = File::Spec->catfile(dirname(__FILE__), '..', '..', 'README.md');
open(my $fh, '<', $readme) or die "cannot read $readme: $!";
my @lines = <$fh>;
close $fh;

# (line number of the fence, sql, skipped)
my @snippets;
my ($start, $sql, $prev) = (undef, undef, '');
for my $i (0 .. $#lines)
{
	my $line = $lines[$i];
	if (defined $sql)
	{
		if ($line =~ /^```\s*$/)
		{
			push @snippets, [ $start, $sql, $prev =~ /<!--\s*readme-test:\s*skip/ ];
			$sql = undef;
			$prev = '';
		}
		else
		{
			$sql .= $line;
		}
		next;
	}
	if ($line =~ /^```sql\s*$/)
	{
		$start = $i + 1;
		$sql = '';
		next;
	}
	$prev = $line if $line =~ /\S/;
}
die "unterminated ```sql fence at README.md line $start" if defined $sql;
cmp_ok(scalar(grep { !$_->[2] } @snippets), '>=', 10,
	'README.md has SQL snippets to run');

my $node = TxmqTest::node('readme', dbname => 'readme', create_extension => 0);
for my $s (@snippets)
{
	my ($line, $text, $skip) = @$s;
	my $first = (split /\n/, $text)[0];
	if ($skip)
	{
		note("README.md line $line skipped: $first");
		next;
	}
	my ($rc, $out, $err) = $node->psql('readme', $text, on_error_stop => 1);
	ok($rc == 0 && $err !~ /(ERROR|WARNING|FATAL):/,
		"README.md line $line runs: $first")
	  or diag("psql exit code $rc\n--- stderr:\n$err\n--- snippet:\n$text");
}

$node->stop;
done_testing();
