CREATE SCHEMA IF NOT EXISTS _lockplan;
CREATE TABLE IF NOT EXISTS _lockplan.statements (
  seq bigserial PRIMARY KEY,
  xid bigint NOT NULL DEFAULT txid_current(),
  tag text NOT NULL,
  object text,
  query text NOT NULL,
  ms float8,
  rows bigint,
  blocks bigint
);
-- A recorder installed by an earlier version keeps its table: the column is added.
ALTER TABLE _lockplan.statements ADD COLUMN IF NOT EXISTS blocks bigint;
CREATE TABLE IF NOT EXISTS _lockplan.unwatched (
  relation text NOT NULL,
  why text
);
CREATE TABLE IF NOT EXISTS _lockplan.held (
  seq bigint NOT NULL REFERENCES _lockplan.statements,
  relation text NOT NULL,
  relkind "char",
  mode text NOT NULL
);
CREATE TABLE IF NOT EXISTS _lockplan.rewrites (
  xid bigint NOT NULL DEFAULT txid_current(),
  seq bigint,
  relation text NOT NULL
);
CREATE TABLE IF NOT EXISTS _lockplan.dropped (
  xid bigint NOT NULL DEFAULT txid_current(),
  seq bigint,
  relation text NOT NULL,
  relkind "char"
);
-- The blocks of the database's own relations this backend has read so far (the server's count,
-- kept until the backend is idle, so a statement's reads are the difference from its start).
-- Whether a statement touched the rows is the server's word, not the time it took: on a busy
-- machine a catalog-only statement can take long. NULL where the server keeps no counts.
CREATE OR REPLACE FUNCTION _lockplan.blocks_read() RETURNS bigint LANGUAGE sql AS $$
  SELECT CASE WHEN current_setting('track_counts')::boolean THEN
    (SELECT coalesce(sum(pg_stat_get_xact_blocks_fetched(c.oid)), 0)::bigint
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid >= 16384 AND n.nspname <> '_lockplan') END
$$;
-- Marks where a statement begins: when, and how many blocks had been read.
CREATE OR REPLACE FUNCTION _lockplan.mark_start() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('lockplan.started', clock_timestamp()::text, false);
  PERFORM set_config('lockplan.blocks', coalesce(_lockplan.blocks_read()::text, ''), false);
END $$;
-- One statement and every relation lock its transaction holds now.
CREATE OR REPLACE FUNCTION _lockplan.record(tag text, obj text, nrows bigint, released oid[] DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  s bigint;
BEGIN
  INSERT INTO _lockplan.statements (tag, object, query, ms, rows, blocks)
    VALUES (tag, obj, current_query(), extract(epoch FROM clock_timestamp()
      - nullif(current_setting('lockplan.started', true), '')::timestamptz) * 1000, nrows,
      -- Negative when a relation counted at the start was dropped meanwhile: then unknown,
      -- never "no block read".
      nullif(greatest(_lockplan.blocks_read() - nullif(current_setting('lockplan.blocks', true), '')::bigint, -1), -1))
    RETURNING seq INTO s;
  INSERT INTO _lockplan.held (seq, relation, relkind, mode)
    SELECT s, n.nspname || '.' || c.relname, c.relkind, l.mode
    FROM pg_locks l
    JOIN pg_class c ON c.oid = l.relation
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', '_lockplan')
      AND NOT (l.relation = ANY (released) AND l.mode = 'RowExclusiveLock');
  RETURN s;
END $$;
-- Data statements fire no event trigger: statement-level triggers on every table time and
-- record them (the transition tables count the rows), each at the end of the statement, inside
-- its transaction. A statement run by a trigger (a foreign key's cascade) is its parent's: its
-- BEFORE trigger runs nested and marks the table, and its AFTER trigger — which fires at the
-- parent's end, not nested — skips one mark instead of recording.
CREATE OR REPLACE FUNCTION _lockplan.before_dml() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pg_trigger_depth() = 1 THEN
    PERFORM _lockplan.mark_start();
    -- A new top-level statement: marks left by an earlier one's cascades are stale, and its
    -- own table's first AFTER trigger is its own, whatever a cascade marked.
    PERFORM set_config('lockplan.nested', '', true);
    PERFORM set_config('lockplan.top', TG_RELID::text, true);
  ELSE
    PERFORM set_config('lockplan.nested', coalesce(current_setting('lockplan.nested', true), '') || TG_RELID || ',', true);
  END IF;
  RETURN NULL;
END $$;
-- Whether this AFTER trigger is a nested statement's (and takes its mark off).
CREATE OR REPLACE FUNCTION _lockplan.was_nested(rel oid) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  marks text := coalesce(current_setting('lockplan.nested', true), '');
BEGIN
  IF pg_trigger_depth() > 1 THEN
    RETURN true;
  END IF;
  IF current_setting('lockplan.top', true) = rel::text THEN
    PERFORM set_config('lockplan.top', '', true);
    RETURN false;
  END IF;
  IF position(',' || rel || ',' IN ',' || marks) = 0 THEN
    RETURN false;
  END IF;
  PERFORM set_config('lockplan.nested', overlay(',' || marks PLACING ',' FROM position(',' || rel || ',' IN ',' || marks) FOR length(rel::text) + 2), true);
  PERFORM set_config('lockplan.nested', substr(current_setting('lockplan.nested'), 2), true);
  RETURN true;
END $$;
CREATE OR REPLACE FUNCTION _lockplan.after_new_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  IF NOT _lockplan.was_nested(TG_RELID) THEN
    SELECT count(*) INTO n FROM _lockplan_new_rows;
    -- An INSERT opens the table's indexes itself and lets go of them at its end (the
    -- executor's own lock): what the transaction keeps is recorded — the ones an earlier
    -- statement of it took stay held.
    PERFORM _lockplan.record(TG_OP, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, n, CASE WHEN TG_OP = 'INSERT' THEN
      ARRAY(SELECT i.indexrelid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace ns ON ns.oid = c.relnamespace
        WHERE i.indrelid = TG_RELID AND NOT EXISTS (
          SELECT 1 FROM _lockplan.held h JOIN _lockplan.statements st ON st.seq = h.seq
          WHERE st.xid = txid_current() AND h.mode = 'RowExclusiveLock' AND h.relation = ns.nspname || '.' || c.relname))
      ELSE '{}' END);
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION _lockplan.after_old_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  IF NOT _lockplan.was_nested(TG_RELID) THEN
    SELECT count(*) INTO n FROM _lockplan_old_rows;
    PERFORM _lockplan.record(TG_OP, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, n);
  END IF;
  RETURN NULL;
END $$;
-- TRUNCATE gives the table a new file (PostgreSQL's documentation: it reclaims disk space at
-- once): a rewrite as far as the lock's holders are concerned, recorded as one.
CREATE OR REPLACE FUNCTION _lockplan.after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  s bigint;
BEGIN
  IF NOT _lockplan.was_nested(TG_RELID) THEN
    s := _lockplan.record(TG_OP, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, NULL);
    INSERT INTO _lockplan.rewrites (seq, relation) VALUES (s, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
  END IF;
  RETURN NULL;
END $$;
-- Puts the statement triggers on one table (a table the migration creates gets them too).
CREATE OR REPLACE FUNCTION _lockplan.watch(t regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('lockplan.internal', 'on', true);
  EXECUTE format('CREATE TRIGGER _lockplan_b BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION _lockplan.before_dml()', t);
  EXECUTE format('CREATE TRIGGER _lockplan_i AFTER INSERT ON %s REFERENCING NEW TABLE AS _lockplan_new_rows FOR EACH STATEMENT EXECUTE FUNCTION _lockplan.after_new_rows()', t);
  EXECUTE format('CREATE TRIGGER _lockplan_u AFTER UPDATE ON %s REFERENCING NEW TABLE AS _lockplan_new_rows FOR EACH STATEMENT EXECUTE FUNCTION _lockplan.after_new_rows()', t);
  EXECUTE format('CREATE TRIGGER _lockplan_d AFTER DELETE ON %s REFERENCING OLD TABLE AS _lockplan_old_rows FOR EACH STATEMENT EXECUTE FUNCTION _lockplan.after_old_rows()', t);
  EXECUTE format('CREATE TRIGGER _lockplan_t AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION _lockplan.after_truncate()', t);
  PERFORM set_config('lockplan.internal', 'off', true);
EXCEPTION WHEN others THEN
  PERFORM set_config('lockplan.internal', 'off', true);
  INSERT INTO _lockplan.unwatched (relation, why) VALUES (t::text, SQLERRM);
END $$;
CREATE OR REPLACE FUNCTION _lockplan.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
  s bigint;
  obj text;
  t oid;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE schema_name = '_lockplan')
     OR current_setting('lockplan.internal', true) = 'on' THEN
    RETURN;
  END IF;
  SELECT object_identity INTO obj FROM pg_event_trigger_ddl_commands() LIMIT 1;
  s := _lockplan.record(TG_TAG, obj, NULL);
  -- CREATE INDEX CONCURRENTLY holds ShareUpdateExclusiveLock on its table at session level
  -- and has released it when this runs: that one lock is recorded from the documentation.
  IF TG_TAG = 'CREATE INDEX' AND current_query() ~* '\mconcurrently\M' THEN
    INSERT INTO _lockplan.held (seq, relation, relkind, mode)
      SELECT s, n.nspname || '.' || c.relname, c.relkind, 'ShareUpdateExclusiveLock'
      FROM pg_event_trigger_ddl_commands() d
      JOIN pg_index i ON i.indexrelid = d.objid
      JOIN pg_class c ON c.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace;
  END IF;
  -- A dropped relation is gone from pg_class before this runs; DROP holds AccessExclusiveLock
  -- on it until the transaction ends.
  INSERT INTO _lockplan.held (seq, relation, relkind, mode)
    SELECT s, d.relation, d.relkind, 'AccessExclusiveLock' FROM _lockplan.dropped d
    WHERE d.seq IS NULL AND d.xid = txid_current();
  UPDATE _lockplan.dropped SET seq = s WHERE seq IS NULL AND xid = txid_current();
  -- A rewrite happens inside the command, before this trigger: it is this statement's.
  UPDATE _lockplan.rewrites SET seq = s WHERE seq IS NULL AND xid = txid_current();
  -- A materialized view refreshed without CONCURRENTLY gets a new file: a rewrite.
  IF TG_TAG = 'REFRESH MATERIALIZED VIEW' AND current_query() !~* '\mconcurrently\M' THEN
    INSERT INTO _lockplan.rewrites (seq, relation) VALUES (s, obj);
  END IF;
  -- A table it made is watched for data statements from now on.
  FOR t IN SELECT objid FROM pg_event_trigger_ddl_commands()
    WHERE object_type = 'table' AND command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
  LOOP
    PERFORM _lockplan.watch(t);
  END LOOP;
END $$;
-- When each DDL command began (statement_timestamp() is one for a whole multi-statement string);
-- for the session, not the transaction: CREATE INDEX CONCURRENTLY commits inside itself.
CREATE OR REPLACE FUNCTION _lockplan.on_start() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('lockplan.internal', true) IS DISTINCT FROM 'on' THEN
    PERFORM _lockplan.mark_start();
  END IF;
END $$;
CREATE OR REPLACE FUNCTION _lockplan.on_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO _lockplan.dropped (relation, relkind)
    SELECT d.object_identity,
      CASE d.object_type WHEN 'table' THEN 'r' WHEN 'index' THEN 'i' WHEN 'sequence' THEN 'S'
        WHEN 'view' THEN 'v' WHEN 'materialized view' THEN 'm' END::"char"
    FROM pg_event_trigger_dropped_objects() d
    WHERE d.object_type IN ('table', 'index', 'sequence', 'view', 'materialized view')
      AND d.schema_name NOT IN ('_lockplan', 'pg_toast', 'pg_temp');
END $$;
CREATE OR REPLACE FUNCTION _lockplan.on_rewrite() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO _lockplan.rewrites (relation)
    SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = pg_event_trigger_table_rewrite_oid();
END $$;
DROP EVENT TRIGGER IF EXISTS _lockplan_start;
CREATE EVENT TRIGGER _lockplan_start ON ddl_command_start EXECUTE FUNCTION _lockplan.on_start();
DROP EVENT TRIGGER IF EXISTS _lockplan_ddl;
CREATE EVENT TRIGGER _lockplan_ddl ON ddl_command_end EXECUTE FUNCTION _lockplan.on_ddl();
DROP EVENT TRIGGER IF EXISTS _lockplan_drop;
CREATE EVENT TRIGGER _lockplan_drop ON sql_drop EXECUTE FUNCTION _lockplan.on_drop();
DROP EVENT TRIGGER IF EXISTS _lockplan_rewrite;
CREATE EVENT TRIGGER _lockplan_rewrite ON table_rewrite EXECUTE FUNCTION _lockplan.on_rewrite();
SELECT _lockplan.watch(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_lockplan')
    AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
    AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND g.tgname = '_lockplan_b');
CREATE OR REPLACE VIEW _lockplan.locks_by_statement AS
  WITH strongest AS (
    SELECT h.seq, h.relation, h.relkind,
      (array_agg(h.mode ORDER BY array_position(ARRAY['AccessShareLock','RowShareLock','RowExclusiveLock',
        'ShareUpdateExclusiveLock','ShareLock','ShareRowExclusiveLock','ExclusiveLock','AccessExclusiveLock'], h.mode) DESC))[1] AS mode
    FROM _lockplan.held h GROUP BY h.seq, h.relation, h.relkind
  )
  SELECT s.seq, s.tag, s.object, s.query, s.xid, st.relation, st.relkind, st.mode, s.ms, s.rows,
    NOT EXISTS (
      SELECT 1 FROM _lockplan.statements p JOIN strongest ps ON ps.seq = p.seq
      WHERE p.xid = s.xid AND p.seq < s.seq AND ps.relation = st.relation AND ps.mode = st.mode
    ) AS is_new,
    (SELECT array_agg(DISTINCT r.relation) FROM _lockplan.rewrites r WHERE r.seq = s.seq) AS rewrites,
    s.blocks
  FROM _lockplan.statements s LEFT JOIN strongest st ON st.seq = s.seq;
