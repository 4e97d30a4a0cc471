/*-------------------------------------------------------------------------
 *
 * commands.c
 *	  txmqctl's commands but top: topics, peek, send, consume,
 *	  dead-letters, redrive, purge, half.  Each runs txmq's SQL functions
 *	  and views (README "Function reference") with its arguments as
 *	  parameters.
 *
 *-------------------------------------------------------------------------
 */
#include "txmqctl.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Print sql's rows: a table, or one JSON document. */
static int
list(PGconn *conn, const Options *opts, const char *sql, int nparams,
	 const char *const *params)
{
	PGresult   *res;

	if (opts->json)
		return print_json_document(conn, sql, nparams, params);
	res = run_sql(conn, sql, nparams, params);
	print_table(res);
	PQclear(res);
	flush_stdout();
	return EXIT_OK;
}

/* Print the single count sql returns, as "what: N" or {"what": N}. */
static int
print_count(PGconn *conn, const Options *opts, const char *what,
			const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = run_sql(conn, sql, nparams, params);

	if (opts->json)
		printf("{\"%s\": %s}\n", what, PQgetvalue(res, 0, 0));
	else
		printf("%s: %s\n", what, PQgetvalue(res, 0, 0));
	PQclear(res);
	flush_stdout();
	return EXIT_OK;
}

static int
cmd_topics(PGconn *conn, const Options *opts)
{
	/* half_pending and sent are the topic's, on each of its rows */
	return list(conn, opts,
				"SELECT topic,"
				" pg_catalog.count(subscription) AS subscriptions,"
				" pg_catalog.sum(ready)::bigint AS ready,"
				" pg_catalog.sum(delayed)::bigint AS delayed,"
				" pg_catalog.sum(in_flight)::bigint AS in_flight,"
				" pg_catalog.sum(dead)::bigint AS dead,"
				" pg_catalog.max(half_pending) AS half_pending,"
				" pg_catalog.date_trunc('second',"
				"  pg_catalog.max(oldest_ready_age)) AS oldest_ready_age,"
				" pg_catalog.max(sent) AS sent"
				" FROM txmq.stats WHERE topic IS NOT NULL"
				" GROUP BY topic ORDER BY topic",
				0, NULL);
}

static int
cmd_peek(PGconn *conn, const Options *opts)
{
	char		n[32];
	const char *params[3] = {opts->args[0], opts->args[1], n};

	snprintf(n, sizeof(n), "%ld", opts->max > 0 ? opts->max : 10);
	return list(conn, opts,
				"SELECT msg_id, attempt, created_at, key, headers, payload,"
				" last_error FROM txmq.peek($1, $2, $3)",
				3, params);
}

static int
cmd_half(PGconn *conn, const Options *opts)
{
	const char *params[1] = {opts->nargs > 0 ? opts->args[0] : NULL};

	return list(conn, opts,
				"SELECT msg_id, topic, producer_group, key, local_xid,"
				" created_at, check_count, last_result, next_check_at"
				" FROM txmq.half_messages($1) ORDER BY msg_id",
				1, params);
}

static int
cmd_dead_letters(PGconn *conn, const Options *opts)
{
	const char *params[3] = {opts->args[0], opts->args[1], opts->show};
	PGresult   *res;

	if (opts->show == NULL)
		return list(conn, opts,
					"SELECT msg_id, attempts, dead_at, key, last_error, payload"
					" FROM txmq.dead_letters($1, $2) ORDER BY msg_id",
					2, params);
	parse_count("--show", opts->show, 1, LONG_MAX);
	res = run_sql(conn,
				  "SELECT d.msg_id, d.attempts, d.dead_at, d.key, d.headers,"
				  " d.last_error, d.payload,"
				  " pg_catalog.row_to_json(d) AS json"
				  " FROM txmq.dead_letters($1, $2) d"
				  " WHERE d.msg_id OPERATOR(pg_catalog.=) $3::bigint",
				  3, params);
	if (PQntuples(res) == 0)
		fatal(EXIT_DECLINED,
			  "no dead letter %s in subscription \"%s\" of topic \"%s\"",
			  opts->show, opts->args[1], opts->args[0]);
	/* the last column is the JSON document of the others */
	if (opts->json)
		printf("%s\n", PQgetvalue(res, 0, PQnfields(res) - 1));
	else
		print_record(res, 0, PQnfields(res) - 1);
	PQclear(res);
	flush_stdout();
	return EXIT_OK;
}

/* An array literal of the n integers in ids: {1,2,3}; NULL for none. */
static char *
id_array(char *const *ids, int n)
{
	char	   *s;
	size_t		len = 3;

	if (n == 0)
		return NULL;
	for (int i = 0; i < n; i++)
		len += strlen(ids[i]) + 1;
	s = malloc(len);
	strcpy(s, "{");
	for (int i = 0; i < n; i++)
	{
		strcat(s, ids[i]);
		strcat(s, i + 1 < n ? "," : "}");
	}
	return s;
}

static int
cmd_redrive(PGconn *conn, const Options *opts)
{
	const char *params[3] = {opts->args[0], opts->args[1], NULL};

	/* an id typed wrong is a usage error, not the server's */
	for (int i = 2; i < opts->nargs; i++)
		parse_count("a message id", opts->args[i], 1, LONG_MAX);
	params[2] = id_array(opts->args + 2, opts->nargs - 2);

	return print_count(conn, opts, "redriven",
					   "SELECT txmq.redrive($1, $2, $3::bigint[])", 3, params);
}

/*
 * purge deletes messages: it asks on a terminal, and without one it wants
 * --yes.
 */
static int
cmd_purge(PGconn *conn, const Options *opts)
{
	const char *params[2] = {opts->args[0],
	opts->nargs > 1 ? opts->args[1] : NULL};

	if (!opts->yes)
	{
		char		answer[16] = "";

		if (!isatty(STDIN_FILENO))
			fatal(EXIT_USAGE,
				  "purge deletes messages: confirm with --yes (standard input is not a terminal)");
		if (params[1])
			fprintf(stderr, "Delete every queued message and dead letter of subscription \"%s\" of topic \"%s\"? [y/N] ",
					params[1], params[0]);
		else
			fprintf(stderr, "Delete every queued message and dead letter of every subscription of topic \"%s\"? [y/N] ",
					params[0]);
		if (fgets(answer, sizeof(answer), stdin) == NULL ||
			(strcmp(answer, "y\n") != 0 && strcmp(answer, "yes\n") != 0))
			fatal(EXIT_DECLINED, "not purged");
	}
	return print_count(conn, opts, "purged",
					   "SELECT txmq.purge($1, $2)", 2, params);
}

/* ---- send ---- */

/* The lines of one batch from stdin, and where they start */
typedef struct Batch
{
	char	  **lines;
	long	   *lineno;
	long		n;
} Batch;

/* Read up to max non-blank lines into b; false at the end of input. */
static bool
read_batch(Batch *b, long max, long *lineno)
{
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;

	b->n = 0;
	while (b->n < max && (len = getline(&line, &cap, stdin)) >= 0)
	{
		(*lineno)++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (strspn(line, " \t") == (size_t) len)
			continue;
		b->lines[b->n] = line;
		b->lineno[b->n++] = *lineno;
		line = NULL;
		cap = 0;
	}
	free(line);
	return b->n > 0;
}

/* b's lines as a text[] literal: each element quoted, " and \ escaped */
static char *
text_array(const Batch *b)
{
	size_t		len = 3;
	char	   *s;
	char	   *p;

	for (long i = 0; i < b->n; i++)
		len += 2 * strlen(b->lines[i]) + 3;
	p = s = malloc(len);
	*p++ = '{';
	for (long i = 0; i < b->n; i++)
	{
		if (i > 0)
			*p++ = ',';
		*p++ = '"';
		for (const char *c = b->lines[i]; *c; c++)
		{
			if (*c == '"' || *c == '\\')
				*p++ = '\\';
			*p++ = *c;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return s;
}

/*
 * send_batch failed (res): tell which line, if one is not JSON the server
 * accepts, with the server's words; else the batch's error.
 */
static void
batch_error(PGconn *conn, const Batch *b, const PGresult *res)
{
	char		where[64];

	for (long i = 0; i < b->n; i++)
	{
		const char *params[1] = {b->lines[i]};
		PGresult   *r = try_sql(conn, "SELECT $1::jsonb", 1, params);

		if (!sql_ok(r))
		{
			snprintf(where, sizeof(where), "standard input, line %ld",
					 b->lineno[i]);
			server_error(r, where);
			PQclear(r);
			return;
		}
		PQclear(r);
	}
	snprintf(where, sizeof(where), "standard input, lines %ld-%ld",
			 b->lineno[0], b->lineno[b->n - 1]);
	server_error(res, where);
}

static int
cmd_send(PGconn *conn, const Options *opts)
{
	Batch		b;
	long		lineno = 0;
	long		sent = 0;

	b.lines = malloc(sizeof(char *) * opts->batch);
	b.lineno = malloc(sizeof(long) * opts->batch);
	while (read_batch(&b, opts->batch, &lineno))
	{
		char	   *array = text_array(&b);
		const char *params[2] = {opts->args[0], array};
		PGresult   *res = try_sql(conn,
								  "SELECT txmq.send_batch($1, $2::jsonb[])",
								  2, params);

		if (!sql_ok(res))
		{
			batch_error(conn, &b, res);
			if (b.n == 1)
				fprintf(stderr, "%s: line %ld was not sent; the %ld message(s) before it were\n",
						progname, b.lineno[0], sent);
			else
				fprintf(stderr, "%s: lines %ld-%ld were not sent; the %ld message(s) before them were\n",
						progname, b.lineno[0], b.lineno[b.n - 1], sent);
			exit(EXIT_SERVER);
		}
		for (int i = 0; i < PQntuples(res); i++)
		{
			if (opts->json)
				printf("{\"line\": %ld, \"msg_id\": %s}\n", b.lineno[i],
					   PQgetvalue(res, i, 0));
			else
				printf("%s\n", PQgetvalue(res, i, 0));
		}
		sent += PQntuples(res);
		flush_stdout();
		PQclear(res);
		free(array);
		for (long i = 0; i < b.n; i++)
			free(b.lines[i]);
	}
	return EXIT_OK;
}

/* ---- consume ---- */

static void
exec_or_die(PGconn *conn, const char *sql)
{
	PQclear(run_sql(conn, sql, 0, NULL));
}

/*
 * Receive up to max messages, print them, ack them: in one transaction
 * (a failure before the commit gives them back at once), or with
 * --lease, leased first and acked once printed.  Returns how many.
 */
static int
consume_once(PGconn *conn, const Options *opts, long max)
{
	char		n[32];
	const char *params[4] = {opts->args[0], opts->args[1], n, opts->lease};
	PGresult   *res;
	char	  **ids;
	int			got;

	snprintf(n, sizeof(n), "%ld", max);
	if (opts->lease == NULL)
		exec_or_die(conn, "BEGIN");
	res = run_sql(conn,
				  "SELECT d.msg_id, d.attempt, d.key, d.payload,"
				  " pg_catalog.row_to_json(d)"
				  " FROM txmq.receive($1, $2, $3::int, $4::interval) d",
				  4, params);
	got = PQntuples(res);
	ids = malloc(sizeof(char *) * (got + 1));
	for (int i = 0; i < got; i++)
	{
		ids[i] = PQgetvalue(res, i, 0);
		if (opts->json)
			printf("%s\n", PQgetvalue(res, i, 4));
		else
		{
			printf("msg_id=%s attempt=%s", PQgetvalue(res, i, 0),
				   PQgetvalue(res, i, 1));
			if (!PQgetisnull(res, i, 2))
				printf(" key=%s", PQgetvalue(res, i, 2));
			printf(" payload=%s\n", PQgetvalue(res, i, 3));
		}
	}
	/* printed, or not acked */
	flush_stdout();
	if (got > 0)
	{
		params[2] = id_array(ids, got);
		PQclear(run_sql(conn, "SELECT txmq.ack($1, $2, $3::bigint[])", 3,
						params));
		free((char *) params[2]);
	}
	if (opts->lease == NULL)
		exec_or_die(conn, "COMMIT");
	free(ids);
	PQclear(res);
	return got;
}

static int
cmd_consume(PGconn *conn, const Options *opts)
{
	const char *params[2] = {opts->args[0], opts->args[1]};
	long		done = 0;

	for (;;)
	{
		long		want = 100;
		int			got;

		if (opts->max > 0 && opts->max - done < want)
			want = opts->max - done;
		if (want == 0)
			break;
		got = consume_once(conn, opts, want);
		done += got;
		if (got > 0)
			continue;
		if (!opts->follow)
			break;
		/* the long poll that holds no snapshot while it waits */
		PQclear(run_sql(conn, "CALL txmq.wait($1, $2, '20 s')", 2, params));
	}
	return EXIT_OK;
}

const Command txmqctl_commands[] = {
	{"top", "[-i SECONDS] [--once]",
		"A live view of every topic and subscription you may see, sorted by\n"
		"backlog (ready + delayed + in flight): ready, delayed, in flight, dead,\n"
		"half messages pending, the oldest ready message's age, and sent/s and\n"
		"acked/s between two refreshes; the header says whether the database's\n"
		"worker runs.  It refreshes every -i SECONDS (default 1) and quits on q\n"
		"(or Ctrl-C).  --once prints one frame (two samples -i apart, for the\n"
		"rates) and exits; --json prints each refresh as a JSON line instead.",
	0, 0, " interval once ", cmd_top},
	{"topics", "",
		"Every topic you may see, with its subscriptions and their counts summed\n"
		"(txmq.stats).",
	0, 0, " ", cmd_topics},
	{"peek", "TOPIC SUB [-n N]",
		"The next N (default 10) messages a receive of SUB would deliver, in\n"
		"its order, without receiving them (txmq.peek; needs receive rights).",
	2, 2, " n ", cmd_peek},
	{"send", "TOPIC [--batch N]",
		"Send one message per line of standard input (JSON, blank lines skipped),\n"
		"N lines per transaction (default 1, txmq.send_batch); prints each\n"
		"msg_id.  A line that is not JSON stops it with the line's number: nothing\n"
		"of its batch is sent, the batches before it are.",
	1, 1, " batch ", cmd_send},
	{"consume", "TOPIC SUB [--lease INTERVAL] [--follow] [--max N]",
		"Receive, print and ack messages until SUB has none ready (--follow:\n"
		"wait for more with CALL txmq.wait, until interrupted), at most N.\n"
		"Without --lease each batch is received, printed and acked in one\n"
		"transaction; with --lease it is leased for INTERVAL, printed, then\n"
		"acked.  Messages printed but not yet acked when it is interrupted come\n"
		"back: at once, or when their lease runs out.",
	2, 2, " lease follow max ", cmd_consume},
	{"dead-letters", "TOPIC SUB [--show ID]",
		"SUB's dead letters, or with --show the one with msg_id ID in full.",
	2, 2, " show ", cmd_dead_letters},
	{"redrive", "TOPIC SUB [ID ...]",
		"Put SUB's dead letters (all, or those IDs) back into the queue.",
	2, INT_MAX, " ", cmd_redrive},
	{"purge", "TOPIC [SUB] [--yes]",
		"Delete the queued messages and dead letters of SUB, or of every\n"
		"subscription of TOPIC.  Asks first on a terminal; --yes does not ask,\n"
		"and is needed when standard input is not a terminal.",
	1, 2, " yes ", cmd_purge},
	{"half", "[TOPIC]",
		"Unresolved half messages (of TOPIC, or of every topic you may send to),\n"
		"with their check counts, last check result and next check.",
	0, 1, " ", cmd_half},
	{NULL}
};
