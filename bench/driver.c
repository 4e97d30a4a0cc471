/*
 * driver.c -- libpq load driver for the txmq benchmark (bench/run.sh).
 *
 * Modes (one connection per thread):
 *   drain  : consumers drain a prefilled queue; each transaction receives up
 *            to --batch messages and acknowledges them (transactional mode).
 *   lease  : like drain, but receive (tx 1) and ack (tx 2) are separate
 *            transactions (lease mode).
 *   e2e    : --producers send 1 message per transaction (optionally paced to
 *            --rate msg/s in total) while --consumers receive batches of up
 *            to --batch and ack them; reports consumed msg/s and the latency
 *            from the message's creation timestamp (DB clock, inside the
 *            sending transaction) to the moment the receive returned it (DB
 *            clock, clock_timestamp() in the consumer's statement).
 *            With --interval S it also reports per-interval counts and p99
 *            latency and runs --size-sql at each interval boundary (soak, W7).
 *            With --hold S as well, a REPEATABLE READ transaction holds its
 *            snapshot (and so the xmin horizon) for the first S seconds, and
 *            the interval in which it ended is reported (W8).
 *
 * Output: key=value lines on stdout, parsed by run.sh.
 *
 * Systems: txmq, baseline, pgq (see README.md for the exact SQL).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define MAX_THREADS 64
#define MAX_INTERVALS 1024

static const char *conninfo = "";
static const char *mode = NULL;
static const char *sys = NULL;
static int	nprod = 0, ncons = 2, batch = 100;
static double seconds = 20, rate = 0, interval_s = 0, max_seconds = 600;
static double hold_s = 0;
static long expect = 0;
static const char *size_sql = NULL;

static const char *send_sql, *consume_sql, *lease_sql, *ack_sql;
/* e2e: txmq's long poll, "wait" (CALL txmq.wait when a receive was empty)
 * or "receive" (receive(..., wait => '1 s')) */
static const char *long_poll = "wait";
static const char *wait_sql;	/* after an empty receive, if not NULL */
static int	receive_waits;		/* the receive itself long-polls */

static double t0;
static atomic_int stop_flag;
static atomic_long consumed_total;
static atomic_long produced_total;
static atomic_long errors_total;
static atomic_long batches_total;	/* consumer calls that returned >= 1 message */
static double last_progress_t;		/* drain: time of last batch that consumed */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static long cons_bucket[MAX_INTERVALS];
static long prod_bucket[MAX_INTERVALS];
static char *size_at[MAX_INTERVALS + 1];

/* latency samples, all threads: when the receive returned, and ms */
typedef struct
{
	int			b;				/* interval (bucket_of), or -1 */
	double		ms;
} Sample;
static Sample *lat = NULL;
static size_t nlat = 0, caplat = 0;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t) s;
	ts.tv_nsec = (long) ((s - ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static PGconn *
connect_db(void)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "driver: connection failed: %s", PQerrorMessage(c));
		exit(2);
	}
	PQclear(PQexec(c, "SET application_name = 'txmq-bench'"));
	return c;
}

static void
report_error(const char *what, PGresult *r, PGconn *c)
{
	long		n = atomic_fetch_add(&errors_total, 1);

	if (n < 5)
		fprintf(stderr, "driver: %s failed: %s", what,
				r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	if (n > 1000)
	{
		fprintf(stderr, "driver: too many errors, giving up\n");
		atomic_store(&stop_flag, 1);
	}
}

/* ~200-byte order event */
static void
make_payload(char *buf, size_t len, long id)
{
	snprintf(buf, len,
			 "{\"event\": \"order.created\", \"order_id\": %ld, "
			 "\"customer_id\": %ld, \"items\": [{\"sku\": \"SKU-%05ld\", "
			 "\"qty\": 2, \"price\": 19.99}, {\"sku\": \"SKU-20002\", "
			 "\"qty\": 1, \"price\": 5.49}], \"currency\": \"EUR\", "
			 "\"total\": 45.47, \"source\": \"bench\"}",
			 id, id % 100000, id % 99999);
}

static int
bucket_of(double t)
{
	int			b;

	if (interval_s <= 0)
		return -1;
	b = (int) ((t - t0) / interval_s);
	if (b < 0 || b >= MAX_INTERVALS)
		return -1;
	return b;
}

/* ------------------------------------------------------------------ */

typedef struct
{
	int			idx;
	double		rate;			/* per-thread msg/s, 0 = unthrottled */
} ThreadArg;

static void *
producer(void *p)
{
	ThreadArg  *a = p;
	PGconn	   *c = connect_db();
	char		payload[512];
	const char *vals[1] = {payload};
	long		seq = (long) a->idx * 1000000000L;
	double		next = t0;
	double		end = t0 + seconds;

	while (!atomic_load(&stop_flag))
	{
		double		t = now_s();
		PGresult   *r;

		if (t >= end)
			break;
		if (a->rate > 0)
		{
			if (t < next)
			{
				sleep_s(next - t < end - t ? next - t : end - t);
				continue;
			}
			next += 1.0 / a->rate;
			/* never burst more than 1 s of backlog */
			if (next < t - 1.0)
				next = t - 1.0;
		}
		make_payload(payload, sizeof payload, ++seq);
		r = PQexecParams(c, send_sql, 1, NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK &&
			PQresultStatus(r) != PGRES_COMMAND_OK)
			report_error("send", r, c);
		else
		{
			double		te = now_s();
			int			b = bucket_of(te);

			if (te <= end)
				atomic_fetch_add(&produced_total, 1);
			if (b >= 0)
			{
				pthread_mutex_lock(&mu);
				prod_bucket[b]++;
				pthread_mutex_unlock(&mu);
			}
		}
		PQclear(r);
	}
	PQfinish(c);
	return NULL;
}

/* e2e consumer: consume_sql returns one row per message, column 0 = latency ms */
static void *
consumer_e2e(void *p)
{
	PGconn	   *c = connect_db();
	double		end = t0 + seconds;
	Sample	   *loc = NULL;
	size_t		nloc = 0, caploc = 0;

	(void) p;
	while (!atomic_load(&stop_flag))
	{
		PGresult   *r;
		int			n,
					i;
		double		te;

		if (now_s() >= end)
			break;
		r = PQexec(c, consume_sql);
		te = now_s();
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			report_error("consume", r, c);
			PQclear(r);
			sleep_s(0.01);
			continue;
		}
		n = PQntuples(r);
		if (n > 0 && te <= end)
		{
			int			b = bucket_of(te);

			atomic_fetch_add(&consumed_total, n);
			atomic_fetch_add(&batches_total, 1);
			if (nloc + n > caploc)
			{
				caploc = (nloc + n) * 2;
				loc = realloc(loc, caploc * sizeof(Sample));
			}
			for (i = 0; i < n; i++)
			{
				loc[nloc].b = b;
				loc[nloc++].ms = atof(PQgetvalue(r, i, 0));
			}
			if (b >= 0)
			{
				pthread_mutex_lock(&mu);
				cons_bucket[b] += n;
				pthread_mutex_unlock(&mu);
			}
		}
		else if (n > 0 && interval_s > 0)
		{
			/* completed after the end: not counted */
		}
		PQclear(r);
		if (n == 0 && wait_sql)
			PQclear(PQexec(c, wait_sql));
		else if (n == 0 && !receive_waits)
			sleep_s(0.010);		/* waiting consumers poll every 10 ms */
	}
	pthread_mutex_lock(&mu);
	if (nlat + nloc > caplat)
	{
		caplat = (nlat + nloc) * 2 + 1;
		lat = realloc(lat, caplat * sizeof(Sample));
	}
	if (nloc)
		memcpy(lat + nlat, loc, nloc * sizeof(Sample));
	nlat += nloc;
	pthread_mutex_unlock(&mu);
	free(loc);
	PQfinish(c);
	return NULL;
}

static void
note_progress(long n)
{
	double		t = now_s();

	atomic_fetch_add(&consumed_total, n);
	atomic_fetch_add(&batches_total, 1);
	pthread_mutex_lock(&mu);
	if (t > last_progress_t)
		last_progress_t = t;
	pthread_mutex_unlock(&mu);
}

/*
 * drain / lease consumer.  Stops when the whole prefill was consumed, when
 * nothing was received for 3 s (e.g. queue empty but fewer than expected),
 * or at --max-seconds.
 */
static void *
consumer_drain(void *p)
{
	PGconn	   *c = connect_db();
	double		idle_since = 0;
	int			lease = strcmp(mode, "lease") == 0;
	int			pgq = strcmp(sys, "pgq") == 0;

	(void) p;
	while (!atomic_load(&stop_flag))
	{
		PGresult   *r;
		long		n;

		if (atomic_load(&consumed_total) >= expect)
			break;
		if (now_s() - t0 > max_seconds)
		{
			fprintf(stderr, "driver: drain hit --max-seconds\n");
			break;
		}
		r = PQexec(c, lease ? lease_sql : consume_sql);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			report_error(lease ? "receive" : "receive+ack", r, c);
			PQclear(r);
			sleep_s(0.01);
			continue;
		}
		if (!lease)
			n = atol(PQgetvalue(r, 0, 0));
		else
		{
			/* one row: (handle, count); handle is an id array or a pgq batch id */
			char	   *h = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));

			n = atol(PQgetvalue(r, 0, 1));
			if (h && (n > 0 || pgq))
			{
				const char *vals[1] = {h};
				PGresult   *r2 = PQexecParams(c, ack_sql, 1, NULL, vals, NULL, NULL, 0);

				if (PQresultStatus(r2) != PGRES_TUPLES_OK)
				{
					report_error("ack", r2, c);
					n = 0;
				}
				PQclear(r2);
			}
			free(h);
		}
		PQclear(r);
		if (n > 0)
		{
			note_progress(n);
			idle_since = 0;
		}
		else
		{
			double		t = now_s();

			if (atomic_load(&consumed_total) >= expect)
				break;
			if (idle_since == 0)
				idle_since = t;
			else if (t - idle_since > 3.0)
				break;
			sleep_s(0.001);
		}
	}
	PQfinish(c);
	return NULL;
}

static void
run_size_sql(PGconn *c, int slot)
{
	PGresult   *r;

	if (!size_sql)
		return;
	r = PQexec(c, size_sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		size_at[slot] = strdup(PQgetvalue(r, 0, 0));
	else
		fprintf(stderr, "driver: size query failed: %s", PQresultErrorMessage(r));
	PQclear(r);
}

/* by latency */
static int
cmp_ms(const void *a, const void *b)
{
	double		x = ((const Sample *) a)->ms,
				y = ((const Sample *) b)->ms;

	return x < y ? -1 : x > y;
}

/* by interval, then latency */
static int
cmp_interval_ms(const void *a, const void *b)
{
	int			x = ((const Sample *) a)->b,
				y = ((const Sample *) b)->b;

	return x != y ? (x < y ? -1 : 1) : cmp_ms(a, b);
}

/* The p-th percentile of n samples sorted by latency (-1 if none) */
static double
pct(const Sample *s, size_t n, double p)
{
	if (n == 0)
		return -1;
	return s[(size_t) (p * (n - 1) + 0.5)].ms;
}

/*
 * W8: a REPEATABLE READ transaction that has taken its snapshot, as a
 * report or pg_dump would: VACUUM cannot remove rows deleted after it.
 */
static PGconn *
hold_snapshot(void)
{
	PGconn	   *c = connect_db();
	PGresult   *r = PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ");

	PQclear(r);
	r = PQexec(c, "SELECT count(*) FROM pg_class");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "driver: holding a snapshot failed: %s",
				PQresultErrorMessage(r));
		exit(2);
	}
	PQclear(r);
	return c;
}

/* interval_K=consumed/s produced/s size p99_ms (latencies of interval K) */
static void
print_intervals(void)
{
	int			nint = (int) (seconds / interval_s + 0.5);
	size_t		i = 0;

	qsort(lat, nlat, sizeof(Sample), cmp_interval_ms);
	for (int k = 0; k < nint && k < MAX_INTERVALS; k++)
	{
		size_t		from;

		while (i < nlat && lat[i].b < k)
			i++;
		from = i;
		while (i < nlat && lat[i].b == k)
			i++;
		printf("interval_%d=%.1f %.1f %s %.3f\n", k + 1,
			   cons_bucket[k] / interval_s, prod_bucket[k] / interval_s,
			   size_at[k + 1] ? size_at[k + 1] : "-",
			   pct(lat + from, i - from, 0.99));
	}
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: driver MODE SYSTEM [--conninfo S] [--seconds N] [--producers N]\n"
			"       [--consumers N] [--batch N] [--rate R] [--expect N]\n"
			"       [--interval S] [--size-sql SQL] [--max-seconds N]\n"
			"       [--long-poll wait|receive] [--hold S]\n"
			"MODE: drain | lease | e2e    SYSTEM: txmq | baseline | pgq\n");
	exit(2);
}

static void
choose_sql(void)
{
	static char buf[4][1024];

	if (strcmp(sys, "txmq") == 0)
	{
		send_sql = "SELECT txmq.send('bench', $1::jsonb)";
		if (strcmp(mode, "e2e") == 0)
		{
			receive_waits = strcmp(long_poll, "receive") == 0;
			snprintf(buf[0], sizeof buf[0],
					 "WITH r AS (SELECT msg_id, "
					 "extract(epoch FROM clock_timestamp() - created_at) * 1000 AS lat_ms "
					 "FROM txmq.receive('bench', 'bench', %d%s)), "
					 "a AS (SELECT CASE WHEN count(*) > 0 THEN "
					 "txmq.ack('bench', 'bench', array_agg(msg_id)) END AS acked FROM r) "
					 "SELECT r.lat_ms FROM r, a", batch,
					 receive_waits ? ", wait => '1 s'" : "");
			consume_sql = buf[0];
			if (!receive_waits)
				wait_sql = "CALL txmq.wait('bench', 'bench', '1 s')";
		}
		else
		{
			snprintf(buf[0], sizeof buf[0],
					 "WITH r AS (SELECT array_agg(msg_id) AS ids, count(*) AS n "
					 "FROM txmq.receive('bench', 'bench', %d)) "
					 "SELECT n, CASE WHEN n > 0 THEN txmq.ack('bench', 'bench', ids) END FROM r",
					 batch);
			consume_sql = buf[0];
		}
		snprintf(buf[1], sizeof buf[1],
				 "SELECT array_agg(msg_id), count(*) FROM txmq.receive('bench', 'bench', %d)",
				 batch);
		lease_sql = buf[1];
		ack_sql = "SELECT txmq.ack('bench', 'bench', $1::bigint[])";
	}
	else if (strcmp(sys, "baseline") == 0)
	{
		send_sql = "INSERT INTO bench_q (payload) VALUES ($1::jsonb)";
		if (strcmp(mode, "e2e") == 0)
			snprintf(buf[0], sizeof buf[0],
					 "DELETE FROM bench_q WHERE id IN (SELECT id FROM bench_q ORDER BY id "
					 "FOR UPDATE SKIP LOCKED LIMIT %d) "
					 "RETURNING extract(epoch FROM clock_timestamp() - enqueued_at) * 1000",
					 batch);
		else
			snprintf(buf[0], sizeof buf[0],
					 "WITH d AS (DELETE FROM bench_q WHERE id IN (SELECT id FROM bench_q "
					 "ORDER BY id FOR UPDATE SKIP LOCKED LIMIT %d) RETURNING id, payload) "
					 "SELECT count(*) FROM d", batch);
		consume_sql = buf[0];
		/* lease mode: PGMQ-style visibility timeout column vt */
		snprintf(buf[1], sizeof buf[1],
				 "WITH l AS (UPDATE bench_q SET vt = clock_timestamp() + interval '30 s' "
				 "WHERE id IN (SELECT id FROM bench_q WHERE vt <= clock_timestamp() "
				 "ORDER BY id FOR UPDATE SKIP LOCKED LIMIT %d) RETURNING id, payload) "
				 "SELECT array_agg(id), count(*) FROM l", batch);
		lease_sql = buf[1];
		ack_sql = "WITH d AS (DELETE FROM bench_q WHERE id = ANY($1::bigint[]) RETURNING 1) SELECT count(*) FROM d";
	}
	else if (strcmp(sys, "pgq") == 0)
	{
		send_sql = "SELECT pgq.insert_event('bench', 'order.created', $1)";
		if (strcmp(mode, "e2e") == 0)
			consume_sql = "SELECT lat_ms FROM bench_pgq_take()";
		else
			consume_sql = "SELECT count(*) FROM bench_pgq_take()";
		lease_sql = "SELECT batch_id, n FROM bench_pgq_open()";
		ack_sql = "SELECT pgq.finish_batch($1::bigint)";
	}
	else
		usage();
}

int
main(int argc, char **argv)
{
	pthread_t	th[MAX_THREADS];
	ThreadArg	args[MAX_THREADS];
	int			nth = 0,
				i;
	PGconn	   *mon = NULL;
	PGconn	   *holder = NULL;
	int			released_in = 0;
	double		t_end;

	if (argc < 3)
		usage();
	mode = argv[1];
	sys = argv[2];
	for (i = 3; i < argc; i++)
	{
		const char *k = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (!strcmp(k, "--conninfo"))
			conninfo = v;
		else if (!strcmp(k, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(k, "--producers"))
			nprod = atoi(v);
		else if (!strcmp(k, "--consumers"))
			ncons = atoi(v);
		else if (!strcmp(k, "--batch"))
			batch = atoi(v);
		else if (!strcmp(k, "--rate"))
			rate = atof(v);
		else if (!strcmp(k, "--expect"))
			expect = atol(v);
		else if (!strcmp(k, "--interval"))
			interval_s = atof(v);
		else if (!strcmp(k, "--size-sql"))
			size_sql = v;
		else if (!strcmp(k, "--hold"))
			hold_s = atof(v);
		else if (!strcmp(k, "--max-seconds"))
			max_seconds = atof(v);
		else if (!strcmp(k, "--long-poll") &&
				 (!strcmp(v, "wait") || !strcmp(v, "receive")))
			long_poll = v;
		else
			usage();
		i++;
	}
	if (strcmp(mode, "drain") && strcmp(mode, "lease") && strcmp(mode, "e2e"))
		usage();
	if (nprod + ncons > MAX_THREADS || ncons < 1)
		usage();
	if (hold_s > 0 && (strcmp(mode, "e2e") || interval_s <= 0))
		usage();
	choose_sql();

	if (size_sql)
	{
		mon = connect_db();
		run_size_sql(mon, 0);
	}
	if (hold_s > 0)
		holder = hold_snapshot();

	t0 = now_s();
	last_progress_t = t0;
	if (!strcmp(mode, "e2e"))
	{
		for (i = 0; i < nprod; i++)
		{
			args[nth].idx = i + 1;
			args[nth].rate = rate > 0 ? rate / nprod : 0;
			pthread_create(&th[nth], NULL, producer, &args[nth]);
			nth++;
		}
		for (i = 0; i < ncons; i++)
		{
			args[nth].idx = i;
			pthread_create(&th[nth], NULL, consumer_e2e, &args[nth]);
			nth++;
		}
		/* interval monitor */
		if (interval_s > 0)
		{
			int			k;
			int			nint = (int) (seconds / interval_s + 0.5);

			for (k = 1; k <= nint && k <= MAX_INTERVALS; k++)
			{
				double		target = t0 + k * interval_s;

				while (now_s() < target && !atomic_load(&stop_flag))
					sleep_s(target - now_s() > 0.2 ? 0.2 : target - now_s());
				if (holder && now_s() >= t0 + hold_s)
				{
					PQclear(PQexec(holder, "COMMIT"));
					PQfinish(holder);
					holder = NULL;
					released_in = k;
				}
				if (mon)
					run_size_sql(mon, k);
				fprintf(stderr, "driver: interval %d: consumed %ld produced %ld%s%s\n",
						k, cons_bucket[k - 1], prod_bucket[k - 1],
						size_at[k] ? " size " : "", size_at[k] ? size_at[k] : "");
			}
		}
		for (i = 0; i < nth; i++)
			pthread_join(th[i], NULL);
		t_end = t0 + seconds;
	}
	else
	{
		if (expect <= 0)
			usage();
		for (i = 0; i < ncons; i++)
		{
			args[nth].idx = i;
			pthread_create(&th[nth], NULL, consumer_drain, &args[nth]);
			nth++;
		}
		for (i = 0; i < nth; i++)
			pthread_join(th[i], NULL);
		t_end = last_progress_t;
	}

	{
		double		el = t_end - t0;
		long		n = atomic_load(&consumed_total);

		printf("mode=%s\nsystem=%s\n", mode, sys);
		printf("consumed=%ld\n", n);
		printf("produced=%ld\n", atomic_load(&produced_total));
		printf("elapsed_s=%.3f\n", el);
		printf("msgs_per_s=%.1f\n", el > 0 ? n / el : 0);
		printf("errors=%ld\n", atomic_load(&errors_total));
		printf("avg_batch=%.2f\n", atomic_load(&batches_total) ?
			   (double) n / atomic_load(&batches_total) : 0.0);
		if (!strcmp(mode, "e2e"))
		{
			qsort(lat, nlat, sizeof(Sample), cmp_ms);
			printf("lat_samples=%zu\n", nlat);
			printf("p50_ms=%.3f\n", pct(lat, nlat, 0.50));
			printf("p99_ms=%.3f\n", pct(lat, nlat, 0.99));
			printf("max_ms=%.3f\n", nlat ? lat[nlat - 1].ms : -1);
		}
		if (interval_s > 0)
			print_intervals();
		if (released_in)
			printf("hold_released_interval=%d\n", released_in);
		if (size_at[0])
			printf("size_start=%s\n", size_at[0]);
	}
	if (mon)
		PQfinish(mon);
	return atomic_load(&errors_total) > 0 && atomic_load(&consumed_total) == 0 ? 1 : 0;
}
