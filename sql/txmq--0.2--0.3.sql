/* txmq--0.2--0.3.sql */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.3'" to load this file. \quit
