/* txmq--0.2--0.3.sql */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.3'" to load this file. \quit

-- Long polls that hold no snapshot while they sleep (src/poll.c).  CALLed
-- outside a transaction block, each ends its transaction before it sleeps.
CREATE PROCEDURE txmq.wait(topic text, subscription text,
						   timeout interval DEFAULT '20 s',
						   INOUT ready boolean DEFAULT NULL)
AS 'MODULE_PATHNAME', 'txmq_wait' LANGUAGE C;
COMMENT ON PROCEDURE txmq.wait(text, text, interval, boolean) IS
'Wait, holding no snapshot, until a receive could take a message of the subscription (ready), at most timeout; CALL outside a transaction block';

CREATE PROCEDURE txmq.poll(topic text, subscription text,
						   max_messages int DEFAULT 1,
						   lease interval DEFAULT NULL,
						   wait interval DEFAULT '20 s',
						   INOUT messages txmq.delivery[] DEFAULT NULL)
AS 'MODULE_PATHNAME', 'txmq_poll' LANGUAGE C;
COMMENT ON PROCEDURE txmq.poll(text, text, int, interval, interval, txmq.delivery[]) IS
'Receive up to max_messages with a lease, waiting at most wait for the first while holding no snapshot; CALL outside a transaction block';
