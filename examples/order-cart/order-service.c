/*
 * order-service: turns checkouts into orders and tells the cart service.
 *
 *   order-service NAME SCENARIO SHOP_CONNINFO ORDERS_CONNINFO SEED [PROXY_CONNINFO]
 *
 * With PROXY_CONNINFO, the sharded demo: txmq and the scenario-1 orders
 * are in partition databases, and the service reaches them through the
 * proxy database's PL/Proxy functions (proxy.sql), routed by order id:
 * shard.place_order (the order and its message, one transaction in the
 * order's partition), shard.send_half, shard.commit_half and
 * shard.rollback_half.
 *
 * SCENARIO
 *   same-db     The order store is in the shop database, next to txmq:
 *               order row + txmq.send() in one transaction.  That is all.
 *   half-check  The order store is another database (ORDERS_CONNINFO).
 *               send_half -> local transaction -> commit_half/rollback_half;
 *               when we die in between, txmq's check-back asks the topic's
 *               check function (shop.sql: check_order) what became of the
 *               order.
 *   half-xid    Same, but send_half gets the order transaction's xid and
 *               txmq resolves from that transaction's fate, no check function.
 *
 * The process claims checkouts from demo.checkout until none are left.  The
 * dice (seeded) make some payments fail and kill the process at the worst
 * moments; the demo driver restarts it after a SIGKILL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static unsigned seed;
static PGconn *shop;			/* txmq + carts (+ orders in same-db) */
static PGconn *orders;			/* the separate order database */
static PGconn *proxy;			/* the sharded demo's proxy database */

/* What the dice decided for one checkout. */
typedef enum
{
	GO_OK,
	GO_DECLINED,				/* payment declined: the order INSERT fails */
	GO_SLOW,					/* slow order transaction (2.5 s) */
	KILL_BEFORE_LOCAL,			/* die before the order commits */
	KILL_AFTER_LOCAL,			/* die after the order committed */
	KILL_AFTER_DECLINE,			/* die after the order failed */
	GO_POISON					/* buggy client: items is a string */
} Fate;

static Fate fate_of(const char *scenario, int user)
{
	double r = dice(seed, "checkout", user, 0);

	if (failures_off())
		return GO_OK;
	if (strcmp(scenario, "same-db") == 0 && user == 7)
		return GO_POISON;
	if (r < 0.08)
		return GO_DECLINED;
	if (r < 0.14)
		return KILL_AFTER_LOCAL;
	if (r < 0.18)
		return KILL_BEFORE_LOCAL;
	if (r < 0.21)
		return KILL_AFTER_DECLINE;
	if (r < 0.25)
		return GO_SLOW;
	return GO_OK;
}

static void record_outcome(PGconn *conn, const char *user, const char *outcome,
						   const char *order_id)
{
	PQclear(sql_must(conn,
					 "UPDATE demo.checkout SET outcome = $2, order_id = $3 "
					 "WHERE user_id = $1", user, outcome, order_id, END));
}

/*
 * Scenario 1: the order store is in the same database as txmq.  The message
 * is sent first and the INSERT may then fail: the message goes with it.
 */
static void checkout_same_db(const char *user, const char *payment,
							 const char *items, Fate fate)
{
	PGresult *res;
	char order_id[32], payload[1024];
	char *err = NULL;

	PQclear(sql_must(shop, "BEGIN", END));
	res = sql_must(shop, "SELECT nextval('orders.order_id_seq')", END);
	snprintf(order_id, sizeof(order_id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	snprintf(payload, sizeof(payload),
			 "{\"order_id\": %s, \"user_id\": %s, \"items\": %s}",
			 order_id, user, items);

	PQclear(sql_must(shop, "SELECT txmq.send('orders', $1::jsonb, key => $2)",
					 payload, user, END));
	res = sql_try(shop, &err,
				  "INSERT INTO orders.orders (order_id, user_id, items, payment) "
				  "VALUES ($1, $2, $3::jsonb, $4)",
				  order_id, user, items, payment, END);
	if (res == NULL)
	{
		PQclear(sql_must(shop, "ROLLBACK", END));
		say("user %s: order %s failed (%s): ROLLBACK, its message is gone too",
			user, order_id, err);
		record_outcome(shop, user, "declined", NULL);
		free(err);
		return;
	}
	PQclear(res);
	record_outcome(shop, user, "ordered", order_id);
	if (fate == KILL_BEFORE_LOCAL)
		crash_now("before COMMIT of order %s: neither the order nor its "
				  "message will ever exist", order_id);
	PQclear(sql_must(shop, "COMMIT", END));
	if (fate == GO_POISON)
		say("order %s sent by the old mobile app: items is a string, not a "
			"list (poison message)", order_id);
	else
		say_verbose("order %s committed with its message", order_id);
	if (fate == KILL_AFTER_LOCAL)
		crash_now("just after COMMIT of order %s: order and message exist, "
				  "nothing to repair", order_id);
}

/*
 * Scenario 1, sharded: one call through the proxy, which runs the order's
 * INSERT and its txmq.send in one transaction in the order's partition.
 */
static void checkout_sharded(const char *user, const char *payment,
							 const char *items, Fate fate)
{
	const char *place = "SELECT part, msg_id FROM shard.place_order($1, $2, $3::jsonb, $4)";
	PGresult *res;
	char order_id[32];
	char *err = NULL;

	/* The id routes the order: it exists before the order does. */
	res = sql_must(proxy, "SELECT nextval('shard.order_id_seq')", END);
	snprintf(order_id, sizeof(order_id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);

	if (fate == KILL_BEFORE_LOCAL)
	{
		const char *params[4] = {order_id, user, items, payment};

		/* The call reaches the proxy, then we die while it runs. */
		if (!PQsendQueryParams(proxy, place, 4, NULL, params, NULL, NULL, 0) ||
			PQflush(proxy) != 0)
			say("cannot send place_order: %s", PQerrorMessage(proxy));
		crash_now("while place_order(%s) runs in its partition: the order and "
				  "its message commit both or neither", order_id);
	}
	res = sql_try(proxy, &err, place, order_id, user, items, payment, END);
	if (res == NULL)
	{
		say("user %s: order %s failed (%s): its partition rolled back, its "
			"message is gone too", user, order_id, err);
		record_outcome(shop, user, "declined", NULL);
		free(err);
		return;
	}
	say_verbose("order %s committed with its message %s in partition %s",
				order_id, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0));
	PQclear(res);
	record_outcome(shop, user, "ordered", order_id);
	if (fate == GO_POISON)
		say("order %s sent by the old mobile app: items is a string, not a "
			"list (poison message)", order_id);
	if (fate == KILL_AFTER_LOCAL)
		crash_now("just after place_order(%s): order and message exist, "
				  "nothing to repair", order_id);
}

/*
 * Scenario 2: the order store is another database.  Half message first,
 * then the order, then the verdict on the half message.
 */
static void checkout_half(const char *user, const char *payment,
						  const char *items, Fate fate, bool use_xid)
{
	const char *topic = use_xid ? "orders_xid" : "orders_remote";
	PGresult *res;
	char order_id[32], msg_id[32], part[16] = "0", xid[32] = "", payload[1024];
	char *err = NULL;
	bool ok;

	/* The order id exists before the order does: it goes in the message. */
	if (use_xid)
	{
		/* The order transaction starts first: its xid goes in the message. */
		PQclear(sql_must(orders, "BEGIN", END));
		res = sql_must(orders, "SELECT nextval('order_id_seq'), pg_current_xact_id()",
					   END);
		snprintf(xid, sizeof(xid), "%s", PQgetvalue(res, 0, 1));
	}
	else
	{
		/*
		 * Tell the check function we are at work on this order: it answers
		 * 'unknown' while we hold this lock and the order is not there.
		 */
		res = sql_must(orders,
					   "SELECT id, pg_advisory_lock(id) "
					   "FROM nextval('order_id_seq') AS id", END);
	}
	snprintf(order_id, sizeof(order_id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	snprintf(payload, sizeof(payload),
			 "{\"order_id\": %s, \"user_id\": %s, \"items\": %s}",
			 order_id, user, items);

	/* 1. The half message: stored, invisible to the cart service. */
	if (proxy)
	{
		/* in the partition of the order id (not in one transaction with
		 * the half_log row, as unsharded: the proxy commits each call) */
		res = sql_must(proxy,
					   "SELECT part, msg_id FROM shard.send_half($1, $2, $3::jsonb, $4, $5::xid8)",
					   order_id, topic, payload, user, use_xid ? xid : NULL, END);
		snprintf(part, sizeof(part), "%s", PQgetvalue(res, 0, 0));
		snprintf(msg_id, sizeof(msg_id), "%s", PQgetvalue(res, 0, 1));
		PQclear(res);
		PQclear(sql_must(shop,
						 "INSERT INTO demo.half_log (part, msg_id, topic, order_id, user_id) "
						 "VALUES ($1, $2, $3, $4, $5)",
						 part, msg_id, topic, order_id, user, END));
	}
	else
	{
		PQclear(sql_must(shop, "BEGIN", END));
		res = sql_must(shop,
					   "SELECT txmq.send_half($1, $2::jsonb, key => $3, "
					   "  producer_group => 'order-service', local_xid => $4::xid8)",
					   topic, payload, user, use_xid ? xid : NULL, END);
		snprintf(msg_id, sizeof(msg_id), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		PQclear(sql_must(shop,
						 "INSERT INTO demo.half_log (msg_id, topic, order_id, user_id) "
						 "VALUES ($1, $2, $3, $4)", msg_id, topic, order_id, user, END));
		PQclear(sql_must(shop, "COMMIT", END));
	}

	if (fate == KILL_BEFORE_LOCAL)
		crash_now("after send_half (message %s), before order %s commits: "
				  "check-back must roll the message back", msg_id, order_id);

	/* 2. The local transaction: the order itself. */
	if (!use_xid)
		PQclear(sql_must(orders, "BEGIN", END));
	if (fate == GO_SLOW)
	{
		say("order %s: slow order transaction (2.5 s): meanwhile check-back "
			"hears 'unknown' for message %s", order_id, msg_id);
		PQclear(sql_must(orders, "SELECT pg_sleep(2.5)", END));
	}
	res = sql_try(orders, &err,
				  "INSERT INTO orders (order_id, user_id, items, payment) "
				  "VALUES ($1, $2, $3::jsonb, $4)",
				  order_id, user, items, payment, END);
	ok = (res != NULL);
	PQclear(res);
	PQclear(sql_must(orders, ok ? "COMMIT" : "ROLLBACK", END));
	record_outcome(shop, user, ok ? "ordered" : "declined", ok ? order_id : NULL);

	/* 3. The verdict on the half message. */
	if (ok && fate == KILL_AFTER_LOCAL)
		crash_now("order %s committed, commit_half(%s) never sent: "
				  "check-back must commit it", order_id, msg_id);
	if (!ok && fate == KILL_AFTER_DECLINE)
		crash_now("order %s failed (%s), rollback_half(%s) never sent: "
				  "check-back must roll it back", order_id, err, msg_id);

	if (proxy)
	{
		/* routed by the order id to the partition that holds msg_id */
		res = sql_try(proxy, NULL,
					  ok ? "SELECT shard.commit_half($1, $2)"
					  : "SELECT shard.rollback_half($1, $2)",
					  order_id, msg_id, END);
		if (res == NULL)
		{
			say("ERROR: %s of message %s in partition %s failed: %s",
				ok ? "commit_half" : "rollback_half", msg_id, part,
				PQerrorMessage(proxy));
			exit(1);
		}
		PQclear(res);
		PQclear(sql_must(shop, "UPDATE demo.half_log SET resolved_by = $3 "
						 "WHERE part = $1 AND msg_id = $2", part, msg_id,
						 ok ? "producer: commit" : "producer: rollback", END));
	}
	else
	{
		PQclear(sql_must(shop, "BEGIN", END));
		res = sql_try(shop, NULL,
					  ok ? "SELECT txmq.commit_half($1)" : "SELECT txmq.rollback_half($1)",
					  msg_id, END);
		if (res == NULL)
		{
			/* e.g. check-back decided the other way: must never happen */
			PQclear(sql_must(shop, "ROLLBACK", END));
			say("ERROR: %s of message %s failed: %s",
				ok ? "commit_half" : "rollback_half", msg_id, PQerrorMessage(shop));
			exit(1);
		}
		PQclear(res);
		PQclear(sql_must(shop, "UPDATE demo.half_log SET resolved_by = $2 "
						 "WHERE part = 0 AND msg_id = $1", msg_id,
						 ok ? "producer: commit" : "producer: rollback", END));
		PQclear(sql_must(shop, "COMMIT", END));
	}

	if (ok)
		say_verbose("order %s committed, message %s committed", order_id, msg_id);
	else
		say("user %s: order %s failed (%s): message %s rolled back",
			user, order_id, err, msg_id);
	if (!use_xid)
		PQclear(sql_must(orders, "SELECT pg_advisory_unlock($1::bigint)",
						 order_id, END));
	free(err);
}

int main(int argc, char **argv)
{
	const char *scenario;
	PGresult *res;

	if (argc != 6 && argc != 7)
	{
		fprintf(stderr, "usage: %s NAME same-db|half-check|half-xid "
				"SHOP_CONNINFO ORDERS_CONNINFO SEED [PROXY_CONNINFO]\n", argv[0]);
		return 2;
	}
	me = argv[1];
	scenario = argv[2];
	seed = (unsigned) strtoul(argv[5], NULL, 10);
	shop = db_connect(argv[3]);
	if (strcmp(scenario, "same-db") != 0)
		orders = db_connect(argv[4]);
	if (argc == 7)
		proxy = db_connect(argv[6]);

	for (;;)
	{
		char user[16], items[512];
		const char *payment;
		Fate fate;

		/* Claim the next checkout: a user pressed "buy" on their cart. */
		res = sql_must(shop,
					   "UPDATE demo.checkout SET worker = $1 WHERE user_id = "
					   "  (SELECT user_id FROM demo.checkout"
					   "    WHERE scenario = $2 AND worker IS NULL"
					   "    ORDER BY user_id LIMIT 1 FOR UPDATE SKIP LOCKED) "
					   "RETURNING user_id", me, scenario, END);
		if (PQntuples(res) == 0)
			break;
		snprintf(user, sizeof(user), "%s", PQgetvalue(res, 0, 0));
		PQclear(res);

		fate = fate_of(scenario, atoi(user));
		payment = (fate == GO_DECLINED || fate == KILL_AFTER_DECLINE)
			? "declined" : "ok";

		/* The order lists what is in the cart now. */
		res = sql_must(shop,
					   "SELECT jsonb_agg(sku ORDER BY sku), "
					   "       to_jsonb(string_agg(sku, ',' ORDER BY sku)) "
					   "FROM cart.cart_line WHERE user_id = $1", user, END);
		snprintf(items, sizeof(items), "%s",
				 PQgetvalue(res, 0, fate == GO_POISON ? 1 : 0));
		PQclear(res);

		if (strcmp(scenario, "same-db") == 0 && proxy)
			checkout_sharded(user, payment, items, fate);
		else if (strcmp(scenario, "same-db") == 0)
			checkout_same_db(user, payment, items, fate);
		else
			checkout_half(user, payment, items, fate,
						  strcmp(scenario, "half-xid") == 0);
	}
	PQclear(res);
	PQfinish(shop);
	if (orders)
		PQfinish(orders);
	if (proxy)
		PQfinish(proxy);
	return 0;
}
