/* common.c: see common.h */
#include "common.h"

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

const char *me = "?";
const char END[] = "<end of parameters>";

static void vsay(const char *fmt, va_list ap)
{
	struct timeval tv;
	char stamp[16];

	gettimeofday(&tv, NULL);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&tv.tv_sec));
	printf("%s.%ld %-12s ", stamp, (long) tv.tv_usec / 100000, me);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
}

void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

void say_verbose(const char *fmt, ...)
{
	const char *v = getenv("DEMO_VERBOSE");
	va_list ap;

	if (v == NULL || strcmp(v, "1") != 0)
		return;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

PGconn *db_connect(const char *conninfo)
{
	PGconn *conn = PQconnectdb(conninfo);

	if (PQstatus(conn) != CONNECTION_OK)
	{
		say("cannot connect: %s", PQerrorMessage(conn));
		exit(1);
	}
	return conn;
}

static PGresult *vsql(PGconn *conn, char **err, const char *cmd, va_list ap)
{
	const char *params[16];
	int n = 0;
	const char *p;
	PGresult *res;
	ExecStatusType st;

	while ((p = va_arg(ap, const char *)) != END && n < 16)
		params[n++] = p;
	res = PQexecParams(conn, cmd, n, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	if (err)
	{
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		*err = strdup(msg ? msg : PQerrorMessage(conn));
	}
	PQclear(res);
	return NULL;
}

PGresult *sql_try(PGconn *conn, char **err, const char *cmd, ...)
{
	va_list ap;
	PGresult *res;

	va_start(ap, cmd);
	res = vsql(conn, err, cmd, ap);
	va_end(ap);
	return res;
}

PGresult *sql_must(PGconn *conn, const char *cmd, ...)
{
	va_list ap;
	PGresult *res;
	char *err = NULL;

	va_start(ap, cmd);
	res = vsql(conn, &err, cmd, ap);
	va_end(ap);
	if (res == NULL)
	{
		say("FATAL: %s\n    in: %s", err, cmd);
		exit(1);
	}
	return res;
}

/* FNV-1a, good enough to roll dice with. */
static uint64_t mix(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

double dice(unsigned seed, const char *what, long key, int try)
{
	uint64_t h = 14695981039346656037ULL;

	h = mix(h, &seed, sizeof(seed));
	h = mix(h, what, strlen(what));
	h = mix(h, &key, sizeof(key));
	h = mix(h, &try, sizeof(try));
	h ^= h >> 29;
	return (double) (h % 1000000) / 1000000.0;
}

bool failures_off(void)
{
	const char *v = getenv("DEMO_FAILURES");

	return v != NULL && strcmp(v, "0") == 0;
}

bool chance(unsigned seed, const char *what, long key, int try, double p)
{
	return !failures_off() && dice(seed, what, key, try) < p;
}

void crash_now(const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	say("SIGKILL %s", why);
	kill(getpid(), SIGKILL);
	abort();					/* not reached */
}
