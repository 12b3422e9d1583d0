//! Reading a database's schema from its catalogs as the SQL that recreates it, and replaying
//! that SQL into a scratch database.
//!
//! The SQL is written by the server itself (`format('%I')` quoting, `pg_get_constraintdef`,
//! `pg_get_indexdef`, `pg_get_viewdef`, `pg_get_functiondef`, `pg_get_triggerdef`,
//! `pg_get_partkeydef`, `format_type`), so it is the server's own account of each object in
//! its own version's syntax; the queries read columns every supported version (12–17) has.
//! Objects an extension owns are left to the extension (`CREATE EXTENSION`).
//!
//! Locks: reading the catalogs takes none, but the server deparses an index, a CHECK
//! constraint, a generated column, a view or a trigger's condition with its table open, under
//! AccessShareLock. So no transaction spans the read: each part is one statement, and its
//! locks end with it — held for the length of one statement ([`SchemaDump::lock_hold`]), never
//! for the whole read as `pg_dump` holds them. A table locked by a running migration makes
//! that statement wait up to the session's `lock_timeout` and the read fail: a plan cannot be
//! made while a migration runs anyway.

use std::time::{Duration, Instant};

use postgres::Client;

/// What is not the app's: the catalogs, toast and temporary schemas.
const USER_SCHEMA: &str =
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp'";

/// Frameworks' migration-history tables: their rows tell a framework's migrate command what
/// production has applied already, so on the copy it runs only what is new.
pub const HISTORY_TABLES: &[&str] = &[
    "schema_migrations",
    "ar_internal_metadata",
    "django_migrations",
    "flyway_schema_history",
    "knex_migrations",
    "alembic_version",
    "_sqlx_migrations",
    "goose_db_version",
    "__EFMigrationsHistory",
    "_prisma_migrations",
    "SequelizeMeta",
];

/// At most this many rows of one history table are copied.
const HISTORY_ROW_LIMIT: i64 = 100_000;

/// One statement of the copy, and what it recreates.
#[derive(Debug, Clone)]
pub struct Ddl {
    /// `table public.users`, `index public.users_email_idx`…
    pub what: String,
    /// The statement.
    pub sql: String,
}

/// A migration-history table's rows, each as JSON (`row_to_json`).
#[derive(Debug, Clone)]
pub struct HistoryTable {
    /// `public.schema_migrations`, quoted for SQL.
    pub table: String,
    /// Its rows.
    pub rows: Vec<String>,
}

/// A schema, read.
#[derive(Debug, Clone)]
pub struct SchemaDump {
    /// The server's `server_version_num` (150004 is 15.4).
    pub server_version_num: i32,
    /// The statements, in an order that recreates the schema.
    pub statements: Vec<Ddl>,
    /// The migration-history tables' rows.
    pub history: Vec<HistoryTable>,
    /// How long the read took.
    pub took: Duration,
    /// The longest any one statement held AccessShareLock on tables (the statements that
    /// deparse with a table open, and the history reads).
    pub lock_hold: Duration,
}

impl SchemaDump {
    /// The server's major version (15 for 150004).
    pub fn major(&self) -> u32 {
        (self.server_version_num / 10_000) as u32
    }
}

/// What replaying a dump did.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// Statements that ran.
    pub applied: usize,
    /// Statements that failed: what, and the server's message.
    pub failed: Vec<(String, String)>,
    /// History rows copied.
    pub history_rows: usize,
}

/// Each part of the schema: a label for what it recreates, and the query whose rows are
/// `(name, sql)`. In this order, each part finds what it depends on already there.
const PARTS: &[(&str, &str)] = &[
    ("schema", "SELECT n.nspname, format('CREATE SCHEMA IF NOT EXISTS %I', n.nspname) FROM pg_namespace n
        WHERE {user} AND n.nspname <> 'public'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
        ORDER BY n.oid"),
    ("extension", "SELECT e.extname, format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA %I', e.extname, n.nspname)
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY e.oid"),
    ("type", "SELECT n.nspname || '.' || t.typname, format('CREATE TYPE %I.%I AS ENUM (%s)', n.nspname, t.typname,
          (SELECT coalesce(string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder), '') FROM pg_enum e WHERE e.enumtypid = t.oid))
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'e' AND {user} AND {not_ext_type} ORDER BY t.oid"),
    ("domain", "SELECT n.nspname || '.' || t.typname, format('CREATE DOMAIN %I.%I AS %s', n.nspname, t.typname, format_type(t.typbasetype, t.typtypmod))
          || CASE WHEN t.typdefault IS NOT NULL THEN ' DEFAULT ' || t.typdefault ELSE '' END
          || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
          || coalesce((SELECT string_agg(format(' CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid)), '' ORDER BY c.oid)
                       FROM pg_constraint c WHERE c.contypid = t.oid), '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'd' AND {user} AND {not_ext_type} ORDER BY t.oid"),
    ("sequence", "SELECT n.nspname || '.' || c.relname,
          format('CREATE SEQUENCE IF NOT EXISTS %I.%I AS %s INCREMENT %s MINVALUE %s MAXVALUE %s START %s CACHE %s%s',
            n.nspname, c.relname, format_type(q.seqtypid, NULL), q.seqincrement, q.seqmin, q.seqmax, q.seqstart, q.seqcache,
            CASE WHEN q.seqcycle THEN ' CYCLE' ELSE '' END)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence q ON q.seqrelid = c.oid
        WHERE c.relkind = 'S' AND {user} AND {not_ext_class}
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i')
        ORDER BY c.oid"),
    ("function", "SELECT n.nspname || '.' || p.proname, pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prokind IN ('f', 'p') AND {user}
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
        ORDER BY p.oid"),
    ("table", "SELECT n.nspname || '.' || c.relname, format('CREATE %sTABLE %I.%I (%s)%s',
          CASE c.relpersistence WHEN 'u' THEN 'UNLOGGED ' ELSE '' END, n.nspname, c.relname,
          coalesce((SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
              || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY' WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
              || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid) || ') STORED'
                      WHEN ad.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(ad.adbin, 0) ELSE '' END
              || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END, ', ' ORDER BY a.attnum)
            FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), ''),
          CASE WHEN c.relkind = 'p' THEN ' PARTITION BY ' || pg_get_partkeydef(c.oid) ELSE '' END)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {user} AND {not_ext_class} ORDER BY c.oid"),
    ("partition", "SELECT n.nspname || '.' || c.relname, format('CREATE TABLE %I.%I PARTITION OF %I.%I %s', n.nspname, c.relname, pn.nspname, pc.relname,
            pg_get_expr(c.relpartbound, 0))
          || CASE WHEN c.relkind = 'p' THEN ' PARTITION BY ' || pg_get_partkeydef(c.oid) ELSE '' END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_inherits i ON i.inhrelid = c.oid JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
        WHERE c.relkind IN ('r', 'p') AND c.relispartition AND {user} ORDER BY c.oid"),
    ("sequence owner", "SELECT sn.nspname || '.' || s.relname, format('ALTER SEQUENCE %I.%I OWNED BY %I.%I.%I', sn.nspname, s.relname, tn.nspname, t.relname, a.attname)
        FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace
        JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a'
          AND sn.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY s.oid"),
    ("constraint", "SELECT n.nspname || '.' || c.relname || '.' || con.conname,
          format('ALTER TABLE %s %I.%I ADD CONSTRAINT %I %s', CASE WHEN c.relkind = 'p' THEN '' ELSE 'ONLY' END, n.nspname, c.relname, con.conname, pg_get_constraintdef(con.oid))
        FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE con.contype IN ('p', 'u', 'x', 'c') AND con.conislocal AND con.conparentid = 0 AND {user} AND {not_ext_class}
        ORDER BY con.oid"),
    ("index", "SELECT n.nspname || '.' || ic.relname, replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ')
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
        JOIN pg_class c ON c.oid = i.indrelid
        WHERE NOT ic.relispartition AND c.relkind <> 'm' AND {user} AND {not_ext_class}
          AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x'))
        ORDER BY i.indexrelid"),
    ("foreign key", "SELECT n.nspname || '.' || c.relname || '.' || con.conname,
          format('ALTER TABLE %s %I.%I ADD CONSTRAINT %I %s', CASE WHEN c.relkind = 'p' THEN '' ELSE 'ONLY' END, n.nspname, c.relname, con.conname, pg_get_constraintdef(con.oid))
        FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE con.contype = 'f' AND con.conislocal AND con.conparentid = 0 AND {user} AND {not_ext_class}
        ORDER BY con.oid"),
    ("view", "SELECT n.nspname || '.' || c.relname, format('CREATE %s %I.%I AS %s%s',
          CASE c.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END, n.nspname, c.relname,
          regexp_replace(pg_get_viewdef(c.oid), ';\\s*$', ''), CASE c.relkind WHEN 'm' THEN ' WITH NO DATA' ELSE '' END)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {user} AND {not_ext_class} ORDER BY c.oid"),
    ("index", "SELECT n.nspname || '.' || ic.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
        JOIN pg_class c ON c.oid = i.indrelid
        WHERE c.relkind = 'm' AND {user} AND {not_ext_class} ORDER BY i.indexrelid"),
    // Where each sequence stands (identity columns' included): a migration that inserts a row
    // (a framework's history row with a generated id) must not collide with the copied rows.
    ("sequence value", "SELECT s.schemaname || '.' || s.sequencename,
          format('SELECT setval(%L, %s, true)', format('%I.%I', s.schemaname, s.sequencename), s.last_value)
        FROM pg_sequences s WHERE s.last_value IS NOT NULL AND s.schemaname NOT IN ('pg_catalog', 'information_schema')"),
    ("trigger", "SELECT n.nspname || '.' || c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND coalesce((to_jsonb(t) ->> 'tgparentid')::oid, 0) = 0 AND {user} AND {not_ext_class}
        ORDER BY t.oid"),
];

/// The parts whose statement opens tables (AccessShareLock until the statement ends).
const OPENS_TABLES: &[&str] = &["table", "constraint", "index", "foreign key", "view", "trigger"];

fn not_extension(class: &str, alias: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{class}'::regclass AND d.objid = {alias}.oid AND d.deptype = 'e')"
    )
}

fn query_for(template: &str) -> String {
    template
        .replace("{user}", USER_SCHEMA)
        .replace("{not_ext_type}", &not_extension("pg_type", "t"))
        .replace("{not_ext_class}", &not_extension("pg_class", "c"))
}

/// Reads the schema through `client`, one statement per part (no transaction spans them, so
/// no lock outlives the statement that took it).
pub fn read(client: &mut Client) -> Result<SchemaDump, postgres::Error> {
    let started = Instant::now();
    let server_version_num: i32 = client.query_one("SELECT current_setting('server_version_num')::int", &[])?.get(0);
    let mut statements = Vec::new();
    let mut lock_hold = Duration::ZERO;
    for (kind, template) in PARTS {
        let began = Instant::now();
        let rows = client.query(query_for(template).as_str(), &[])?;
        if OPENS_TABLES.contains(kind) {
            lock_hold = lock_hold.max(began.elapsed());
        }
        for row in rows {
            let name: String = row.get(0);
            let sql: Option<String> = row.get(1);
            if let Some(sql) = sql {
                statements.push(Ddl { what: format!("{kind} {name}"), sql });
            }
        }
    }
    let history = read_history(client, &mut lock_hold)?;
    Ok(SchemaDump { server_version_num, statements, history, took: started.elapsed(), lock_hold })
}

fn read_history(client: &mut Client, lock_hold: &mut Duration) -> Result<Vec<HistoryTable>, postgres::Error> {
    let names: Vec<String> = HISTORY_TABLES.iter().map(|s| s.to_string()).collect();
    let tables = client.query(
        format!(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND c.relname = ANY($1) AND {USER_SCHEMA} ORDER BY c.oid"
        )
        .as_str(),
        &[&names],
    )?;
    let mut history = Vec::new();
    for t in tables {
        let table: String = t.get(0);
        let began = Instant::now();
        let rows = client
            .query(format!("SELECT row_to_json(t)::text FROM {table} t LIMIT {HISTORY_ROW_LIMIT}").as_str(), &[])?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        *lock_hold = (*lock_hold).max(began.elapsed());
        history.push(HistoryTable { table, rows });
    }
    Ok(history)
}

impl SchemaDump {
    /// Replays the schema into `client`'s database (a scratch database), each statement on its
    /// own so one that cannot be recreated (an extension the local server lacks) is said and
    /// the rest goes on; then the history rows.
    pub fn restore(&self, client: &mut Client) -> Result<Restored, postgres::Error> {
        // Function bodies may name tables created after them.
        client.batch_execute("SET check_function_bodies = off; SET client_min_messages = warning")?;
        let mut done = Restored::default();
        // All at once first (one round trip: thousands of tables take seconds one by one); when
        // anything fails, nothing of it stays, and each statement runs on its own instead so
        // the rest is recreated and what failed is named.
        let script: String = self.statements.iter().map(|d| format!("{};\n", d.sql)).collect();
        if client.batch_execute(&format!("BEGIN;\n{script}COMMIT;")).is_ok() {
            done.applied = self.statements.len();
        } else {
            client.batch_execute("ROLLBACK")?;
            for ddl in &self.statements {
                match client.batch_execute(&ddl.sql) {
                    Ok(()) => done.applied += 1,
                    Err(e) => done.failed.push((ddl.what.clone(), first_line(&e))),
                }
            }
        }
        for h in &self.history {
            let insert =
                format!("INSERT INTO {0} SELECT * FROM json_populate_record(NULL::{0}, $1::text::json)", h.table);
            for row in &h.rows {
                match client.execute(insert.as_str(), &[row]) {
                    Ok(_) => done.history_rows += 1,
                    Err(e) => {
                        done.failed.push((format!("rows of {}", h.table), first_line(&e)));
                        break;
                    }
                }
            }
        }
        Ok(done)
    }
}

fn first_line(e: &postgres::Error) -> String {
    let text = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
    text.lines().next().unwrap_or_default().to_string()
}
