/*-------------------------------------------------------------------------
 *
 * top.c
 *	  txmqctl top: a full-screen view of txmq.stats, refreshed every
 *	  interval, sorted by backlog, with the rates of the counters between
 *	  two refreshes.
 *
 * Plain ANSI escapes, no curses: the alternate screen, the cursor hidden,
 * each frame drawn from the top left.  The terminal is put in raw mode
 * (no echo, no line buffering; signals still work) so that q quits at
 * once, and restored however the view ends: q, SIGINT, SIGTERM, SIGHUP,
 * or an error (atexit).
 *
 *-------------------------------------------------------------------------
 */
#include "txmqctl.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define NAME_LEN 49				/* txmq names are 1-48 characters */

/* One row of txmq.stats, and the rates since the last sample */
typedef struct Queue
{
	char		topic[NAME_LEN];
	char		sub[NAME_LEN];	/* empty: a topic without subscriptions */
	long long	ready;
	long long	delayed;
	long long	in_flight;
	long long	dead;
	long long	half;
	double		oldest;			/* seconds; < 0: none ready */
	long long	sent;			/* < 0: not counted (NULL) */
	long long	acked;
	double		sent_rate;		/* NAN: not known */
	double		acked_rate;
} Queue;

typedef struct Sample
{
	Queue	   *q;
	int			n;
	bool		worker;
	double		at;				/* monotonic seconds */
	char		clock[32];		/* wall clock, for the header */
} Sample;

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long
count_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? -1 : atoll(PQgetvalue(res, row, col));
}

/* backlog first, then the oldest ready, then by name */
static int
by_backlog(const void *a, const void *b)
{
	const Queue *x = a;
	const Queue *y = b;
	long long	bx = x->ready + x->delayed + x->in_flight;
	long long	by = y->ready + y->delayed + y->in_flight;
	int			c;

	if (bx != by)
		return bx > by ? -1 : 1;
	if (x->oldest != y->oldest)
		return x->oldest > y->oldest ? -1 : 1;
	c = strcmp(x->topic, y->topic);
	return c != 0 ? c : strcmp(x->sub, y->sub);
}

/* rate of a counter between two samples dt apart: NAN when not known */
static double
rate(long long prev, long long cur, double dt)
{
	if (prev < 0 || cur < 0 || cur < prev || dt <= 0)
		return NAN;
	return (cur - prev) / dt;
}

static const Queue *
find_queue(const Sample *s, const Queue *q)
{
	for (int i = 0; s && i < s->n; i++)
		if (strcmp(s->q[i].topic, q->topic) == 0 &&
			strcmp(s->q[i].sub, q->sub) == 0)
			return &s->q[i];
	return NULL;
}

/*
 * Read txmq.stats into s, with the rates since prev (may be NULL); its
 * rows of the shared tables (topic null) are not queues.
 */
static void
take_sample(PGconn *conn, Sample *s, const Sample *prev)
{
	PGresult   *res = run_sql(conn,
							  "SELECT topic, COALESCE(subscription, ''),"
							  " ready, delayed, in_flight, dead, half_pending,"
							  " pg_catalog.date_part('epoch', oldest_ready_age),"
							  " sent, acked, worker_running FROM txmq.stats"
							  " WHERE topic IS NOT NULL",
							  0, NULL);
	time_t		t = time(NULL);

	s->at = now_seconds();
	s->n = PQntuples(res);
	s->q = calloc(s->n > 0 ? s->n : 1, sizeof(Queue));
	s->worker = false;
	strftime(s->clock, sizeof(s->clock), "%Y-%m-%d %H:%M:%S", localtime(&t));
	for (int i = 0; i < s->n; i++)
	{
		Queue	   *q = &s->q[i];
		const Queue *p;

		snprintf(q->topic, NAME_LEN, "%s", PQgetvalue(res, i, 0));
		snprintf(q->sub, NAME_LEN, "%s", PQgetvalue(res, i, 1));
		q->ready = atoll(PQgetvalue(res, i, 2));
		q->delayed = atoll(PQgetvalue(res, i, 3));
		q->in_flight = atoll(PQgetvalue(res, i, 4));
		q->dead = atoll(PQgetvalue(res, i, 5));
		q->half = atoll(PQgetvalue(res, i, 6));
		q->oldest = PQgetisnull(res, i, 7) ? -1 : atof(PQgetvalue(res, i, 7));
		q->sent = count_or_null(res, i, 8);
		q->acked = count_or_null(res, i, 9);
		s->worker = strcmp(PQgetvalue(res, i, 10), "t") == 0;
		p = find_queue(prev, q);
		q->sent_rate = p ? rate(p->sent, q->sent, s->at - prev->at) : NAN;
		q->acked_rate = p ? rate(p->acked, q->acked, s->at - prev->at) : NAN;
	}
	qsort(s->q, s->n, sizeof(Queue), by_backlog);
	PQclear(res);
}

static void
free_sample(Sample *s)
{
	free(s->q);
	s->q = NULL;
	s->n = 0;
}

/* An age in seconds as 45s, 12m05s, 3h07m, 2d04h; "-" for none. */
static void
format_age(char *buf, size_t len, double secs)
{
	long		s = (long) secs;

	if (secs < 0)
		snprintf(buf, len, "-");
	else if (s < 60)
		snprintf(buf, len, "%lds", s);
	else if (s < 3600)
		snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%ldh%02ldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
}

static void
format_rate(char *buf, size_t len, double r)
{
	if (isnan(r))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f", r);
}

/*
 * The frame of s as lines (each malloc'd, without newline), into lines[],
 * at most max; returns how many.
 */
static int
frame_lines(PGconn *conn, const Sample *s, double interval, char **lines,
			int max)
{
	int			tw = 5;
	int			sw = 12;
	int			n = 0;
	char		buf[512];

	for (int i = 0; i < s->n; i++)
	{
		if ((int) strlen(s->q[i].topic) > tw)
			tw = (int) strlen(s->q[i].topic);
		if ((int) strlen(s->q[i].sub) > sw)
			sw = (int) strlen(s->q[i].sub);
	}
	snprintf(buf, sizeof(buf),
			 "txmqctl top  %s@%s  %s  every %gs  worker: %s  (q quits)",
			 PQdb(conn), PQport(conn), s->clock, interval,
			 s->n == 0 ? "-" : s->worker ? "running" : "NOT RUNNING");
	lines[n++] = strdup(buf);
	lines[n++] = strdup("");
	snprintf(buf, sizeof(buf), "%-*s  %-*s  %9s  %9s  %9s  %7s  %7s  %7s  %8s  %8s",
			 tw, "TOPIC", sw, "SUBSCRIPTION", "READY", "DELAYED", "IN_FLIGHT",
			 "DEAD", "HALF", "OLDEST", "SENT/S", "ACKED/S");
	lines[n++] = strdup(buf);
	for (int i = 0; i < s->n && n < max; i++)
	{
		const Queue *q = &s->q[i];
		char		age[16];
		char		sr[16];
		char		ar[16];

		format_age(age, sizeof(age), q->oldest);
		format_rate(sr, sizeof(sr), q->sent_rate);
		format_rate(ar, sizeof(ar), q->acked_rate);
		snprintf(buf, sizeof(buf),
				 "%-*s  %-*s  %9lld  %9lld  %9lld  %7lld  %7lld  %7s  %8s  %8s",
				 tw, q->topic, sw, q->sub[0] ? q->sub : "-", q->ready,
				 q->delayed, q->in_flight, q->dead, q->half, age, sr, ar);
		lines[n++] = strdup(buf);
	}
	if (s->n == 0 && n < max)
		lines[n++] = strdup("(no topics you may see)");
	return n;
}

static void
print_number(double v)
{
	if (isnan(v))
		printf("null");
	else
		printf("%.3f", v);
}

/* s as one JSON document on one line */
static void
print_json_sample(const Sample *s)
{
	printf("{\"time\": ");
	json_string(stdout, s->clock);
	printf(", \"worker_running\": %s, \"queues\": [", s->worker ? "true" : "false");
	for (int i = 0; i < s->n; i++)
	{
		const Queue *q = &s->q[i];

		printf("%s{\"topic\": ", i > 0 ? ", " : "");
		json_string(stdout, q->topic);
		printf(", \"subscription\": ");
		if (q->sub[0])
			json_string(stdout, q->sub);
		else
			printf("null");
		printf(", \"ready\": %lld, \"delayed\": %lld, \"in_flight\": %lld,"
			   " \"dead\": %lld, \"half_pending\": %lld,"
			   " \"oldest_ready_age_seconds\": ",
			   q->ready, q->delayed, q->in_flight, q->dead, q->half);
		print_number(q->oldest < 0 ? NAN : q->oldest);
		printf(", \"sent_per_second\": ");
		print_number(q->sent_rate);
		printf(", \"acked_per_second\": ");
		print_number(q->acked_rate);
		printf("}");
	}
	printf("]}\n");
	flush_stdout();
}

static void
sleep_seconds(double secs)
{
	struct timespec ts = {(time_t) secs, (long) ((secs - (long) secs) * 1e9)};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* ---- the live view ---- */

static struct termios saved_tty;
static bool tty_raw;
static bool screen_on;
static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t resized;

static void
restore_terminal(void)
{
	if (screen_on)
	{
		/* the cursor back, the screen as it was before */
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
		screen_on = false;
	}
	if (tty_raw)
	{
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
		tty_raw = false;
	}
}

static void
on_signal(int sig)
{
	if (sig == SIGWINCH)
		resized = 1;
	else
		got_signal = sig;
}

/* Raw mode: keys one by one, no echo; Ctrl-C still signals. */
static void
start_screen(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: select returns */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
	atexit(restore_terminal);
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tty) == 0)
	{
		struct termios raw = saved_tty;

		raw.c_lflag &= ~(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0)
			tty_raw = true;
	}
	fputs("\033[?1049h\033[?25l", stdout);
	screen_on = true;
}

static void
draw(PGconn *conn, const Sample *s, double interval)
{
	struct winsize ws = {0};
	int			rows = 24;
	int			cols = 80;
	char	   *lines[1024];
	int			n;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
	{
		rows = ws.ws_row;
		cols = ws.ws_col;
	}
	n = frame_lines(conn, s, interval, lines, rows < 1024 ? rows : 1024);
	fputs("\033[H", stdout);
	for (int i = 0; i < n; i++)
	{
		printf("%.*s\033[K%s", cols, lines[i], i + 1 < n ? "\n" : "");
		free(lines[i]);
	}
	fputs("\033[J", stdout);
	flush_stdout();
}

/*
 * Wait until secs have passed, redrawing on a resize; true when the view
 * must end (q, or a signal).
 */
static bool
wait_key(PGconn *conn, const Sample *s, double interval, double secs)
{
	double		until = now_seconds() + secs;

	for (;;)
	{
		double		left = until - now_seconds();
		struct timeval tv;
		fd_set		fds;
		char		key;

		if (got_signal)
			return true;
		if (resized)
		{
			resized = 0;
			draw(conn, s, interval);
		}
		if (left <= 0)
			return false;
		tv.tv_sec = (long) left;
		tv.tv_usec = (long) ((left - (long) left) * 1e6);
		FD_ZERO(&fds);
		if (tty_raw)
			FD_SET(STDIN_FILENO, &fds);
		if (select(tty_raw ? STDIN_FILENO + 1 : 0, &fds, NULL, NULL, &tv) > 0 &&
			read(STDIN_FILENO, &key, 1) == 1 && (key == 'q' || key == 'Q'))
			return true;
	}
}

int
cmd_top(PGconn *conn, const Options *opts)
{
	Sample		prev = {0};
	Sample		cur = {0};

	if (opts->once)
	{
		/* two samples, for the rates */
		take_sample(conn, &prev, NULL);
		sleep_seconds(opts->interval);
		take_sample(conn, &cur, &prev);
		if (opts->json)
			print_json_sample(&cur);
		else
		{
			char	   *lines[1024];
			int			n = frame_lines(conn, &cur, opts->interval, lines, 1024);

			for (int i = 0; i < n; i++)
			{
				printf("%s\n", lines[i]);
				free(lines[i]);
			}
			flush_stdout();
		}
		return EXIT_OK;
	}
	if (!opts->json && !isatty(STDOUT_FILENO))
		fatal(EXIT_USAGE, "top needs a terminal: use --once or --json");
	if (!opts->json)
		start_screen();
	for (;;)
	{
		take_sample(conn, &cur, prev.q ? &prev : NULL);
		if (opts->json)
			print_json_sample(&cur);
		else
			draw(conn, &cur, opts->interval);
		free_sample(&prev);
		prev = cur;
		cur.q = NULL;
		if (opts->json)
			sleep_seconds(opts->interval);
		else if (wait_key(conn, &prev, opts->interval, opts->interval))
			break;
	}
	restore_terminal();
	if (got_signal)
	{
		/* end as the signal would have: the shell sees it */
		signal(got_signal, SIG_DFL);
		raise(got_signal);
	}
	return EXIT_OK;
}
