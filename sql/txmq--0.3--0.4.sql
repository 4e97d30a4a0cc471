/* txmq--0.3--0.4.sql */

\echo Use "ALTER EXTENSION txmq UPDATE TO '0.4'" to load this file. \quit
