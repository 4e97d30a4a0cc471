/*
 * cart-service: removes ordered items from the user's cart.
 *
 *   cart-service NAME tx|lease TOPIC CONNINFO SEED STOP_FILE [QUEUE_CONNINFO...]
 *
 * CONNINFO is the cart store.  The messages come from there too, unless
 * QUEUE_CONNINFOs are given: the partitions of the sharded demo, in
 * partition order, each with the same topic and subscription "cart" -- one
 * consumer group over all of them.  The service then takes from each
 * partition in turn (a batch from one, then the next, starting one further
 * each round), so that none waits behind another, and sleeps only when a
 * whole round found nothing: LISTENing on every partition, woken by the
 * first notification of any.  The work is in the cart store, another
 * database than the messages: in tx mode it commits there before the ack
 * commits in the partition, so a crash in between brings the message back
 * to find the work done (at-least-once, as lease mode).
 *
 * tx     transactional mode: receive, delete the cart lines, ack -- all in
 *        one transaction.  If it dies before COMMIT nothing happened and the
 *        messages are available again at once.  Exactly-once effect.
 * lease  lease mode: receive (the lease is committed), then do the work in
 *        a transaction of its own, then ack.  If it dies before the ack the
 *        lease runs out (2 s) and the message comes back: the work must be
 *        harmless to repeat (at-least-once).
 *
 * A message whose work fails is nacked with the error; after max_deliveries
 * (4, see shop.sql) txmq moves it to the dead-letter queue.  The dice
 * (seeded) kill the process at the worst moments; the demo driver restarts
 * it.  It stops when STOP_FILE exists.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define MAX_QUEUES 64

static unsigned seed;
static PGconn *db;				/* the cart store */
static const char *topic;
static PGconn *queues[MAX_QUEUES];	/* where the messages are: db, or the partitions */
static int nqueues;
static int part;				/* the partition of the messages at hand (0: db) */

/*
 * The work: delete the order's lines from the user's cart, and write down
 * what was deleted (the ground truth the final report checks).  Returns the
 * number of lines deleted, or -1 with the error in *err.
 */
static int remove_cart_lines(const char *msg_id, const char *payload, char **err)
{
	PGresult *res = sql_try(db, err,
		"WITH gone AS ("
		"  DELETE FROM cart.cart_line"
		"   WHERE user_id = ($1::jsonb ->> 'user_id')::int"
		"     AND sku IN (SELECT jsonb_array_elements_text($1::jsonb -> 'items'))"
		"  RETURNING user_id, sku) "
		"INSERT INTO cart.removed (user_id, sku, order_id, msg_id) "
		"SELECT user_id, sku, ($1::jsonb ->> 'order_id')::bigint, $2 FROM gone",
		payload, msg_id, END);
	int n;

	if (res == NULL)
		return -1;
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	return n;
}

static void record_delivery(const char *msg_id, const char *attempt,
							int removed, const char *err)
{
	char n[16], p[16];

	snprintf(n, sizeof(n), "%d", removed);
	snprintf(p, sizeof(p), "%d", part);
	PQclear(sql_must(db,
					 "INSERT INTO cart.deliveries "
					 "(topic, part, msg_id, attempt, consumer, lines_removed, error) "
					 "VALUES ($1, $2, $3, $4, $5, $6, $7)",
					 topic, p, msg_id, attempt, me, err ? NULL : n, err, END));
}

static void nack(PGconn *q, const char *msg_id, const char *order_id,
				 const char *attempt, const char *err)
{
	PQclear(sql_must(q, "SELECT txmq.nack($1, 'cart', $2, error => $3)",
					 topic, msg_id, err, END));
	say("message %s (order %s), attempt %s failed: %s -> nack",
		msg_id, order_id, attempt, err);
}

static void report_done(const char *msg_id, const char *order_id,
						const char *attempt, int removed)
{
	if (removed == 0)
		say("message %s (order %s), attempt %s: nothing left to remove "
			"(done before the crash): ack", msg_id, order_id, attempt);
	else if (strcmp(attempt, "1") != 0)
		say("message %s (order %s) redelivered, attempt %s: removed %d "
			"cart line(s), ack", msg_id, order_id, attempt, removed);
	else
		say_verbose("message %s (order %s): removed %d cart line(s), ack",
					msg_id, order_id, removed);
}

#define RECEIVE(n, lease) \
	"SELECT msg_id, payload, attempt, payload ->> 'order_id'," \
	"       (payload ->> 'user_id')::int" \
	"  FROM txmq.receive($1, 'cart', " n lease ")"

/*
 * The long poll, outside any transaction: txmq.wait returns as soon as a
 * message could be received (or after 1 s), and holds no snapshot while
 * it sleeps, so a consumer waiting all day holds back no VACUUM.
 */
static void wait_for_messages(void)
{
	PQclear(sql_must(db, "CALL txmq.wait($1, 'cart', '1 s')", topic, END));
}

/*
 * Transactional mode: receive + work + ack commit together -- when the
 * messages are in the cart store's database.  From a partition, the work
 * commits in the cart store first, then receive + ack in the partition.
 * Returns the number of messages received.
 */
static int consume_tx(PGconn *q)
{
	bool split = (q != db);
	PGresult *msgs;
	int n;

	PQclear(sql_must(q, "BEGIN", END));
	msgs = sql_must(q, RECEIVE("10", ""), topic, END);
	n = PQntuples(msgs);
	for (int i = 0; i < n; i++)
	{
		const char *msg_id = PQgetvalue(msgs, i, 0);
		const char *attempt = PQgetvalue(msgs, i, 2);
		const char *order_id = PQgetvalue(msgs, i, 3);
		char *err = NULL;
		int removed;

		PQclear(sql_must(db, split ? "BEGIN" : "SAVEPOINT work", END));
		removed = remove_cart_lines(msg_id, PQgetvalue(msgs, i, 1), &err);
		if (removed < 0)
		{
			PQclear(sql_must(db, split ? "ROLLBACK" : "ROLLBACK TO SAVEPOINT work", END));
			nack(q, msg_id, order_id, attempt, err);
			record_delivery(msg_id, attempt, 0, err);
			free(err);
			continue;
		}
		record_delivery(msg_id, attempt, removed, NULL);
		if (split)
			PQclear(sql_must(db, "COMMIT", END));
		PQclear(sql_must(q, "SELECT txmq.ack($1, 'cart', $2::bigint)",
						 topic, msg_id, END));
		report_done(msg_id, order_id, attempt, removed);
	}
	if (n > 0 && chance(seed, "tx-crash", atol(PQgetvalue(msgs, 0, 4)),
						atoi(PQgetvalue(msgs, 0, 2)), 0.07))
	{
		if (split)
			crash_now("before COMMIT in partition %d, %d message(s) received "
					  "(first: %s): the cart lines are gone, the messages are "
					  "available again at once and will find nothing to do",
					  part, n, PQgetvalue(msgs, 0, 0));
		crash_now("before COMMIT, %d message(s) received (first: %s): the "
				  "cart lines stay, the messages are available again at once",
				  n, PQgetvalue(msgs, 0, 0));
	}
	PQclear(msgs);
	PQclear(sql_must(q, "COMMIT", END));
	return n;
}

/*
 * Lease mode: the lease is committed at receive; work and ack come later.
 * Returns the number of messages received.
 */
static int consume_lease(PGconn *q)
{
	PGresult *msgs;
	int n;

	msgs = sql_must(q, RECEIVE("5", ", lease => '2 s'"), topic, END);

	n = PQntuples(msgs);
	for (int i = 0; i < n; i++)
	{
		const char *msg_id = PQgetvalue(msgs, i, 0);
		const char *attempt = PQgetvalue(msgs, i, 2);
		const char *order_id = PQgetvalue(msgs, i, 3);
		long user = atol(PQgetvalue(msgs, i, 4));
		char *err = NULL;
		int removed;
		PGresult *res;

		if (chance(seed, "lease-crash-1", user, atoi(attempt), 0.04))
			crash_now("holding the lease of message %s (order %s): it comes "
					  "back when the lease runs out", msg_id, order_id);

		PQclear(sql_must(db, "BEGIN", END));
		removed = remove_cart_lines(msg_id, PQgetvalue(msgs, i, 1), &err);
		if (removed < 0)
		{
			PQclear(sql_must(db, "ROLLBACK", END));
			nack(q, msg_id, order_id, attempt, err);
			record_delivery(msg_id, attempt, 0, err);
			free(err);
			continue;
		}
		record_delivery(msg_id, attempt, removed, NULL);
		PQclear(sql_must(db, "COMMIT", END));

		if (chance(seed, "lease-crash-2", user, atoi(attempt), 0.04))
			crash_now("after removing the cart lines of order %s, before the "
					  "ack of message %s: it will come back", order_id, msg_id);

		res = sql_must(q, "SELECT txmq.ack($1, 'cart', $2::bigint)",
					   topic, msg_id, END);
		if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
			report_done(msg_id, order_id, attempt, removed);
		else
			say("message %s (order %s): ack too late, the lease ran out "
				"(it will be delivered again)", msg_id, order_id);
		PQclear(res);
	}
	PQclear(msgs);
	return n;
}

static int consume(int p, bool tx_mode)
{
	part = (queues[p] == db) ? 0 : p;
	return tx_mode ? consume_tx(queues[p]) : consume_lease(queues[p]);
}

/*
 * Sharded: wait until a partition notifies that messages are there, or
 * 1 s.  Every partition's connection LISTENs on the topic's channel; a
 * notification already read wakes at once.
 */
static void wait_for_any(void)
{
	struct pollfd fds[MAX_QUEUES];
	bool woken = false;
	PGnotify *note;

	for (int i = 0; i < nqueues; i++)
	{
		PQconsumeInput(queues[i]);
		while ((note = PQnotifies(queues[i])) != NULL)
		{
			woken = true;
			PQfreemem(note);
		}
		fds[i].fd = PQsocket(queues[i]);
		fds[i].events = POLLIN;
	}
	if (!woken)
		poll(fds, nqueues, 1000);
	for (int i = 0; i < nqueues; i++)
	{
		PQconsumeInput(queues[i]);
		while ((note = PQnotifies(queues[i])) != NULL)
			PQfreemem(note);
	}
}

static void listen_all(void)
{
	char channel[128];
	char *ident;

	snprintf(channel, sizeof(channel), "txmq_%s", topic);
	for (int i = 0; i < nqueues; i++)
	{
		char cmd[256];

		/* LISTEN takes no parameters: the channel, quoted as a name */
		ident = PQescapeIdentifier(queues[i], channel, strlen(channel));
		if (ident == NULL)
		{
			say("FATAL: %s", PQerrorMessage(queues[i]));
			exit(1);
		}
		snprintf(cmd, sizeof(cmd), "LISTEN %s", ident);
		PQfreemem(ident);
		PQclear(sql_must(queues[i], cmd, END));
	}
}

int main(int argc, char **argv)
{
	bool tx_mode;
	const char *stop_file;
	int start = 0;

	if (argc < 7 || argc - 7 > MAX_QUEUES ||
		(strcmp(argv[2], "tx") != 0 && strcmp(argv[2], "lease") != 0))
	{
		fprintf(stderr, "usage: %s NAME tx|lease TOPIC CONNINFO SEED STOP_FILE "
				"[QUEUE_CONNINFO...]\n", argv[0]);
		return 2;
	}
	me = argv[1];
	tx_mode = strcmp(argv[2], "tx") == 0;
	topic = argv[3];
	db = db_connect(argv[4]);
	seed = (unsigned) strtoul(argv[5], NULL, 10);
	stop_file = argv[6];
	for (int i = 7; i < argc; i++)
		queues[nqueues++] = db_connect(argv[i]);
	if (nqueues == 0)
		queues[nqueues++] = db;
	else
		listen_all();

	while (access(stop_file, F_OK) != 0)
	{
		int got = 0;

		if (queues[0] == db)
		{
			wait_for_messages();
			consume(0, tx_mode);
			continue;
		}
		/* one batch from each partition, starting one further each round */
		for (int k = 0; k < nqueues; k++)
			got += consume((start + k) % nqueues, tx_mode);
		start = (start + 1) % nqueues;
		if (got == 0)
			wait_for_any();
	}
	for (int i = 0; i < nqueues; i++)
		if (queues[i] != db)
			PQfinish(queues[i]);
	PQfinish(db);
	return 0;
}
