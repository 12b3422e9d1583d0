-- Tries to prepare each of production's queries on the copy, in one round trip: the server's
-- error for one it cannot plan; for an insert it can, its generic plan (EXPLAIN VERBOSE, the
-- row the server completes for it). Each prepared statement is let go at once. In the
-- session's temporary schema: gone with the session, nothing left on the database.
CREATE OR REPLACE FUNCTION pg_temp.hds_prepare_each(queries text[], explain boolean[])
RETURNS TABLE (error text, plan text) LANGUAGE plpgsql AS $prepare_each$
DECLARE
  n int;
  params int;
  args text;
  stmt text;
BEGIN
  FOR n IN 1 .. coalesce(array_length(queries, 1), 0) LOOP
    error := NULL;
    plan := NULL;
    stmt := 'hds_running_release_' || n;
    BEGIN
      EXECUTE format('PREPARE %I AS %s', stmt, queries[n]);
    EXCEPTION WHEN others THEN
      error := SQLERRM;
    END;
    IF error IS NULL THEN
      IF explain[n] THEN
        BEGIN
          SELECT coalesce(cardinality(p.parameter_types), 0) INTO params
            FROM pg_prepared_statements p WHERE p.name = stmt;
          args := CASE WHEN params > 0
                  THEN '(' || array_to_string(array_fill('NULL'::text, ARRAY[params]), ', ') || ')'
                  ELSE '' END;
          EXECUTE format('EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE %I%s', stmt, args) INTO plan;
        EXCEPTION WHEN others THEN
          plan := NULL;
        END;
      END IF;
      EXECUTE format('DEALLOCATE %I', stmt);
    END IF;
    RETURN NEXT;
  END LOOP;
END
$prepare_each$;
