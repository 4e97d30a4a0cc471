-- core_search_path: txmq must not resolve anything through the caller's
-- search_path.  A schema with look-alike operators and functions that
-- RAISE comes first; every txmq function is then used.
CREATE ROLE regress_core_sp_owner;
CREATE ROLE regress_core_sp_other;
GRANT EXECUTE ON FUNCTION txmq.create_topic TO regress_core_sp_owner;
GRANT EXECUTE ON FUNCTION txmq.create_queue
	TO regress_core_sp_owner;
CREATE SCHEMA core_evil AUTHORIZATION regress_core_sp_owner;
SET ROLE regress_core_sp_owner;

CREATE FUNCTION core_evil.trap() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'core_evil code was called'; END $$;
CREATE FUNCTION core_evil.eq4(int, int) RETURNS boolean LANGUAGE sql AS 'SELECT core_evil.trap()';
CREATE FUNCTION core_evil.eq8(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT core_evil.trap()';
CREATE FUNCTION core_evil.eqt(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT core_evil.trap()';
CREATE FUNCTION core_evil.letz(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS 'SELECT core_evil.trap()';
CREATE FUNCTION core_evil.minus(timestamptz, timestamptz) RETURNS interval LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); RETURN NULL; END$$;
CREATE FUNCTION core_evil.plus8(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); RETURN NULL; END$$;
CREATE OPERATOR core_evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = core_evil.eq4);
CREATE OPERATOR core_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = core_evil.eq8);
CREATE OPERATOR core_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = core_evil.eqt);
CREATE OPERATOR core_evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = core_evil.letz);
CREATE OPERATOR core_evil.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = core_evil.letz);
CREATE OPERATOR core_evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = core_evil.eqt);
CREATE OPERATOR core_evil.- (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = core_evil.minus);
CREATE OPERATOR core_evil.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = core_evil.plus8);
-- functions named like those a queue implementation would call
CREATE FUNCTION core_evil.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); END$$;
CREATE FUNCTION core_evil.now() RETURNS timestamptz LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); RETURN NULL; END$$;
CREATE FUNCTION core_evil.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); RETURN NULL; END$$;
CREATE FUNCTION core_evil.nextval(regclass) RETURNS bigint LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); RETURN NULL; END$$;
CREATE FUNCTION core_evil.count_sf(bigint, anyelement) RETURNS bigint LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); RETURN NULL; END$$;
CREATE AGGREGATE core_evil.count(anyelement) (SFUNC = core_evil.count_sf, STYPE = bigint);
CREATE FUNCTION core_evil.count_star_sf(bigint) RETURNS bigint LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); RETURN NULL; END$$;
CREATE AGGREGATE core_evil.count(*) (SFUNC = core_evil.count_star_sf, STYPE = bigint);
CREATE FUNCTION core_evil.min_sf(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); RETURN NULL; END$$;
CREATE AGGREGATE core_evil.min(timestamptz) (SFUNC = core_evil.min_sf, STYPE = timestamptz);
CREATE FUNCTION core_evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); RETURN NULL; END$$;
CREATE FUNCTION core_evil.pg_notify(text, text) RETURNS void LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); END$$;
CREATE FUNCTION core_evil.coalesce_(text, text) RETURNS text LANGUAGE sql AS 'SELECT NULL::text';
CREATE FUNCTION core_evil.array_agg_sf(bigint[], bigint) RETURNS bigint[] LANGUAGE plpgsql AS
	$$BEGIN PERFORM core_evil.trap(); RETURN NULL; END$$;
CREATE AGGREGATE core_evil.array_agg(bigint) (SFUNC = core_evil.array_agg_sf, STYPE = bigint[]);
-- and tables / sequences named like txmq's, in case of an unqualified name
CREATE TABLE core_evil.msg (x int);
CREATE TABLE core_evil.topic (x int);
CREATE TABLE core_evil.subscription (x int);
CREATE SEQUENCE core_evil.msg_id_seq;

-- the trap works
SET search_path = core_evil, pg_catalog;
SELECT 1 = 1;
SELECT now() IS NULL;

-- every txmq function, with the evil schema first
-- (the test's own queries spell pg_catalog.count)
SELECT txmq.create_queue('core_sp', max_deliveries => 2, lease => '1 min');
SELECT txmq.create_topic('core_sp2');
SELECT txmq.create_subscription('core_sp2', 's');
SELECT txmq.send('core_sp', '{"a": 1}', '{"h": 1}', 'k') AS id \gset
SELECT pg_catalog.count(*) FROM txmq.send_batch('core_sp', ARRAY['1', '2']::jsonb[], delay => '1 h');
SELECT txmq.send('core_sp2', '"x"', delay => '100 ms') > 0 AS sent;
SELECT payload, headers, key, attempt FROM txmq.receive('core_sp', 'core_sp');
SELECT txmq.extend_lease('core_sp', 'core_sp', :id, '2 min') IS NOT NULL AS extended;
SELECT txmq.nack('core_sp', 'core_sp', :id, '0', 'err');
SELECT attempt FROM txmq.receive('core_sp', 'core_sp', 5, '1 min');
SELECT txmq.ack('core_sp', 'core_sp', :id);
SELECT txmq.ack('core_sp', 'core_sp', ARRAY[:id]);
SELECT txmq.send('core_sp', '"r"') AS r \gset
BEGIN;
SELECT pg_catalog.count(*) FROM txmq.receive('core_sp', 'core_sp');
SELECT txmq.reject('core_sp', 'core_sp', :r, 'bad');
COMMIT;
SELECT payload, attempts, last_error FROM txmq.dead_letters('core_sp', 'core_sp');
SELECT txmq.redrive('core_sp', 'core_sp', ARRAY[:r]);
SELECT txmq.redrive('core_sp', 'core_sp');
BEGIN;
SELECT pg_catalog.count(*) FROM txmq.receive('core_sp', 'core_sp');
ROLLBACK;
SELECT pg_catalog.count(*) FROM txmq.receive('core_sp', 'core_sp');
SELECT txmq.nack('core_sp', 'core_sp', :r);
-- long poll: waits for the delayed message of core_sp2
SELECT payload FROM txmq.receive('core_sp2', 's', wait => '5 s');
SELECT topic, subscription, ready, delayed, in_flight, dead, sent
  FROM txmq.stats WHERE topic LIKE 'core_sp%' ORDER BY 1, 2;
SELECT * FROM txmq._stats() WHERE false;
SELECT txmq.grant('core_sp', 'regress_core_sp_other', 'send');
SELECT txmq.grant('core_sp', 'regress_core_sp_other', 'receive', 'core_sp');
SELECT txmq.revoke('core_sp', 'regress_core_sp_other', 'receive', 'core_sp');
SELECT txmq.revoke('core_sp', 'regress_core_sp_other', 'send');
SELECT txmq.purge('core_sp', 'core_sp');
SELECT txmq.purge('core_sp');
SELECT txmq.drop_subscription('core_sp2', 's');
SELECT txmq.drop_topic('core_sp2');
SELECT txmq.drop_topic('core_sp', force => true);
-- errors are reported normally too
SELECT txmq.drop_topic('core_sp');

RESET search_path;
RESET ROLE;
-- nothing landed in the look-alike tables
SELECT (SELECT pg_catalog.count(*) FROM core_evil.msg) + (SELECT pg_catalog.count(*) FROM core_evil.topic)
	 + (SELECT pg_catalog.count(*) FROM core_evil.subscription) AS evil_rows;
SET client_min_messages = warning;
DROP SCHEMA core_evil CASCADE;
RESET client_min_messages;
DROP ROLE regress_core_sp_other;
REVOKE EXECUTE ON FUNCTION txmq.create_topic FROM regress_core_sp_owner;
REVOKE EXECUTE ON FUNCTION txmq.create_queue
	FROM regress_core_sp_owner;
DROP ROLE regress_core_sp_owner;
