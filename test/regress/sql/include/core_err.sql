-- pg_temp.core_err(sql) runs a statement and shows its SQLSTATE and
-- message, or 'no error'.  Included by the regress tests (\i, found
-- through PG_ABS_SRCDIR).
CREATE FUNCTION pg_temp.core_err(q text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
