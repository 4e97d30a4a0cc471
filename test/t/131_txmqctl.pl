# txmqctl (tools/txmqctl): every command against a throwaway cluster, with
# its output, its errors (exit status, SQLSTATE) and --json; top's live view
# and purge's question driven in a terminal under tmux, whose screen is read
# back.
use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use TxmqTest;

my $node = TxmqTest::node('main');
my $conn = $node->connstr('postgres');
my $tmp  = PostgreSQL::Test::Utils::tempdir;

# ctl($stdin, @args): run txmqctl -d <node> @args; (status, stdout, stderr)
sub ctl
{
	my ($stdin, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'txmqctl', '-d', $conn, @args ],
		'<', \$stdin, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return ($? >> 8, $out, $err);
}

sub sql { return $node->safe_psql('postgres', shift) }

# ---- usage ----
my ($rc, $out, $err) = ctl('', '--help');
is($rc, 0, '--help: exit 0');
like($out, qr/^Commands:.*\btop\b.*\bpeek\b.*\bpurge\b/ms, '--help lists the commands');
for my $cmd (qw(top topics peek send consume dead-letters redrive purge half))
{
	($rc, $out) = ctl('', $cmd, '--help');
	ok($rc == 0 && $out =~ /^Usage:\n  txmqctl \[CONNECTION OPTIONS\] \Q$cmd\E /m,
		"$cmd --help");
}
($rc, $out, $err) = ctl('');
is($rc, 2, 'no command: exit 2');
($rc, $out, $err) = ctl('', 'nope');
ok($rc == 2 && $err =~ /unknown command "nope"/, 'unknown command: exit 2');
($rc, $out, $err) = ctl('', 'topics', '--yes');
ok($rc == 2 && $err =~ /topics does not take option --yes/, 'an option of another command: exit 2');
($rc, $out, $err) = ctl('', 'peek', 'only_topic');
ok($rc == 2 && $err =~ /usage: peek TOPIC SUB/, 'missing argument: exit 2');
($rc, $out, $err) = ctl('', 'peek', 'a', 'b', '-n', 'x');
ok($rc == 2 && $err =~ /-n must be an integer/, 'bad -n: exit 2');
($rc, $out, $err) = ctl('', 'top', '-i', '0');
ok($rc == 2 && $err =~ /--interval must be between/, 'bad -i: exit 2');

# ---- connecting ----
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'txmqctl', '-d', "host=$tmp port=1 connect_timeout=5", 'topics' ],
		'<', \'', '>', \$o, '2>', \$e);
	ok($? >> 8 == 3 && $e =~ /could not connect/, 'no server: exit 3');
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	IPC::Run::run([ 'txmqctl', 'topics' ], '<', \'', '>', \$o, '2>', \$e);
	is($? >> 8, 0, 'connects with the PG* environment variables');
}

# ---- send ----
sql(q{
	SELECT txmq.create_queue('jobs');
	SELECT txmq.create_topic('orders');
	SELECT txmq.create_subscription('orders', 'cart');
	SELECT txmq.create_subscription('orders', 'billing');
});
($rc, $out, $err) = ctl(qq{{"id": 1}\n\n"two"\n{"id": 3}\n}, 'send', 'jobs');
is($rc, 0, 'send: exit 0');
my @ids = split /\n/, $out;
is(scalar(@ids), 3, 'send prints a msg_id per line, blank lines skipped');
is(sql(q{SELECT string_agg(payload::text, ' ' ORDER BY msg_id) FROM txmq.peek('jobs', 'jobs')}),
	'{"id": 1} "two" {"id": 3}', 'the lines are the payloads, in order');

($rc, $out, $err) = ctl(qq|1\n2\n3\n{"bad\n5\n|, 'send', 'orders', '--batch', '2');
is($rc, 1, 'send with a bad line: exit 1');
like($err, qr/standard input, line 4: ERROR:  invalid input syntax for type json \(SQLSTATE 22P02\)/,
	'the bad line is named, with the server\'s error and SQLSTATE');
like($err, qr/lines 3-4 were not sent; the 2 message\(s\) before them were/,
	'what was and was not sent');
is(sql(q{SELECT string_agg(payload::text, ',' ORDER BY msg_id) FROM txmq.peek('orders', 'cart')}),
	'1,2', 'only the batch before the bad line was sent');
($rc, $out, $err) = ctl(qq{"x"\n"y"\n}, 'send', 'orders', '--json', '--batch', '5');
my @lines = map { decode_json($_) } split /\n/, $out;
ok($rc == 0 && @lines == 2 && $lines[1]{line} == 2 && $lines[1]{msg_id} > 0,
	'send --json: a JSON line per message');
($rc, $out, $err) = ctl(qq{1\n}, 'send', 'nope');
ok($rc == 1 && $err =~ /ERROR:  txmq: topic "nope" does not exist \(SQLSTATE 42704\)/,
	'send to an unknown topic: the server\'s error');

# ---- topics ----
($rc, $out, $err) = ctl('', 'topics');
like($out, qr/^topic\s+subscriptions\s+ready.*\njobs\s+1\s+3\s.*\norders\s+2\s+8\s/s,
	'topics: a table with each topic\'s counts');
($rc, $out, $err) = ctl('', 'topics', '--json');
my $topics = decode_json($out);
is_deeply([ map { "$_->{topic}:$_->{subscriptions}:$_->{ready}" } @$topics ],
	[ 'jobs:1:3', 'orders:2:8' ], 'topics --json');

# ---- peek ----
($rc, $out, $err) = ctl('', 'peek', 'jobs', 'jobs', '-n', '2');
ok($rc == 0 && $out =~ /^msg_id\s+attempt\s+created_at\s+key\s+headers\s+payload/
	  && (() = $out =~ /\n/g) == 3, 'peek -n 2: a header and two rows');
($rc, $out, $err) = ctl('', 'peek', 'jobs', 'jobs', '--json');
my $peeked = decode_json($out);
is_deeply([ map { $_->{payload} } @$peeked ], [ { id => 1 }, 'two', { id => 3 } ],
	'peek --json: payloads as JSON');
is(sql(q{SELECT ready || '/' || delivered FROM txmq.stats WHERE topic = 'jobs'}),
	'3/0', 'peek received nothing');
sql(q{CREATE ROLE reader LOGIN});
($rc, $out, $err) = ctl('', '-U', 'reader', 'peek', 'jobs', 'jobs');
ok($rc == 1 && $err =~ /permission denied to receive from subscription "jobs" \(SQLSTATE 42501\)/,
	'peek without receive rights: receive\'s error');
($rc, $out, $err) = ctl('', 'peek', 'jobs', 'nope');
ok($rc == 1 && $err =~ /\(SQLSTATE 42704\)/, 'peek of an unknown subscription');

# ---- consume ----
($rc, $out, $err) = ctl('', 'consume', 'jobs', 'jobs', '--max', '2');
ok($rc == 0 && $out =~ /^msg_id=$ids[0] attempt=1 payload=\{"id": 1\}\nmsg_id=$ids[1] attempt=1 payload="two"\n$/,
	'consume --max 2 prints two messages');
is(sql(q{SELECT ready || '/' || acked FROM txmq.stats WHERE topic = 'jobs'}),
	'1/2', 'and acked them');
($rc, $out, $err) = ctl('', 'consume', 'orders', 'cart', '--json', '--lease', '1 min');
@lines = map { decode_json($_) } split /\n/, $out;
ok($rc == 0 && @lines == 4 && $lines[0]{payload} == 1 && $lines[0]{attempt} == 1,
	'consume --lease --json: JSON lines until none is ready');
is(sql(q{SELECT ready + in_flight FROM txmq.stats WHERE subscription = 'cart'}),
	'0', 'the leased messages were acked');
($rc, $out, $err) = ctl('', 'consume', 'orders', 'cart', '--lease', '1 ms');
ok($rc == 1 && $err =~ /lease .*\(SQLSTATE 22023\)/, 'consume with a bad lease: the server\'s error');
{
	my ($o, $e) = ('', '');
	my $h = IPC::Run::start(
		[ 'txmqctl', '-d', $conn, 'consume', 'orders', 'cart', '--follow', '--max', '1' ],
		'<', \'', '>', \$o, '2>', \$e,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	TxmqTest::poll($node, 'postgres',
		q{SELECT count(*) FROM pg_stat_activity
		   WHERE query LIKE 'CALL txmq.wait(%' AND backend_type = 'client backend'},
		'1', 'consume --follow waits in txmq.wait');
	sql(q{SELECT txmq.send('orders', '"late"')});
	$h->finish;
	ok($? >> 8 == 0 && $o =~ /payload="late"\n$/, 'and takes the message sent meanwhile');
}

# ---- dead letters, redrive ----
my $dead = sql(q{SELECT msg_id FROM txmq.receive('jobs', 'jobs') r
	WHERE txmq.reject('jobs', 'jobs', r.msg_id, 'cannot parse')});
($rc, $out, $err) = ctl('', 'dead-letters', 'jobs', 'jobs');
ok($rc == 0 && $out =~ /^msg_id\s+attempts\s+dead_at.*\n\s*$dead\s+1\s.*cannot parse\s+\{"id": 3\}\n$/s,
	'dead-letters lists them');
($rc, $out, $err) = ctl('', 'dead-letters', 'jobs', 'jobs', '--show', $dead);
ok($rc == 0 && $out =~ /^msg_id\s+$dead\n.*^last_error\s+cannot parse\n^payload\s+\{"id": 3\}\n/ms,
	'dead-letters --show: the message in full');
($rc, $out, $err) = ctl('', 'dead-letters', 'jobs', 'jobs', '--show', $dead, '--json');
is(decode_json($out)->{last_error}, 'cannot parse', 'dead-letters --show --json');
($rc, $out, $err) = ctl('', 'dead-letters', 'jobs', 'jobs', '--show', '999999');
ok($rc == 4 && $err =~ /no dead letter 999999/, '--show of an unknown id: exit 4');
($rc, $out, $err) = ctl('', 'dead-letters', 'jobs', 'jobs', '--show', 'x');
is($rc, 2, '--show of a bad id: exit 2');
($rc, $out, $err) = ctl('', 'redrive', 'jobs', 'jobs', 'x');
is($rc, 2, 'redrive of a bad id: exit 2');
($rc, $out, $err) = ctl('', 'redrive', 'jobs', 'jobs', $dead, '999999', '--json');
ok($rc == 0 && decode_json($out)->{redriven} == 1, 'redrive of ids');
is(sql(q{SELECT ready || '/' || dead FROM txmq.stats WHERE topic = 'jobs'}),
	'1/0', 'the dead letter is queued again');
($rc, $out, $err) = ctl('', 'redrive', 'jobs', 'jobs');
ok($rc == 0 && $out eq "redriven: 0\n", 'redrive of all');

# ---- half ----
my $half = sql(q{SELECT txmq.send_half('orders', '{"o": 1}', producer_group => 'order-svc')});
($rc, $out, $err) = ctl('', 'half');
ok($rc == 0 && $out =~ /^msg_id\s+topic\s+producer_group.*\n\s*$half\s+orders\s+order-svc\s/s,
	'half lists the pending half messages');
($rc, $out, $err) = ctl('', 'half', 'orders', '--json');
my $h = decode_json($out);
ok(@$h == 1 && $h->[0]{msg_id} == $half && defined $h->[0]{check_count}
	  && exists $h->[0]{next_check_at}, 'half --json: check count and next check');
($rc, $out, $err) = ctl('', 'half', 'nope');
ok($rc == 1 && $err =~ /\(SQLSTATE 42704\)/, 'half of an unknown topic');

# ---- purge ----
($rc, $out, $err) = ctl('', 'purge', 'orders', 'billing');
ok($rc == 2 && $err =~ /confirm with --yes/, 'purge without --yes and no terminal: refused');
is(sql(q{SELECT ready FROM txmq.stats WHERE subscription = 'billing'}), '5',
	'nothing purged');
($rc, $out, $err) = ctl('', 'purge', 'orders', 'billing', '--yes');
ok($rc == 0 && $out eq "purged: 5\n", 'purge --yes');

# ---- top --once ----
sql(q{
	SELECT txmq.create_queue('t_small');
	SELECT txmq.create_queue('t_big');
	SELECT txmq.create_queue('t_mid');
	SELECT txmq.send_batch('t_big', array_fill('1'::jsonb, ARRAY[5]));
	SELECT txmq.send_batch('t_mid', array_fill('1'::jsonb, ARRAY[3]));
	SELECT txmq.send('t_small', '1');
	SELECT txmq.send('t_small', '2', delay => '1 h');
});
($rc, $out, $err) = ctl('', 'top', '--once', '-i', '0.2');
my @order = $out =~ /^(t_\w+)\s/mg;
ok($rc == 0 && $out =~ /^txmqctl top .*worker: running/, 'top --once: a header, the worker runs');
is_deeply(\@order, [qw(t_big t_mid t_small)], 'top --once: sorted by backlog');
like($out, qr/^t_big\s+t_big\s+5\s+0\s+0\s+0\s+0\s+\d+s\s+0\.0\s+0\.0$/m,
	'top --once: counts, age and rates');
($rc, $out, $err) = ctl('', 'top', '--once', '--json', '-i', '0.2');
my $frame = decode_json($out);
is($frame->{queues}[0]{topic}, 't_big', 'top --once --json');
($rc, $out, $err) = ctl('', 'top');
ok($rc == 2 && $err =~ /top needs a terminal/, 'top without a terminal: exit 2');

# ---- in a terminal: tmux ----
my $sock = "$tmp/tmux.sock";

sub tmux
{
	my @cmd = ('tmux', '-S', $sock, '-f', '/dev/null', @_);
	my $o = '';
	IPC::Run::run(\@cmd, '<', \'', '>', \$o, '2>&1') or die "@cmd: $o";
	return $o;
}

# a session running script $name.sh, which finds the node by PG* variables
sub session
{
	my ($name, $body) = @_;
	my $script = "$tmp/$name.sh";
	open(my $fh, '>', $script) or die;
	print $fh "export PATH='$ENV{PATH}' PGHOST='" . $node->host
	  . "' PGPORT=" . $node->port . " PGDATABASE=postgres\n$body\n"
	  . "stty -a | tr ' ;' '\\n\\n' | grep -x -e '-*icanon' -e '-*echo'\n"
	  . "echo END\nexec sleep 600\n";
	close $fh;
	tmux('new-session', '-d', '-s', $name, '-x', '150', '-y', '40', "sh $script");
}

# wait until the screen of session $name matches $re; returns it
sub screen_until
{
	my ($name, $re, $what) = @_;
	my $screen = '';
	for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		$screen = tmux('capture-pane', '-p', '-t', $name);
		last if $screen =~ $re;
		sleep 0.1;
	}
	like($screen, $re, $what);
	return $screen;
}

session('top', "txmqctl top -i 0.3\necho \"top exited \$?\"");
my $screen = screen_until('top', qr/^t_small /m, 'top draws its frame in a terminal');
@order = $screen =~ /^(t_\w+)\s/mg;
is_deeply(\@order, [qw(t_big t_mid t_small)], 'the screen shows the queues sorted by backlog');
like($screen, qr/^TOPIC\s+SUBSCRIPTION\s+READY\s+DELAYED\s+IN_FLIGHT\s+DEAD\s+HALF\s+OLDEST\s+SENT\/S\s+ACKED\/S/m,
	'with its columns');
sql(q{SELECT txmq.send_batch('t_small', array_fill('1'::jsonb, ARRAY[10]))});
$screen = screen_until('top', qr/^t_small .*\n(?:.*\n)*^t_big /m,
	'it refreshes: t_small moves to the top');
tmux('send-keys', '-t', 'top', 'q');
$screen = screen_until('top', qr/^top exited 0\n(?:.*\n)*END$/m, 'q quits, exit 0');
ok($screen =~ /^icanon$/m && $screen =~ /^echo$/m, 'the terminal is back in cooked mode with echo');
unlike($screen, qr/TOPIC|t_big/, 'and the screen is restored (the frame was on the alternate screen)');

session('top_term', "sh -c 'echo \$\$ > $tmp/top.pid; exec txmqctl top -i 0.3'\necho \"top exited \$?\"");
screen_until('top_term', qr/^t_small /m, 'top runs again');
kill 'TERM', PostgreSQL::Test::Utils::slurp_file("$tmp/top.pid") =~ s/\s+//gr;
$screen = screen_until('top_term', qr/^top exited 143\n(?:.*\n)*END$/m,
	'SIGTERM ends it, as the signal does');
ok($screen =~ /^icanon$/m && $screen =~ /^echo$/m && $screen !~ /TOPIC/,
	'and the terminal is restored');

session('purge', "txmqctl purge t_mid t_mid\necho \"purge exited \$?\"");
screen_until('purge', qr/subscription "t_mid" of topic "t_mid"\? \[y\/N\]/, 'purge asks on a terminal');
tmux('send-keys', '-t', 'purge', 'n', 'Enter');
screen_until('purge', qr/not purged\npurge exited 4$/m, 'answering n: not purged, exit 4');
session('purge_yes', "txmqctl purge t_mid t_mid\necho \"purge exited \$?\"");
screen_until('purge_yes', qr/\[y\/N\]/, 'purge asks again');
tmux('send-keys', '-t', 'purge_yes', 'y', 'Enter');
screen_until('purge_yes', qr/purged: 3\npurge exited 0$/m, 'answering y: purged, exit 0');

tmux('kill-server');
$node->stop;
done_testing();
