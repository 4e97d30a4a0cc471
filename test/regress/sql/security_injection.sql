-- security_injection: names and data that look like SQL (SPEC section 5).
-- Hostile names (quotes, semicolons, backslashes, control characters,
-- NUL-like escapes, unicode, 10,000 characters ...) are rejected by every
-- function that takes a name, with SQLSTATE 42602; names that are valid but
-- look like SQL are plain data.  Hostile payloads, headers, keys and error
-- texts are stored and returned verbatim.  Nothing is ever executed: the
-- canary table survives and no object appears or disappears.
CREATE FUNCTION pg_temp.inj_state(q text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;
\getenv abs_srcdir PG_ABS_SRCDIR
\set core_err :abs_srcdir '/sql/include/core_err.sql'
\i :core_err

CREATE TABLE public.inj_canary (x int);
INSERT INTO public.inj_canary VALUES (1);
CREATE ROLE regress_inj_role;
CREATE TEMP TABLE inj_objects_before AS
	SELECT oid FROM pg_class WHERE relpersistence <> 't'
	UNION ALL SELECT oid FROM pg_proc;
SELECT txmq.create_queue('inj_q');

-- ---- names ----
CREATE TEMP TABLE inj_names (ord int, label text, name text);
INSERT INTO inj_names VALUES
	(1, 'single quote', $$a'b$$),
	(2, 'quote + statement', $$x'); DROP TABLE public.inj_canary; --$$),
	(3, 'double quote', 'a"b'),
	(4, 'quoted identifier', '"inj_q"'),
	(5, 'semicolon', 'inj_q;DROP TABLE public.inj_canary'),
	(6, 'backslash', E'a\\b'),
	(7, 'backslash quote', E'a\\''b'),
	(8, 'newline', E'inj_q\nDROP TABLE public.inj_canary'),
	(9, 'tab', E'a\tb'),
	(10, 'NUL-like escape', '\0'),
	(11, 'escaped NUL bytes', E'\\x00'),
	(12, 'unicode escape text', 'a\u0000b'),
	(13, 'control char', E'a\x01b'),
	(14, 'format directives', 'a%s%n%x'),
	(15, 'space', 'inj q'),
	(16, 'empty', ''),
	(17, 'umlaut', 'zürich'),
	(18, 'emoji', 'q📦'),
	(19, 'right-to-left override', E'a\u202Eb'),
	(20, 'zero-width space', E'inj\u200Bq'),
	(21, 'fullwidth letters', 'ｉｎｊ'),
	(22, 'dollar quote', '$$'),
	(23, 'comment start', 'a/*'),
	(24, 'LIKE pattern', 'inj%'),
	(25, 'regex', 'inj.*'),
	(26, '49 characters', repeat('a', 49)),
	(27, '10,000 characters', repeat('q', 10000)),
	(28, '10,000 quotes', repeat($$'$$, 10000));

-- every function that takes a name, with the name in each position
CREATE TEMP TABLE inj_calls (fn text, tmpl text);
INSERT INTO inj_calls VALUES
	('create_topic', 'SELECT txmq.create_topic(%L)'),
	('create_queue', 'SELECT txmq.create_queue(%L)'),
	('create_subscription topic', 'SELECT txmq.create_subscription(%L, ''s'')'),
	('create_subscription name', 'SELECT txmq.create_subscription(''inj_q'', %L)'),
	('drop_topic', 'SELECT txmq.drop_topic(%L, true)'),
	('drop_subscription', 'SELECT txmq.drop_subscription(''inj_q'', %L)'),
	('purge topic', 'SELECT txmq.purge(%L)'),
	('purge subscription', 'SELECT txmq.purge(''inj_q'', %L)'),
	('grant topic', 'SELECT txmq.grant(%L, ''regress_inj_role'', ''send'')'),
	('grant subscription', 'SELECT txmq.grant(''inj_q'', ''regress_inj_role'', ''receive'', %L)'),
	('revoke', 'SELECT txmq.revoke(%L, ''regress_inj_role'', ''send'')'),
	('send', 'SELECT txmq.send(%L, ''1'')'),
	('send_batch', 'SELECT txmq.send_batch(%L, ARRAY[''1'']::jsonb[])'),
	('send_half topic', 'SELECT txmq.send_half(%L, ''1'', producer_group => ''g'')'),
	('send_half group', 'SELECT txmq.send_half(''inj_q'', ''1'', producer_group => %L)'),
	('receive topic', 'SELECT * FROM txmq.receive(%L, ''inj_q'')'),
	('receive subscription', 'SELECT * FROM txmq.receive(''inj_q'', %L)'),
	('ack', 'SELECT txmq.ack(''inj_q'', %L, 1)'),
	('ack array', 'SELECT txmq.ack(%L, ''inj_q'', ARRAY[1]::bigint[])'),
	('nack', 'SELECT txmq.nack(''inj_q'', %L, 1)'),
	('reject', 'SELECT txmq.reject(%L, ''inj_q'', 1)'),
	('extend_lease', 'SELECT txmq.extend_lease(''inj_q'', %L, 1, ''1 min'')'),
	('dead_letters', 'SELECT * FROM txmq.dead_letters(%L, ''inj_q'')'),
	('redrive', 'SELECT txmq.redrive(''inj_q'', %L)'),
	('pending_checks', 'SELECT * FROM txmq.pending_checks(%L)'),
	('half_messages', 'SELECT * FROM txmq.half_messages(%L)');

-- each hostile name, in every call: the SQLSTATEs seen and how many calls
SELECT n.label, string_agg(DISTINCT pg_temp.inj_state(format(c.tmpl, n.name)), ',') AS sqlstates,
	   count(*) AS calls
  FROM inj_names n CROSS JOIN inj_calls c
 GROUP BY n.ord, n.label ORDER BY n.ord;
-- the message names the offending name as data (long ones are not echoed)
SELECT label, pg_temp.core_err(format('SELECT txmq.create_topic(%L)', name)) AS error
  FROM inj_names WHERE ord IN (1, 2, 5, 6, 17, 27) ORDER BY ord;

-- the role argument is a regrole: resolved by PostgreSQL, never spliced
SELECT pg_temp.core_err($$SELECT txmq.grant('inj_q', $x$regress_inj_role; DROP TABLE public.inj_canary$x$, 'send')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('inj_q', 'regress_inj_role', 'send; DROP TABLE public.inj_canary')$$);
SELECT pg_temp.core_err($$SELECT txmq.grant('inj_q', 'regress_inj_role', $x$send' OR '1'='1$x$)$$);

-- valid names that look like SQL are plain data
SELECT txmq.create_queue('--');
SELECT txmq.create_queue('.');
SELECT txmq.create_queue('inj_q.-_DROP-TABLE.x');
SELECT txmq.create_subscription('inj_q', '..');
SELECT txmq.create_queue(repeat('x', 48));
SELECT txmq.drop_topic(repeat('x', 48));
SELECT txmq.send('--', '"dashes"') > 0 AS sent;
SELECT payload FROM txmq.receive('--', '--');
SELECT topic, subscription FROM txmq.stats
 WHERE topic IN ('--', '.', 'inj_q.-_DROP-TABLE.x', 'inj_q') ORDER BY 1, 2;

-- ---- data: stored and returned verbatim ----
CREATE TEMP TABLE inj_data (ord int, label text, payload jsonb, headers jsonb, key text);
INSERT INTO inj_data VALUES
	(1, 'quotes', $${"a": "it's \"quoted\"", "b": "'); DROP TABLE public.inj_canary; --"}$$,
	 $${"h": "'; DROP TABLE public.inj_canary; --"}$$, $$k'; DROP TABLE public.inj_canary; --$$),
	(2, 'semicolons', '"a;b;c; SELECT pg_sleep(100);"', '{"x;y": ";"}', ';;;'),
	(3, 'backslashes', $$"C:\\dir\\file \\n \\\\"$$, $${"\\": "\\\\"}$$, E'a\\b\\\\c\\'),
	(4, 'NUL-like escapes', $$"\\u0000 \\x00 \\0"$$, $${"nul": "\\u0000"}$$, E'\\0\\x00\\u0000'),
	(5, 'control characters', '"line1\nline2\ttab\r\f\b"', '{"c": "\u0001\u001f"}', E'k\nk\tk'),
	(6, 'unicode', '{"ä": "zürich", "emoji": "📦🚚", "rtl": "\u202Eabc", "zwsp": "a\u200Bb"}',
	 '{"日本": "語"}', 'ключ📦'),
	(7, 'JSON keys that look like SQL', $${"'; DROP TABLE public.inj_canary; --": 1, "$1": 2, "%s": 3}$$, NULL, NULL),
	(8, 'dollar quotes', $x${"a": "$$ DROP TABLE public.inj_canary $$"}$x$, '{"b": "$q$"}', '$$'),
	(9, 'scalar null', 'null', NULL, ''),
	(10, 'number and array', '[1, -0.0, 1e308, "x", null, [], {}]', '{}', ' '),
	(11, '10,000-character strings', jsonb_build_object('s', repeat('x''y;', 2500)),
	 jsonb_build_object('h', repeat('\', 10000)), repeat('k', 1024)),
	(12, 'deep nesting', (SELECT (repeat('[', 500) || repeat(']', 500))::jsonb), NULL, NULL);

-- the NUL character itself cannot be in jsonb or text at all: PostgreSQL
-- refuses it before txmq sees it
SELECT pg_temp.core_err($$SELECT txmq.send('inj_q', '"a\u0000b"')$$);
SELECT pg_temp.core_err($$SELECT txmq.send('inj_q', '1', key => E'a\0b')$$);

-- send every row, with send, send_batch and a committed half message
CREATE TEMP TABLE inj_sent (ord int, how text, msg_id bigint);
INSERT INTO inj_sent SELECT ord, 'send', txmq.send('inj_q', payload, headers, key) FROM inj_data;
INSERT INTO inj_sent SELECT ord, 'send_batch', (SELECT id FROM txmq.send_batch('inj_q', ARRAY[payload], headers, key) id)
  FROM inj_data;
INSERT INTO inj_sent SELECT ord, 'half', txmq.send_half('inj_q', payload, headers, key, 'inj_producers')
  FROM inj_data;
SELECT count(*) FROM (SELECT txmq.commit_half(msg_id) FROM inj_sent WHERE how = 'half') c;

BEGIN;
CREATE TEMP TABLE inj_got AS SELECT * FROM txmq.receive('inj_q', 'inj_q', 100);
SELECT count(*) AS acked FROM (SELECT txmq.ack('inj_q', 'inj_q', msg_id) FROM inj_got) a;
COMMIT;
SELECT d.label,
	   string_agg(s.how || ':' || (g.payload = d.payload AND g.headers IS NOT DISTINCT FROM d.headers
			AND g.key IS NOT DISTINCT FROM d.key)::text, ' ' ORDER BY s.how) AS verbatim
  FROM inj_data d JOIN inj_sent s USING (ord) LEFT JOIN inj_got g USING (msg_id)
 GROUP BY d.ord, d.label ORDER BY d.ord;

-- error texts are stored verbatim too, and a key over 1024 bytes is refused
SELECT txmq.send('inj_q', '1') AS e1 \gset
BEGIN;
SELECT count(*) FROM txmq.receive('inj_q', 'inj_q');
SELECT txmq.reject('inj_q', 'inj_q', :e1, $$'); DROP TABLE public.inj_canary; -- \ ; ü 📦$$);
COMMIT;
SELECT last_error = $$'); DROP TABLE public.inj_canary; -- \ ; ü 📦$$ AS verbatim_error
  FROM txmq.dead_letters('inj_q', 'inj_q');
SELECT txmq.redrive('inj_q', 'inj_q');
BEGIN;
SELECT count(*) FROM txmq.receive('inj_q', 'inj_q');
SELECT txmq.nack('inj_q', 'inj_q', :e1, '0', repeat('''', 10000));
COMMIT;
SELECT length(m.last_error) FROM txmq.msg m JOIN txmq.subscription s USING (sub_id)
 WHERE m.msg_id = :e1 AND s.name = 'inj_q';
SELECT pg_temp.core_err($$SELECT txmq.send('inj_q', '1', key => repeat('k', 1025))$$);
SELECT pg_temp.core_err($$SELECT txmq.send('inj_q', '1', key => repeat('ü', 513))$$);
SELECT pg_temp.core_err($$SELECT txmq.send('inj_q', '1', key => repeat('''', 10000))$$);

-- nothing was executed: the canary lives, no object came or went
SELECT x AS canary FROM public.inj_canary;
WITH now_ AS (SELECT oid FROM pg_class WHERE relpersistence <> 't'
			  UNION ALL SELECT oid FROM pg_proc)
SELECT (SELECT count(*) FROM now_ WHERE oid NOT IN (SELECT oid FROM inj_objects_before)) AS appeared,
	   (SELECT count(*) FROM inj_objects_before WHERE oid NOT IN (SELECT oid FROM now_)) AS disappeared;

-- ---- clean up ----
SELECT txmq.drop_topic('inj_q', force => true);
SELECT txmq.drop_topic('--', force => true);
SELECT txmq.drop_topic('.', force => true);
SELECT txmq.drop_topic('inj_q.-_DROP-TABLE.x', force => true);
DROP TABLE public.inj_canary;
DROP ROLE regress_inj_role;
