//! `migrate-restart plan` end to end: the migration runs on a scratch database (another
//! database of the same test server, with the same schema), its locks are recorded there, and
//! the app's database — read once, never changed — is checked for who would make it wait.

use heroku_sim::Sim;
use test_support::acme::{acme_world, psql_migration, users_database};
use test_support::generation::Generation;
use test_support::sessions::{long_report, spawn, wait_until};
use test_support::tool::{OutputExt, Tool};
use test_support::PgCluster;

struct Setup {
    pg: PgCluster,
    _sim: Sim,
    tool: Tool,
    scratch: String,
}

/// acme's database has `users` (and `audit`); `scratch` is a copy of that schema.
fn setup() -> Setup {
    let pg = users_database().unwrap();
    pg.psql("postgres", "CREATE TABLE audit (id int)").unwrap();
    pg.psql("postgres", "CREATE DATABASE scratch").unwrap();
    pg.psql("scratch", "CREATE TABLE users (id int PRIMARY KEY); CREATE TABLE audit (id int)").unwrap();
    let sim = Sim::start(acme_world(&pg, Generation::Cedar)).unwrap();
    let tool = Tool::new(env!("CARGO_BIN_EXE_migrate-restart")).against(&sim);
    let scratch = pg.superuser_url("scratch");
    Setup { pg, _sim: sim, tool, scratch }
}

fn plan(s: &Setup, sql: &str, extra: &[&str]) -> std::process::Output {
    let migration = psql_migration(&s.pg, sql);
    let mut args = vec!["plan", "-a", "acme", "--scratch-url", &s.scratch];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", &migration]);
    s.tool.run(&args)
}

fn has_column(pg: &PgCluster, db: &str) -> bool {
    pg.psql(
        db,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'",
    )
    .unwrap()
        == "1"
}

/// Incident 000 before it happens: a long report reads `users`; the plan says the ALTER's
/// AccessExclusiveLock would wait for it and every query on `users` would queue behind it —
/// and a report on an unrelated table is no obstacle.
#[test]
fn a_long_reader_of_the_planned_table_is_named_and_exits_6() {
    let s = setup();
    let reader = long_report(&s.pg, &s.pg.superuser_url("postgres"), 120);
    let _unrelated = spawn(
        &s.pg.superuser_url("postgres"),
        "audit-export",
        "BEGIN; SELECT count(*) FROM audit; SELECT pg_sleep(120)",
    );
    let out = plan(&s, "ALTER TABLE users ADD COLUMN nickname text", &[]);
    assert_eq!(out.code(), 6, "{}", out.dump());
    let text = out.stdout_text();
    assert!(text.contains("1. ALTER TABLE public.users"), "{text}");
    assert!(text.contains("   AccessExclusiveLock on public.users (table)"), "{text}");
    assert!(
        text.contains(&format!("✗ pid {} (reporting) holds AccessShareLock on public.users", reader.pid))
            && text.contains("the migration's AccessExclusiveLock would wait, and every query on the table, reads included would queue behind it"),
        "{text}"
    );
    assert!(!text.contains("audit-export"), "a reader of another table is no obstacle: {text}");
    // It ran on the scratch database only; the app's database is as it was.
    assert!(has_column(&s.pg, "scratch") && !has_column(&s.pg, "postgres"));
    let left = s.pg.psql("scratch", "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE '_lockplan%'").unwrap();
    assert_eq!(left, "0", "the recorder is removed");

    let out = plan(&s, "ALTER TABLE users ADD COLUMN IF NOT EXISTS nickname text", &["--json"]);
    assert_eq!(out.code(), 6, "{}", out.dump());
    let doc = out.json();
    let report: migrate_restart::report::PlanReport = serde_json::from_value(doc.clone()).expect("a PlanReport");
    assert_eq!(doc["verdict"], "would_wait");
    assert_eq!(report.obstacles.len(), 1, "{doc}");
    assert_eq!(report.obstacles[0].pid, reader.pid);
    assert_eq!(doc["statements"][0]["locks"][0]["mode"], "AccessExclusiveLock");
}

#[test]
fn with_nothing_holding_the_planned_tables_the_plan_is_clear() {
    let s = setup();
    let _unrelated = spawn(
        &s.pg.superuser_url("postgres"),
        "audit-export",
        "BEGIN; SELECT count(*) FROM audit; SELECT pg_sleep(120)",
    );
    let out = plan(&s, "CREATE INDEX users_id_idx ON users (id)", &[]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let text = out.stdout_text();
    assert!(text.contains("   ShareLock on public.users (table)"), "{text}");
    assert!(text.contains("✓ Nothing on DATABASE_URL of acme"), "{text}");
}

/// CREATE INDEX CONCURRENTLY waits for every transaction open when it starts: with one open,
/// the plan cannot vouch (3) and names it.
#[test]
fn a_concurrently_statement_behind_an_open_transaction_cannot_be_vouched_for() {
    let s = setup();
    let open = spawn(&s.pg.superuser_url("postgres"), "idle-tx", "BEGIN; SELECT 1 FROM audit; SELECT pg_sleep(120)");
    wait_until("the transaction is open", || {
        s.pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'idle-tx' AND xact_start IS NOT NULL",
        )
        .is_ok_and(|n| n == "1")
    });
    let out = plan(&s, "CREATE INDEX CONCURRENTLY users_id_idx ON users (id)", &["--json"]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["verdict"], "cannot_vouch");
    assert!(doc["older_transactions"].as_array().unwrap().contains(&serde_json::json!(open.pid)), "{doc}");
    assert_eq!(doc["statements"][0]["waits_for_older_transactions"], true);
}

/// The scratch database must not be the app's: refused before anything runs. A migration that
/// fails on the scratch database gives no plan.
#[test]
fn the_apps_own_database_as_scratch_is_refused_and_a_failing_migration_gives_no_plan() {
    let s = setup();
    let production = s.pg.superuser_url("postgres");
    let migration = psql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let out = s.tool.run(&["plan", "-a", "acme", "--scratch-url", &production, "--", "sh", "-c", &migration]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(out.stderr_text().contains("the migration would run there"), "{}", out.dump());
    assert!(!has_column(&s.pg, "postgres"), "nothing ran on the app's database");

    let out = plan(&s, "ALTER TABLE nope ADD COLUMN x int", &[]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(out.stderr_text().contains("the migration failed on the scratch database"), "{}", out.dump());
    let left = s.pg.psql("scratch", "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE '_lockplan%'").unwrap();
    assert_eq!(left, "0", "the recorder is removed after a failure too");
}
