/*-------------------------------------------------------------------------
 *
 * txmqctl.c
 *	  txmqctl: look at and operate txmq's queues from the shell.
 *
 *	  txmqctl [CONNECTION OPTIONS] COMMAND [ARGUMENTS] [OPTIONS]
 *
 * It connects as psql does: -d takes a database name, a conninfo string
 * or a URI (PQconnectdbParams with expand_dbname), -h, -p and -U override
 * parts of it, and the PG* environment variables fill in the rest.  Every
 * error the server reports is printed in its own words with its SQLSTATE.
 *
 *-------------------------------------------------------------------------
 */
#include "txmqctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TXMQCTL_VERSION "0.4"

const char *progname = "txmqctl";

static void vreport(const char *fmt, va_list ap) TXMQCTL_PRINTF(1, 0);

static void
vreport(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* A usage error: say what is wrong and where help is, exit 2. */
void
usage_error(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
	exit(EXIT_USAGE);
}

void
fatal(int code, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
	exit(code);
}

/*
 * The server's error of res, as the server put it: severity, message and
 * SQLSTATE, then its detail and hint.  context (may be NULL) says which
 * input it was about.
 */
void
server_error(const PGresult *res, const char *context)
{
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY);
	const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);

	fprintf(stderr, "%s: %s%s", progname, context ? context : "",
			context ? ": " : "");
	if (message == NULL)
	{
		/* not from the server: the connection broke, say */
		fprintf(stderr, "%s", PQresultErrorMessage(res));
		return;
	}
	fprintf(stderr, "%s:  %s (SQLSTATE %s)\n", severity ? severity : "ERROR",
			message, sqlstate ? sqlstate : "?????");
	if (detail)
		fprintf(stderr, "DETAIL:  %s\n", detail);
	if (hint)
		fprintf(stderr, "HINT:  %s\n", hint);
}

/* Run sql with text parameters (NULL: SQL NULL); the caller checks. */
PGresult *
try_sql(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
}

bool
sql_ok(const PGresult *res)
{
	return PQresultStatus(res) == PGRES_TUPLES_OK ||
		PQresultStatus(res) == PGRES_COMMAND_OK;
}

/* Run sql with text parameters; on an error, print it and exit 1. */
PGresult *
run_sql(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = try_sql(conn, sql, nparams, params);

	if (!sql_ok(res))
	{
		server_error(res, NULL);
		exit(EXIT_SERVER);
	}
	return res;
}

static bool
is_numeric_type(Oid type)
{
	/* int2, int4, int8, oid, float4, float8, numeric */
	return type == 20 || type == 21 || type == 23 || type == 26 ||
		type == 700 || type == 701 || type == 1700;
}

/*
 * res as an aligned table: a header of column names, then a line per row,
 * numbers right-aligned, NULL empty.
 */
void
print_table(const PGresult *res)
{
	int			ncols = PQnfields(res);
	int			nrows = PQntuples(res);
	int		   *width = calloc(ncols, sizeof(int));

	for (int c = 0; c < ncols; c++)
	{
		width[c] = (int) strlen(PQfname(res, c));
		for (int r = 0; r < nrows; r++)
			if (PQgetlength(res, r, c) > width[c])
				width[c] = PQgetlength(res, r, c);
	}
	for (int r = -1; r < nrows; r++)
	{
		for (int c = 0; c < ncols; c++)
		{
			const char *v = r < 0 ? PQfname(res, c) : PQgetvalue(res, r, c);
			bool		last = c == ncols - 1;
			bool		right = r >= 0 && is_numeric_type(PQftype(res, c));

			if (right)
				printf("%*s%s", width[c], v, last ? "" : "  ");
			else if (last)
				printf("%s", v);
			else
				printf("%-*s  ", width[c], v);
		}
		putchar('\n');
	}
	free(width);
}

/* Row row of res, one "column: value" line for each of its first ncols. */
void
print_record(const PGresult *res, int row, int ncols)
{
	int			w = 0;

	for (int c = 0; c < ncols; c++)
		if ((int) strlen(PQfname(res, c)) > w)
			w = (int) strlen(PQfname(res, c));
	for (int c = 0; c < ncols; c++)
		printf("%-*s  %s\n", w + 1, PQfname(res, c), PQgetvalue(res, row, c));
}

/*
 * The rows of sql as one JSON document, an array of objects, built by the
 * server (json_agg), so that payloads and headers stay JSON.  sql is one
 * of the commands' fixed statements, never user input.
 */
int
print_json_document(PGconn *conn, const char *sql, int nparams,
					const char *const *params)
{
	static const char wrap[] =
		"SELECT COALESCE(pg_catalog.json_agg(q), '[]')"
		" FROM (%s) q";
	char	   *q = malloc(strlen(wrap) + strlen(sql));
	PGresult   *res;

	sprintf(q, wrap, sql);
	res = run_sql(conn, q, nparams, params);
	printf("%s\n", PQgetvalue(res, 0, 0));
	PQclear(res);
	free(q);
	flush_stdout();
	return EXIT_OK;
}

/* s as a JSON string, for the documents txmqctl builds itself (top). */
void
json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

/* Output that cannot be written is an error: a consumer must not ack it. */
void
flush_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		fatal(EXIT_SERVER, "could not write to standard output: %s",
			  strerror(errno));
}

/* s as an integer in [min, max], or a usage error naming what. */
long
parse_count(const char *what, const char *s, long min, long max)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		usage_error("%s must be an integer between %ld and %ld, not \"%s\"",
					what, min, max, s);
	return v;
}

static void
general_help(void)
{
	printf("%s looks at and operates txmq's queues.\n\n", progname);
	printf("Usage:\n  %s [CONNECTION OPTIONS] COMMAND [ARGUMENTS] [OPTIONS]\n\n",
		   progname);
	printf("Commands:\n");
	for (const Command *c = txmqctl_commands; c->name; c++)
		printf("  %-13s %s\n", c->name, c->usage);
	printf("\nOptions of every command:\n"
		   "  -d, --dbname=CONNINFO   database name, conninfo string or URI\n"
		   "  -h, --host=HOST         server host or socket directory\n"
		   "  -p, --port=PORT         server port\n"
		   "  -U, --username=USER     user name\n"
		   "      --json              output JSON (a document, or JSON lines for streams)\n"
		   "      --help              help (\"%s COMMAND --help\": the command's)\n"
		   "      --version           the version\n"
		   "The PG* environment variables (PGHOST, PGDATABASE ...) work as for psql.\n\n"
		   "Exit status: 0 done, 1 error from the server (SQLSTATE shown) or output\n"
		   "failed, 2 bad arguments or input, 3 no connection, 4 purge not confirmed\n"
		   "or dead letter not found.\n", progname);
}

static void
command_help(const Command *c)
{
	printf("Usage:\n  %s [CONNECTION OPTIONS] %s %s\n\n%s\n", progname,
		   c->name, c->usage, c->help);
	printf("\nSee \"%s --help\" for the connection options and exit codes.\n",
		   progname);
}

static PGconn *
connect_db(const char *dbname, const char *host, const char *port,
		   const char *user)
{
	/* dbname first: the parts given after it override its conninfo */
	const char *const keywords[] = {"dbname", "host", "port", "user",
	"fallback_application_name", NULL};
	const char *const values[] = {dbname, host, port, user, progname, NULL};
	PGconn	   *conn = PQconnectdbParams(keywords, values, 1);

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s: could not connect: %s", progname,
				PQerrorMessage(conn));
		exit(EXIT_CONNECT);
	}
	return conn;
}

/* The long options; a command accepts those its Command.options names. */
enum
{
	OPT_JSON = 256, OPT_HELP, OPT_VERSION, OPT_ONCE, OPT_MAX, OPT_BATCH,
	OPT_LEASE, OPT_FOLLOW, OPT_SHOW, OPT_YES
};

static const struct option long_options[] = {
	{"dbname", required_argument, NULL, 'd'},
	{"host", required_argument, NULL, 'h'},
	{"port", required_argument, NULL, 'p'},
	{"username", required_argument, NULL, 'U'},
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{"interval", required_argument, NULL, 'i'},
	{"once", no_argument, NULL, OPT_ONCE},
	{"max", required_argument, NULL, OPT_MAX},
	{"batch", required_argument, NULL, OPT_BATCH},
	{"lease", required_argument, NULL, OPT_LEASE},
	{"follow", no_argument, NULL, OPT_FOLLOW},
	{"show", required_argument, NULL, OPT_SHOW},
	{"yes", no_argument, NULL, OPT_YES},
	{NULL, 0, NULL, 0}
};

/* The name a command's options list uses for the option val */
static const char *
option_name(int val)
{
	if (val == 'n')
		return "n";
	for (const struct option *o = long_options; o->name; o++)
		if (o->val == val)
			return o->name;
	return "?";
}

static bool
is_connection_option(int val)
{
	return val == 'd' || val == 'h' || val == 'p' || val == 'U' ||
		val == OPT_JSON || val == OPT_HELP;
}

int
main(int argc, char **argv)
{
	const char *dbname = NULL;
	const char *host = NULL;
	const char *port = NULL;
	const char *user = NULL;
	bool		help = false;
	int			given[64];
	int			ngiven = 0;
	Options		opts = {0};
	const Command *cmd = NULL;
	PGconn	   *conn;
	int			c;
	int			rc;

	opts.interval = 1.0;
	opts.batch = 1;
	while ((c = getopt_long(argc, argv, "d:h:p:U:i:n:", long_options,
							NULL)) != -1)
	{
		char	   *end;

		if (c == '?')
			usage_error("unknown option or missing argument");
		if (ngiven < 64)
			given[ngiven++] = c;
		switch (c)
		{
			case 'd':
				dbname = optarg;
				break;
			case 'h':
				host = optarg;
				break;
			case 'p':
				port = optarg;
				break;
			case 'U':
				user = optarg;
				break;
			case OPT_JSON:
				opts.json = true;
				break;
			case OPT_HELP:
				help = true;
				break;
			case OPT_VERSION:
				printf("%s (txmq) %s\n", progname, TXMQCTL_VERSION);
				return EXIT_OK;
			case 'i':
				opts.interval = strtod(optarg, &end);
				if (end == optarg || *end != '\0' || !(opts.interval >= 0.1) ||
					opts.interval > 3600)
					usage_error("--interval must be between 0.1 and 3600 seconds, not \"%s\"",
								optarg);
				break;
			case OPT_ONCE:
				opts.once = true;
				break;
			case 'n':
			case OPT_MAX:
				opts.max = parse_count(c == 'n' ? "-n" : "--max", optarg,
									   1, 1000000000L);
				break;
			case OPT_BATCH:
				opts.batch = parse_count("--batch", optarg, 1, 1000000L);
				break;
			case OPT_LEASE:
				opts.lease = optarg;
				break;
			case OPT_FOLLOW:
				opts.follow = true;
				break;
			case OPT_SHOW:
				opts.show = optarg;
				break;
			case OPT_YES:
				opts.yes = true;
				break;
		}
	}
	if (optind >= argc)
	{
		if (help)
		{
			general_help();
			return EXIT_OK;
		}
		usage_error("no command given");
	}
	for (const Command *k = txmqctl_commands; k->name; k++)
		if (strcmp(k->name, argv[optind]) == 0)
			cmd = k;
	if (cmd == NULL)
		usage_error("unknown command \"%s\"", argv[optind]);
	if (help)
	{
		command_help(cmd);
		return EXIT_OK;
	}
	for (int i = 0; i < ngiven; i++)
	{
		char		word[32];

		snprintf(word, sizeof(word), " %s ", option_name(given[i]));
		if (!is_connection_option(given[i]) && !strstr(cmd->options, word))
			usage_error("%s does not take option %s%s", cmd->name,
						given[i] == 'n' ? "-" : "--", option_name(given[i]));
	}
	opts.args = argv + optind + 1;
	opts.nargs = argc - optind - 1;
	if (opts.nargs < cmd->min_args || opts.nargs > cmd->max_args)
		usage_error("usage: %s %s", cmd->name, cmd->usage);

	conn = connect_db(dbname, host, port, user);
	rc = cmd->run(conn, &opts);
	PQfinish(conn);
	return rc;
}
