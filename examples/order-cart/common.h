/*
 * common.h: the little that order-service.c and cart-service.c share --
 * running SQL with libpq, printing what happens, and the seeded dice that
 * decide which failures to inject.
 */
#ifndef DEMO_COMMON_H
#define DEMO_COMMON_H

#include <stdbool.h>
#include <libpq-fe.h>

/* Name of this process in the output, e.g. "order-2" or "cart-tx-1". */
extern const char *me;

/* Print one line, prefixed with the time and `me`. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Like say(), but only with DEMO_VERBOSE=1 (the uneventful cases). */
void say_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Connect or exit. */
PGconn *db_connect(const char *conninfo);

/*
 * Run one statement with text parameters, given after cmd and ended by END
 * (a parameter may be NULL: SQL null).  Returns
 * the result, or NULL after an error, with the error message in *err when
 * err is given.  sql_must() exits the program on error instead.
 */
extern const char END[];
PGresult *sql_try(PGconn *conn, char **err, const char *cmd, ...);
PGresult *sql_must(PGconn *conn, const char *cmd, ...);

/*
 * Seeded dice: a number in [0, 1) that depends only on (seed, what, key,
 * try), so a run with the same DEMO_SEED injects the same failures into the
 * same orders whatever the timing.  chance() is dice() < p.
 */
double dice(unsigned seed, const char *what, long key, int try);
bool chance(unsigned seed, const char *what, long key, int try, double p);

/* DEMO_FAILURES=0: inject nothing (the throughput runs); chance() is false. */
bool failures_off(void);

/*
 * The failure we inject: SIGKILL ourselves, at once, without cleaning up --
 * like the OOM killer or a pulled plug would.
 */
void crash_now(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

#endif
