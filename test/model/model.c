/*
 * model.c -- the load of the randomized model test (test/t/101_model.pl).
 *
 *   model CONNINFO SEED SECONDS OUTDIR
 *
 * Forks one process per role below, each with its own connection and its
 * own random stream (SEED + its number), for SECONDS.  Every effect is
 * recorded in the transaction of the txmq call it describes, in tables of
 * schema model (created by the test), so that what committed can be
 * checked afterwards against what txmq did.  Besides, each process writes
 * every delivery it was given, also in transactions that then aborted, to
 * OUTDIR/seen.N (tab-separated: sub, msg_id, attempt, server start time,
 * clock), and every error other than a lost connection to OUTDIR/errors.N.
 *
 * The test terminates sessions and crashes the server meanwhile: a process
 * whose connection breaks connects again and goes on.
 *
 * Topics (created by the test): mt with subscriptions a1 (consumed in
 * transactional mode) and a2 (lease mode); mo, an ordered queue with keys
 * k1..k10, k1..k5 sent by one producer, k6..k10 by the other
 * (transactional mode).  max_deliveries is 3 everywhere.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

typedef void (*RoleFn) (void);

static const char *conninfo;
static double deadline;
static PGconn *conn;
static FILE *seen_log;
static FILE *error_log;
static unsigned long long rng;
static int	proc_no;			/* which of the processes: roles[proc_no] */

/* ---------------------------------------------------------------- utils */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* splitmix64: small, seedable, the same on every platform */
static unsigned long long
next_rand(void)
{
	unsigned long long z = (rng += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* a whole number in [0, n) */
static int
pick(int n)
{
	return (int) (next_rand() % (unsigned long long) n);
}

static void
sleep_ms(int ms)
{
	usleep((useconds_t) ms * 1000);
}

static void
connect_db(void)
{
	while (now_s() < deadline)
	{
		conn = PQconnectdb(conninfo);
		if (PQstatus(conn) == CONNECTION_OK)
			return;
		PQfinish(conn);
		conn = NULL;
		sleep_ms(100 + pick(200));	/* the server is restarting */
	}
}

/*
 * Run sql with text parameters; NULL on error.  A lost connection (the
 * test terminates sessions and crashes the server) ends the connection;
 * any other error is logged: the test counts them.
 */
static PGresult *
run(const char *sql, int nparams, const char *const *params)
{
	PGresult   *res;
	const char *state;

	if (conn == NULL)
		return NULL;
	res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
		PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		PQfinish(conn);
		conn = NULL;
	}
	else if (state && strncmp(state, "57P0", 4) != 0 &&
			 strcmp(state, "25P02") != 0)
	{
		/* 57P0x: terminated or shutting down; 25P02: after such an error */
		fprintf(error_log, "%s\t%s\t%s", state, sql,
				PQresultErrorMessage(res));
		fflush(error_log);
	}
	PQclear(res);
	return NULL;
}

static bool
run_ok(const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = run(sql, nparams, params);

	PQclear(res);
	return res != NULL;
}

/* End the transaction: commit unless abort (or an error came). */
static void
finish(bool ok, bool abort)
{
	if (conn == NULL)
		return;
	if (ok && !abort)
		run_ok("COMMIT", 0, NULL);
	else
		run_ok("ROLLBACK", 0, NULL);
}

static void
fmt(char *buf, size_t size, const char *f,...)
{
	va_list		ap;

	va_start(ap, f);
	vsnprintf(buf, size, f, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ producers */

/*
 * One transaction: send one message (now or delayed), a batch, an ordered
 * message, or a half message with the producer's intent, each recorded in
 * the same transaction; 15 % of them roll back.
 */
static void
produce(void)
{
	char		delay[32], key[8], intent[16], n[8];
	const char *p[3];
	bool		ok;
	int			what = pick(100);

	if (!run_ok("BEGIN", 0, NULL))
		return;
	if (what < 35)
	{
		fmt(delay, sizeof(delay), "%d ms", pick(4) == 0 ? pick(800) : 0);
		p[0] = delay;
		ok = run_ok("INSERT INTO model.sent (msg_id, topic)"
					" SELECT txmq.send('mt', '{\"p\": 1}', delay => $1::interval), 'mt'",
					1, p);
	}
	else if (what < 50)
	{
		fmt(n, sizeof(n), "%d", 1 + pick(5));
		p[0] = n;
		ok = run_ok("INSERT INTO model.sent (msg_id, topic)"
					" SELECT id, 'mt' FROM txmq.send_batch('mt',"
					" array_fill('{\"b\": 1}'::jsonb, ARRAY[$1::int])) id",
					1, p);
	}
	else if (what < 80)
	{
		/* a key has one producer (roles 0 and 1): see README, "Limits" */
		fmt(key, sizeof(key), "k%d", proc_no * 5 + 1 + pick(5));
		p[0] = key;
		ok = run_ok("INSERT INTO model.sent (msg_id, topic, key)"
					" SELECT txmq.send('mo', '{\"o\": 1}', key => $1), 'mo', $1",
					1, p);
	}
	else
	{
		int			i = pick(10);

		strcpy(intent, i < 5 ? "commit" : i < 8 ? "rollback" : "unknown");
		p[0] = intent;
		ok = run_ok("INSERT INTO model.half (msg_id, intent)"
					" SELECT txmq.send_half('mt', '{\"h\": 1}',"
					" producer_group => 'model'), $1",
					1, p);
	}
	finish(ok, pick(100) < 15);
}

static void
producer(void)
{
	while (now_s() < deadline)
	{
		if (conn == NULL)
			connect_db();
		produce();
		sleep_ms(pick(40));
	}
}

/*
 * Resolve some half messages as their producer meant to, each in its own
 * transaction with its record; the others are left to check-back.
 */
static void
half_resolver(void)
{
	while (now_s() < deadline)
	{
		PGresult   *res;

		if (conn == NULL)
			connect_db();
		res = run("SELECT h.msg_id, h.intent FROM model.half h"
				  " WHERE h.intent <> 'unknown' AND random() < 0.7"
				  " AND NOT EXISTS (SELECT FROM model.resolved r"
				  "  WHERE r.msg_id = h.msg_id) LIMIT 5", 0, NULL);
		for (int i = 0; res && i < PQntuples(res); i++)
		{
			const char *p[2] = {PQgetvalue(res, i, 0), PQgetvalue(res, i, 1)};
			bool		ok;

			if (!run_ok("BEGIN", 0, NULL))
				break;
			ok = run_ok(strcmp(p[1], "commit") == 0 ?
						"SELECT txmq.commit_half($1::bigint), $2" :
						"SELECT txmq.rollback_half($1::bigint), $2", 2, p) &&
				run_ok("INSERT INTO model.resolved VALUES ($1, $2)", 2, p);
			finish(ok, pick(100) < 10);
		}
		PQclear(res);
		sleep_ms(100 + pick(400));
	}
}

/* ------------------------------------------------------------ consumers */

/* Receive in the open transaction; log every delivery given. */
static PGresult *
receive(const char *topic, const char *sub, int max, const char *lease)
{
	char		n[8];
	const char *p[4] = {topic, sub, n, lease};
	PGresult   *res;

	fmt(n, sizeof(n), "%d", max);
	res = run("SELECT msg_id, attempt, pg_postmaster_start_time(),"
			  " clock_timestamp()"
			  " FROM txmq.receive($1, $2, $3::int, $4::interval, '100 ms')",
			  4, p);
	for (int i = 0; res && i < PQntuples(res); i++)
		fprintf(seen_log, "%s\t%s\t%s\t%s\t%s\n", sub, PQgetvalue(res, i, 0),
				PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
				PQgetvalue(res, i, 3));
	fflush(seen_log);
	return res;
}

/* Record a committed delivery of msg_id (in the receiving transaction). */
static bool
record_delivery(const char *sub, const char *msg_id, const char *attempt)
{
	const char *p[3] = {sub, msg_id, attempt};

	return run_ok("INSERT INTO model.delivery VALUES"
				  " ($1, $2, $3, nextval('model.seq'))", 3, p);
}

/*
 * Transactional mode: receive, do the work (the effect row), ack, in one
 * transaction; or nack, or reject, or fail so that everything rolls back.
 */
static void
consume_in_transaction(const char *topic, const char *sub)
{
	PGresult   *res;
	bool		ok = true;
	bool		abort = false;

	if (!run_ok("BEGIN", 0, NULL))
		return;
	res = receive(topic, sub, 1 + pick(5), NULL);
	ok = res != NULL;
	for (int i = 0; ok && i < PQntuples(res); i++)
	{
		const char *p[3] = {topic, sub, PQgetvalue(res, i, 0)};
		int			what = pick(100);

		ok = record_delivery(sub, p[2], PQgetvalue(res, i, 1));
		if (!ok)
			break;
		if (what < 75)
			ok = run_ok("INSERT INTO model.effect VALUES"
						" ($1, $2, nextval('model.seq'))", 2, p + 1) &&
				run_ok("INSERT INTO model.settled SELECT $2, $3, 'ack'"
					   " WHERE txmq.ack($1, $2, $3::bigint)", 3, p);
		else if (what < 85)
			ok = run_ok(pick(2) ? "SELECT txmq.nack($1, $2, $3::bigint, '0')" :
						"SELECT txmq.nack($1, $2, $3::bigint)", 3, p);
		else if (what < 90)
			ok = run_ok("INSERT INTO model.settled SELECT $2, $3, 'reject'"
						" WHERE txmq.reject($1, $2, $3::bigint, 'poison')",
						3, p);
		else
			abort = true;		/* the work failed */
	}
	PQclear(res);
	finish(ok, abort);
}

static void
transactional_consumer(void)
{
	while (now_s() < deadline)
	{
		if (conn == NULL)
			connect_db();
		consume_in_transaction("mt", "a1");
		consume_in_transaction("mo", "mo");
	}
}

/*
 * Lease mode: receive in a transaction of its own with a short lease, then
 * work outside the database (sometimes longer than the lease), then ack,
 * nack, reject or extend the lease, each its own transaction; or forget
 * the message and let the lease run out.
 */
static void
lease_consumer(void)
{
	while (now_s() < deadline)
	{
		PGresult   *res;
		char		lease[32];
		bool		ok;
		int			n;
		char		ids[5][24];

		if (conn == NULL)
			connect_db();
		if (!run_ok("BEGIN", 0, NULL))
			continue;
		fmt(lease, sizeof(lease), "%d ms", 200 + pick(800));
		res = receive("mt", "a2", 1 + pick(5), lease);
		ok = res != NULL;
		n = res ? PQntuples(res) : 0;
		for (int i = 0; ok && i < n; i++)
		{
			snprintf(ids[i], sizeof(ids[i]), "%s", PQgetvalue(res, i, 0));
			ok = record_delivery("a2", ids[i], PQgetvalue(res, i, 1));
		}
		PQclear(res);
		finish(ok, pick(100) < 5);
		if (!ok || n == 0)
			continue;
		sleep_ms(pick(900));	/* the work */
		for (int i = 0; i < n && conn != NULL; i++)
		{
			const char *p[3] = {"mt", "a2", ids[i]};
			int			what = pick(100);

			if (what < 10)
				run_ok("SELECT txmq.extend_lease($1, $2, $3::bigint, '1 s')",
					   3, p);
			if (what < 75)
				run_ok("INSERT INTO model.settled SELECT $2, $3, 'ack'"
					   " WHERE txmq.ack($1, $2, $3::bigint)", 3, p);
			else if (what < 85)
				run_ok("SELECT txmq.nack($1, $2, $3::bigint)", 3, p);
			else if (what < 90)
				run_ok("INSERT INTO model.settled SELECT $2, $3, 'reject'"
					   " WHERE txmq.reject($1, $2, $3::bigint)", 3, p);
			/* else: forgotten, the lease runs out */
		}
	}
}

/*
 * Now and then redrive some of a subscription's dead letters, recording
 * which: those it read, by id (others may arrive meanwhile).  Only this
 * process takes messages out of the dead letters, so all of them go.
 */
static void
redriver(void)
{
	static const char *const subs[3][2] = {{"mt", "a1"}, {"mt", "a2"},
	{"mo", "mo"}};

	while (now_s() < deadline)
	{
		const char *const *s = subs[pick(3)];
		PGresult   *ids;
		PGresult   *all;
		bool		ok;

		sleep_ms(1000 + pick(2000));
		if (conn == NULL)
			connect_db();
		if (!run_ok("BEGIN", 0, NULL))
			continue;
		ids = run("SELECT array_agg(msg_id)::text FROM txmq.dead_letters($1, $2)",
				  2, (const char *[]) {s[0], s[1]});
		ok = ids != NULL;
		if (ok && !PQgetisnull(ids, 0, 0))
		{
			const char *p[3] = {s[0], s[1], PQgetvalue(ids, 0, 0)};

			all = run("SELECT txmq.redrive($1, $2, $3::bigint[])"
					  " = cardinality($3::bigint[])", 3, p);
			ok = all != NULL;
			if (ok && strcmp(PQgetvalue(all, 0, 0), "t") != 0)
			{
				fprintf(error_log, "redrive of %s did not take all of them\n",
						p[2]);
				fflush(error_log);
				ok = false;
			}
			ok = ok && run_ok("INSERT INTO model.redriven"
							  " SELECT $1, unnest($2::bigint[]), now()",
							  2, p + 1);
			PQclear(all);
		}
		PQclear(ids);
		finish(ok, false);
	}
}

/* ----------------------------------------------------------------- main */

static const RoleFn roles[] = {
	producer, producer, half_resolver, transactional_consumer,
	transactional_consumer, lease_consumer, lease_consumer, redriver
};

#define NROLES (sizeof(roles) / sizeof(roles[0]))

static FILE *
open_log(const char *dir, const char *name, int n)
{
	char		path[1024];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s.%d", dir, name, n);
	f = fopen(path, "w");
	if (f == NULL)
	{
		perror(path);
		exit(2);
	}
	return f;
}

int
main(int argc, char **argv)
{
	int			failed = 0;

	if (argc != 5)
	{
		fprintf(stderr, "usage: model CONNINFO SEED SECONDS OUTDIR\n");
		return 2;
	}
	conninfo = argv[1];
	deadline = now_s() + atof(argv[3]);
	for (int i = 0; i < (int) NROLES; i++)
	{
		pid_t		pid = fork();

		if (pid < 0)
		{
			perror("fork");
			return 2;
		}
		if (pid == 0)
		{
			proc_no = i;
			rng = strtoull(argv[2], NULL, 10) * 1000 + i;
			seen_log = open_log(argv[4], "seen", i);
			error_log = open_log(argv[4], "errors", i);
			roles[i] ();
			PQfinish(conn);
			fclose(seen_log);
			fclose(error_log);
			_exit(0);
		}
	}
	for (int i = 0; i < (int) NROLES; i++)
	{
		int			status;

		if (wait(&status) < 0 || !WIFEXITED(status) ||
			WEXITSTATUS(status) != 0)
			failed++;
	}
	return failed ? 1 : 0;
}
