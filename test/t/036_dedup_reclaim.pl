# dedup_reclaim: the worker deletes the dedup keys whose window has passed
# (issue 14), however many there are, and only those; a key it has not
# deleted yet is taken over by the next send once its window has passed.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use TxmqTest;

my $node = TxmqTest::node('main');

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
	SELECT txmq.create_queue('dd_short', notify => false, dedup_window => '1 s');
	SELECT txmq.create_queue('dd_long', notify => false, dedup_window => '1 h');
	SELECT txmq.send('dd_long', '1', dedup_key => 'kept');
	SELECT txmq.send('dd_short', '1', dedup_key => 'k' || g) FROM generate_series(1, 3) g;
});
is(sql(q{SELECT count(*) FROM txmq.dedup}), '4', 'four keys taken');
TxmqTest::poll($node, 'postgres',
	q{SELECT string_agg(key, ',') FROM txmq.dedup},
	'kept', 'the worker deletes the keys whose window passed, and keeps the other');
is(sql(q{SELECT txmq.send('dd_short', '2', dedup_key => 'k1') >
		 (SELECT max(msg_id) FROM txmq.msg WHERE payload = '1')}),
	't', 'a deleted key is free again');

# more keys than the worker deletes in one statement: all go in its round
sql(q{
	INSERT INTO txmq.dedup (topic_id, key, msg_id, expires_at, half)
	SELECT t.topic_id, 'old' || g, g, now() - interval '1 min', false
	  FROM txmq.topic t, generate_series(1, 25000) g WHERE t.name = 'dd_short';
});
TxmqTest::poll($node, 'postgres',
	q{SELECT count(*) FROM txmq.dedup WHERE key LIKE 'old%'},
	'0', 'the worker deletes 25000 expired keys');
is(sql(q{SELECT count(*) FROM txmq.dedup WHERE key = 'kept'}), '1',
	'the key still within its window is there');

# the worker finds expired keys along the index on their expiry, so its
# cost follows the keys it deletes, not the table
sql(q{
	INSERT INTO txmq.dedup (topic_id, key, msg_id, expires_at, half)
	SELECT t.topic_id, 'live' || g, g, now() + interval '1 h', false
	  FROM txmq.topic t, generate_series(1, 20000) g WHERE t.name = 'dd_long';
	ANALYZE txmq.dedup;
});
like(sql(q{EXPLAIN SELECT ctid FROM txmq.dedup WHERE expires_at <= now()
		   ORDER BY expires_at LIMIT 10000}),
	qr/dedup_expires_idx/, 'expired keys are found along dedup_expires_idx');

$node->stop;
done_testing();
