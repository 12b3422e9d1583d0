//! The app most end-to-end suites start from: `acme` (web×2) whose DATABASE_URL is a real
//! PostgreSQL holding `users` (1,000 rows) — the table the incidents' migrations alter — and
//! the migration command a framework would run against it.

use std::time::Duration;

use heroku_sim::World;

use crate::generation::Generation;
use crate::PgCluster;

/// A throwaway PostgreSQL with `users` (1,000 rows).
pub fn users_database() -> anyhow::Result<PgCluster> {
    let pg = PgCluster::start()?;
    pg.psql("postgres", "CREATE TABLE users AS SELECT g AS id FROM generate_series(1, 1000) g")?;
    Ok(pg)
}

/// acme (web×2, `puma`) on generation `g`, its DATABASE_URL `pg`'s `postgres` database, dynos
/// that start and stop in 100 ms.
pub fn acme_world(pg: &PgCluster, g: Generation) -> World {
    let mut w = World::default();
    w.add_app("acme");
    g.apply(&mut w, "acme");
    w.add_formation("acme", "web", 2, "puma", Duration::from_secs(3600));
    w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres"));
    w.timing.start_delay = Duration::from_millis(100);
    w.timing.stop_delay = Duration::from_millis(100);
    w
}

/// A migration as a framework runs it: psql against `$DATABASE_URL` (PGOPTIONS and PGAPPNAME
/// apply, as with any libpq client), stopping at the first error.
pub fn psql_migration(pg: &PgCluster, sql: &str) -> String {
    format!("{} \"$DATABASE_URL\" -X -q -v ON_ERROR_STOP=1 -c \"{sql}\"", pg.psql_path().display())
}

/// A plan document written by hand (`{… "verdict": …}`), completed with `made_for`: the
/// identity of `db` on `pg` as its server reports it, read here with SQL of the test's own.
pub fn plan_made_for(pg: &PgCluster, db: &str, plan_json: &str) -> String {
    let row = pg
        .psql(
            db,
            "SELECT (SELECT system_identifier FROM pg_control_system()), oid, datname FROM pg_database WHERE datname = current_database()",
        )
        .unwrap();
    let fields: Vec<&str> = row.split('|').collect();
    let made_for = format!(
        r#""made_for": {{"system_identifier": "{}", "database_oid": {}, "database": "{}"}}, "verdict""#,
        fields[0], fields[1], fields[2]
    );
    plan_json.replacen(r#""verdict""#, &made_for, 1)
}

/// A migration whose ALTER on `users` connects first, then has the database refuse every new
/// connection (`ALLOW_CONNECTIONS false`, set from `template1`: a database cannot refuse its
/// own), then waits for its lock: behind a reader it hits its lock timeout, and whatever
/// connects after it — a check before a retry — is refused. Restore with
/// `ALTER DATABASE postgres ALLOW_CONNECTIONS true` from `template1`.
pub fn migration_that_locks_out_new_connections(pg: &PgCluster) -> String {
    let psql = pg.psql_path().display().to_string();
    let template1 = pg.superuser_url("template1");
    format!(
        "{psql} \"$DATABASE_URL\" -X -q -v ON_ERROR_STOP=1 -c \"SELECT 'alter-connected', pg_sleep(0.3)\" -c \"ALTER TABLE users ADD COLUMN nickname text\" & p=$!; \
         until {psql} '{template1}' -X -tAc \"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%alter-connected%' AND pid <> pg_backend_pid()\" | grep -q 1; do sleep 0.05; done; \
         {psql} '{template1}' -X -q -c \"ALTER DATABASE postgres ALLOW_CONNECTIONS false\"; wait $p"
    )
}

/// A validating scan on production's data, in miniature: [`VALIDATING_SCAN`] checks every row
/// of `events` with a function that takes 50 ms a row, so it holds AccessExclusiveLock on
/// `events` for `rows` × 50 ms — a statement that waits for nothing and holds its lock as long
/// as the data takes.
pub fn slow_validation_table(pg: &PgCluster, rows: u32) -> anyhow::Result<()> {
    pg.psql(
        "postgres",
        &format!(
            "CREATE TABLE events (id int); INSERT INTO events SELECT generate_series(1, {rows}); \
             CREATE FUNCTION slow_ok(int) RETURNS bool LANGUAGE sql AS 'SELECT pg_sleep(0.05) IS NOT NULL'"
        ),
    )?;
    Ok(())
}

/// The statement [`slow_validation_table`] makes slow.
pub const VALIDATING_SCAN: &str = "ALTER TABLE events ADD CONSTRAINT events_ok CHECK (slow_ok(id))";

/// A rewrite of [`slow_validation_table`]'s `events` that takes as long (its USING calls the
/// slow function on every row): AccessExclusiveLock held, a new file written.
pub const SLOW_REWRITE: &str = "ALTER TABLE events ALTER COLUMN id TYPE bigint USING CASE WHEN slow_ok(id) THEN id END";

/// `events`' file (`relfilenode`): a rewrite that committed changed it.
pub fn events_file(pg: &PgCluster) -> String {
    pg.psql("postgres", "SELECT relfilenode FROM pg_class WHERE relname = 'events'").unwrap_or_default()
}

/// Whether [`VALIDATING_SCAN`]'s constraint is there (it committed).
pub fn validated(pg: &PgCluster) -> bool {
    pg.psql("postgres", "SELECT count(*) FROM pg_constraint WHERE conname = 'events_ok'").is_ok_and(|n| n == "1")
}

/// Whether a session named `app` holds AccessExclusiveLock on `events` (read from pg_locks).
pub fn holds_events_exclusively(pg: &PgCluster, app_prefix: &str) -> bool {
    pg.psql(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name LIKE '{app_prefix}%' AND l.granted AND l.mode = 'AccessExclusiveLock' \
             AND l.relation = 'events'::regclass"
        ),
    )
    .is_ok_and(|n| n == "1")
}

/// `events` on production: `rows` rows (id, an account, a hex payload, a time), analyzed, and
/// read by the site (300 index scans counted in its statistics) — a table a rewrite or an index
/// build holds for seconds at 1,000,000 rows.
pub fn busy_events(pg: &PgCluster, rows: u64) {
    pg.psql(
        "postgres",
        &format!(
            "CREATE TABLE events (id bigint PRIMARY KEY, account_id int NOT NULL, payload text, created_at timestamptz NOT NULL); \
             INSERT INTO events SELECT g, g % 5000, md5(g::text), timestamptz '2026-01-01' + g * interval '1 second' \
               FROM generate_series(1, {rows}) g; \
             ANALYZE events"
        ),
    )
    .expect("the events table");
    let mut site = crate::sessions::client(&pg.superuser_url("postgres"), "web.1");
    for id in 1..=300i64 {
        site.query_one("SELECT payload FROM events WHERE id = $1", &[&id]).expect("a site query");
    }
}

/// The running release's insert into `users.legacy_flag` (a column the next migration drops),
/// sent as a framework sends it (bound parameters) every 20 ms: what a contract step must wait
/// for.
pub fn old_release_inserting_legacy_flag(pg: &PgCluster) -> crate::sessions::Workload {
    crate::sessions::Workload::start(
        &pg.superuser_url("postgres"),
        "web.1",
        std::time::Duration::from_millis(20),
        |c, n| {
            let _ = c.execute("INSERT INTO users (id, legacy_flag) VALUES ($1, $2)", &[&(100_000 + n), &true]);
        },
    )
}

/// That insert as `pg_stat_statements` normalizes it, once it has been counted.
pub fn legacy_flag_insert_text(pg: &PgCluster) -> String {
    let text = || {
        pg.psql("postgres", "SELECT query FROM pg_stat_statements WHERE query LIKE 'INSERT INTO users%legacy_flag%'")
            .unwrap_or_default()
    };
    crate::sessions::wait_until("the insert is counted", || !text().is_empty());
    text()
}
