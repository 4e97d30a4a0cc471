# restore_other_cluster: README "Backup and restore" across clusters.
#
# Topic owners and grantees are roles, which live in the cluster, not in
# the database's dump.  Restored into a cluster that lacks them, txmq's
# tables cannot be loaded (txmq.topic's owner column names the role), so
# the procedure the README gives is: roles first (pg_dumpall
# --globals-only), then pg_restore --exit-on-error.  This test checks both
# halves: without the roles the restore fails loudly instead of leaving a
# database without its queues, and with them every queue and message
# comes back and works.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $src = TxmqTest::node('src', dbname => 'shop');
$src->safe_psql('postgres', q{
	CREATE ROLE order_app;
	CREATE ROLE cart_app;
});
$src->safe_psql('shop', q{
	GRANT EXECUTE ON FUNCTION txmq.create_topic, txmq.create_queue TO order_app;
	SET ROLE order_app;
	SELECT txmq.create_topic('orders');
	SELECT txmq.create_subscription('orders', 'cart');
	SELECT txmq.grant('orders', 'cart_app', 'receive', 'cart');
	SELECT txmq.send('orders', jsonb_build_object('order_id', g)) FROM generate_series(1, 3) g;
});
# the roles a restore needs, as the README lists them
is($src->safe_psql('shop', q{SELECT string_agg(DISTINCT role::text, ',' ORDER BY role::text) FROM txmq.grants()}),
	'cart_app,order_app', 'txmq.grants() lists the roles the queues need');

my $dump = $src->basedir . '/shop.dump';
my $globals = $src->basedir . '/globals.sql';
$src->command_ok([ 'pg_dump', '-Fc', '-d', $src->connstr('shop'), '-f', $dump ],
	'pg_dump -Fc of the database');
$src->command_ok([ 'pg_dumpall', '--globals-only', '-d', $src->connstr('postgres'),
	'-f', $globals ], 'pg_dumpall --globals-only of the cluster');

# ---- another cluster without the roles: the restore fails, loudly ----
my $dst = TxmqTest::node('dst', create_extension => 0);
$dst->safe_psql('postgres', 'CREATE DATABASE shop');
my ($stdout, $stderr);
my $ok = IPC::Run::run([ 'pg_restore', '--exit-on-error', '-d', $dst->connstr('shop'), $dump ],
	'>', \$stdout, '2>', \$stderr);
ok(!$ok, 'without the roles, pg_restore --exit-on-error fails');
like($stderr, qr/role "order_app" does not exist/, 'and names the missing role');

# ---- roles first, then the database ----
$dst->safe_psql('postgres', 'DROP DATABASE shop');
$dst->safe_psql('postgres', 'CREATE DATABASE shop');
# the globals dump also re-creates the restoring superuser, which exists
$dst->psql('postgres', slurp_file($globals), on_error_stop => 0);
$dst->command_ok([ 'pg_restore', '--exit-on-error', '-d', $dst->connstr('shop'), $dump ],
	'with the roles restored first, pg_restore succeeds');
is($dst->safe_psql('shop', q{
	SELECT string_agg(concat_ws(' ', topic, subscription, ready), '; ' ORDER BY topic, subscription)
	  FROM txmq.stats WHERE setting IS NULL}),
	'orders cart 3', 'every queued message is there');
is($dst->safe_psql('shop', q{SELECT string_agg(concat_ws(' ', subscription, role, privilege), '; ')
	FROM txmq.grants('orders')}),
	'order_app owner; cart cart_app receive', 'so are the owner and the grants');
is($dst->safe_psql('shop', q{
	SET ROLE cart_app;
	SELECT count(*) FROM (SELECT txmq.ack('orders', 'cart', msg_id)
	  FROM txmq.receive('orders', 'cart', 10)) a}),
	'3', 'and the grantee receives and acks them');

$src->stop;
$dst->stop;
done_testing();
