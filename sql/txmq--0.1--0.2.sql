/* txmq--0.1--0.2.sql: receive reads and deletes rows itself */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.2'" to load this file. \quit

-- receive no longer calls back into SQL to claim each row
DROP FUNCTION txmq._claim(int, bigint);
