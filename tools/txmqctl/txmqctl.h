/*-------------------------------------------------------------------------
 *
 * txmqctl.h
 *	  txmqctl, the operator's command for txmq: declarations shared by its
 *	  files.
 *
 *   txmqctl.c   main: options, the connection, running statements,
 *	             errors, the output formats
 *   commands.c  topics, peek, send, consume, dead-letters, redrive,
 *	             purge, half
 *   top.c       top: the live view
 *
 * Every command runs fixed statements on txmq's SQL functions and views,
 * with what the user typed passed as parameters ($1 ...), never spliced
 * into SQL.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TXMQCTL_H
#define TXMQCTL_H

#include <stdbool.h>
#include <stdio.h>

#include "libpq-fe.h"

#define TXMQCTL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Exit codes (README "Operating txmq") */
#define EXIT_OK 0
#define EXIT_SERVER 1			/* an error from the server, or output failed */
#define EXIT_USAGE 2			/* bad arguments or input */
#define EXIT_CONNECT 3			/* could not connect */
#define EXIT_DECLINED 4			/* purge not confirmed, --show ID not found */

/* The options of every command; a command uses those it needs. */
typedef struct Options
{
	bool		json;
	bool		once;			/* top */
	bool		follow;			/* consume */
	bool		yes;			/* purge */
	double		interval;		/* top: seconds between refreshes */
	long		max;			/* peek -n, consume --max (0: none) */
	long		batch;			/* send */
	const char *lease;			/* consume */
	const char *show;			/* dead-letters */
	int			nargs;			/* the command's arguments */
	char	  **args;
} Options;

/* A command: its name, usage, arguments and the options it accepts */
typedef struct Command
{
	const char *name;
	const char *usage;			/* arguments and options, for --help */
	const char *help;			/* what it does, one paragraph */
	int			min_args;
	int			max_args;
	const char *options;		/* the long options it takes, " a b " */
	int			(*run) (PGconn *conn, const Options *opts);
} Command;

extern const Command txmqctl_commands[];

/* txmqctl.c */
extern const char *progname;
extern void usage_error(const char *fmt,...) TXMQCTL_PRINTF(1, 2);
extern void fatal(int code, const char *fmt,...) TXMQCTL_PRINTF(2, 3);
extern PGresult *run_sql(PGconn *conn, const char *sql, int nparams,
						 const char *const *params);
extern PGresult *try_sql(PGconn *conn, const char *sql, int nparams,
						 const char *const *params);
extern bool sql_ok(const PGresult *res);
extern void server_error(const PGresult *res, const char *context);
extern void print_table(const PGresult *res);
extern void print_record(const PGresult *res, int row, int ncols);
extern int	print_json_document(PGconn *conn, const char *sql, int nparams,
								const char *const *params);
extern void json_string(FILE *out, const char *s);
extern void flush_stdout(void);
extern long parse_count(const char *what, const char *s, long min, long max);

/* top.c */
extern int	cmd_top(PGconn *conn, const Options *opts);

#endif							/* TXMQCTL_H */
