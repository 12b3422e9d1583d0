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

/// A long transaction that reads `audit`, a table no migration here touches.
fn audit_export(pg: &PgCluster) -> test_support::sessions::Running {
    spawn(&pg.superuser_url("postgres"), "audit-export", "BEGIN; SELECT count(*) FROM audit; SELECT pg_sleep(120)")
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
    let _unrelated = audit_export(&s.pg);
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
    // What would queue behind the lock, and how busy the table is (pg_stat_user_tables).
    let busy = text.lines().find(|l| l.starts_with("   public.users: about ")).unwrap_or_else(|| panic!("{text}"));
    assert!(busy.ends_with("would queue behind its AccessExclusiveLock while it waits and while it is held"), "{busy}");
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
    let _unrelated = audit_export(&s.pg);
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
    // The same database spelled otherwise: `localhost`, another user, extra parameters. The
    // server says which database it is, whatever the URL.
    s.pg.psql("postgres", "CREATE ROLE planner LOGIN SUPERUSER PASSWORD 'pw'").unwrap();
    for url in [
        production.replace("127.0.0.1", "localhost"),
        s.pg.url("planner", "pw", "postgres"),
        format!("{production}&application_name=scratch&connect_timeout=5"),
    ] {
        let out = s.tool.run(&["plan", "-a", "acme", "--scratch-url", &url, "--", "sh", "-c", &migration]);
        assert_eq!(out.code(), 5, "{url}: {}", out.dump());
        assert!(
            out.stderr_text().contains("itself (the same server and database: postgres on cluster"),
            "{}",
            out.dump()
        );
        assert!(!has_column(&s.pg, "postgres"), "nothing ran on the app's database");
    }

    let out = plan(&s, "ALTER TABLE nope ADD COLUMN x int", &[]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(out.stderr_text().contains("the migration failed on the scratch database"), "{}", out.dump());
    let left = s.pg.psql("scratch", "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE '_lockplan%'").unwrap();
    assert_eq!(left, "0", "the recorder is removed after a failure too");
}

/// The migration-history table Active Record creates, and the app's first migration applied.
const RAILS_APPLIED: &str = r#"
CREATE TABLE "schema_migrations" ("version" character varying NOT NULL PRIMARY KEY);
CREATE TABLE "ar_internal_metadata" ("key" character varying NOT NULL PRIMARY KEY, "value" character varying, "created_at" timestamp(6) NOT NULL, "updated_at" timestamp(6) NOT NULL);
INSERT INTO "ar_internal_metadata" VALUES ('environment', 'production', now(), now());
"#;

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Applies the framework's migrations whose files are in `dir` to `db`, as its migrate
/// command would.
fn migrate(pg: &PgCluster, db: &str, kind: &str, dir: &std::path::Path) {
    let status = std::process::Command::new(fixtures().join("migrate.sh"))
        .args([kind, dir.to_str().unwrap()])
        .env("DATABASE_URL", pg.superuser_url(db))
        .env("PSQL", pg.psql_path())
        .status()
        .unwrap();
    assert!(status.success(), "{kind} migrations on {db}");
}

/// A directory with the first `n` migration files of `dir` (production has applied those).
fn first_migrations(dir: &std::path::Path, n: usize) -> test_support::tempfile::TempDir {
    let applied = test_support::tempfile::tempdir().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files.into_iter().take(n) {
        std::fs::copy(&f, applied.path().join(f.file_name().unwrap())).unwrap();
    }
    applied
}

/// The tool against `sim`, its temporary directory (where a copy's server lives) in `tmp`, the
/// migrate stand-in using the test server's psql.
fn planner(sim: &Sim, pg: &PgCluster, tmp: &std::path::Path) -> Tool {
    Tool::new(env!("CARGO_BIN_EXE_migrate-restart"))
        .against(sim)
        .env("TMPDIR", tmp.to_str().unwrap())
        .env("PSQL", pg.psql_path().to_str().unwrap())
}

/// Plans with the tool's own copy (no --scratch-url).
fn plan_on_a_copy(tool: &Tool, kind: &str, dir: &std::path::Path) -> std::process::Output {
    let migrate = fixtures().join("migrate.sh");
    tool.run(&["plan", "-a", "acme", "--json", "--", migrate.to_str().unwrap(), kind, dir.to_str().unwrap()])
}

/// A Rails app's next migration, planned on the copy the tool makes: production's schema and
/// its `schema_migrations` rows are copied into a local server of the same major version, so
/// the migrate command runs only the migration production lacks (re-running the first would
/// fail: its table exists); a long report on `users` is named; production is not changed and
/// the local server leaves nothing behind.
#[test]
fn a_rails_migration_is_planned_on_a_copy_of_production_with_its_history() {
    let pg = PgCluster::start().unwrap();
    pg.psql("postgres", RAILS_APPLIED).unwrap();
    let migrations = fixtures().join("rails/db/migrate");
    migrate(&pg, "postgres", "rails", first_migrations(&migrations, 1).path());
    pg.psql("postgres", "INSERT INTO users (email, created_at, updated_at) SELECT 'u' || g || '@example.com', now(), now() FROM generate_series(1, 100) g").unwrap();
    let sim = Sim::start(acme_world(&pg, Generation::Cedar)).unwrap();
    let tmp = test_support::tempfile::tempdir().unwrap();
    let tool = planner(&sim, &pg, tmp.path());
    let reader = long_report(&pg, &pg.superuser_url("postgres"), 120);

    let out = plan_on_a_copy(&tool, "rails", &migrations);
    assert_eq!(out.code(), 6, "{}", out.dump());
    let report: migrate_restart::report::PlanReport = serde_json::from_value(out.json()).expect("a PlanReport");
    let copy = report.schema_copy.as_ref().expect("the tool made the copy");
    assert_eq!(copy.server_major, pg.server_major().unwrap());
    assert_eq!(copy.history_rows, 2, "schema_migrations and ar_internal_metadata rows: {copy:?}");
    assert!(copy.not_copied.is_empty(), "{copy:?}");
    assert!(copy.lock_hold_ms < 2000, "{copy:?}");
    let tags: Vec<(&str, Option<&str>)> =
        report.statements.iter().map(|s| (s.tag.as_str(), s.object.as_deref())).collect();
    assert_eq!(
        tags,
        vec![
            ("ALTER TABLE", Some("public.users")),
            ("CREATE INDEX", Some("public.index_users_on_nickname")),
            ("INSERT", Some("public.schema_migrations")),
        ],
        "only the migration production lacks ran, and recorded itself"
    );
    assert_eq!(report.obstacles.iter().map(|o| o.pid).collect::<Vec<_>>(), vec![reader.pid]);
    assert!(report.activity.iter().any(|a| a.relation == "public.users"), "{:?}", report.activity);
    assert!(out.stderr_text().contains("== 20261122000000_add_nickname_to_users: migrating"), "{}", out.dump());
    // Production is as it was; the local server and its directory are gone.
    let columns = pg
        .psql(
            "postgres",
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'",
        )
        .unwrap();
    assert_eq!(columns, "0");
    assert_eq!(pg.psql("postgres", "SELECT count(*) FROM schema_migrations").unwrap(), "1");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "the scratch server's directory is removed");
    let password = &report.scratch;
    assert!(!out.stderr_text().contains("postgres://postgres:"), "no scratch URL with its password: {password}");
}

/// Incident 001 before it happens, on a Django app: the next migration adds a column (its
/// default added, then dropped) and a deferrable foreign key; a backup's `COPY` reads
/// `accounts_user`. The plan shows the foreign key's lock on both tables and names the backup
/// as what the ALTER would wait for.
#[test]
fn a_django_migration_names_the_backup_its_alter_would_wait_for() {
    let pg = PgCluster::start().unwrap();
    pg.psql(
        "postgres",
        r#"CREATE TABLE "django_migrations" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL, "applied" timestamp with time zone NOT NULL)"#,
    )
    .unwrap();
    let migrations = fixtures().join("django/migrations");
    migrate(&pg, "postgres", "django", first_migrations(&migrations, 1).path());
    let sim = Sim::start(acme_world(&pg, Generation::Cedar)).unwrap();
    let tmp = test_support::tempfile::tempdir().unwrap();
    let tool = planner(&sim, &pg, tmp.path());
    let backup = spawn(
        &pg.superuser_url("postgres"),
        "Heroku Postgres Backups",
        "BEGIN; COPY (SELECT * FROM accounts_user) TO stdout; SELECT pg_sleep(120)",
    );
    wait_until("the backup holds accounts_user", || {
        pg.psql("postgres", "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'accounts_user' AND l.granted AND l.mode = 'AccessShareLock'")
            .is_ok_and(|n| n == "1")
    });
    let out = plan_on_a_copy(&tool, "django", &migrations);
    assert_eq!(out.code(), 6, "{}", out.dump());
    let report: migrate_restart::report::PlanReport = serde_json::from_value(out.json()).expect("a PlanReport");
    assert_eq!(report.schema_copy.as_ref().unwrap().history_rows, 1);
    let fk = report.statements.iter().find(|s| s.query.contains("FOREIGN KEY")).expect("the foreign key");
    let fk_locks: Vec<(&str, &str, bool)> =
        fk.locks.iter().filter(|l| l.kind == "table").map(|l| (l.relation.as_str(), l.mode.name(), l.new)).collect();
    // One transaction: accounts_user is already held in AccessExclusiveLock since the ALTER;
    // the foreign key adds ShareRowExclusiveLock on the invoices table.
    assert_eq!(
        fk_locks,
        vec![
            ("public.accounts_user", "AccessExclusiveLock", false),
            ("public.billing_invoice", "ShareRowExclusiveLock", true)
        ],
        "{:?}",
        fk.locks
    );
    let obstacle = report.obstacles.first().expect("the backup");
    assert_eq!((obstacle.pid, obstacle.application_name.as_deref()), (backup.pid, Some("Heroku Postgres Backups")));
    assert_eq!(obstacle.relation, "public.accounts_user");
}

/// Read on a follower, the plan cannot vouch: the locks that would make the migration wait are
/// held on the leader.
#[test]
fn on_a_follower_the_plan_cannot_vouch() {
    let s = setup();
    let follower = s.pg.start_follower().unwrap();
    let migration = psql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let url = follower.superuser_url("postgres");
    let out = s.tool.run(&[
        "plan",
        "--database-url",
        &url,
        "--scratch-url",
        &s.scratch,
        "--json",
        "--",
        "sh",
        "-c",
        &migration,
    ]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["verdict"], "cannot_vouch");
    assert!(doc["cannot_vouch"][0].as_str().unwrap().starts_with("this is a follower"), "{doc}");
}

/// `--plan FILE` narrows the preflight to the plan: a long transaction on `audit` refuses the
/// migration without a plan, and is set aside (and said) with one whose only lock is on
/// `users`; a long report on `users` still refuses it.
#[test]
fn with_a_plan_the_preflight_refuses_only_for_sessions_in_its_way() {
    let s = setup();
    let alter = "ALTER TABLE users ADD COLUMN nickname text";
    let out = plan(&s, alter, &["--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let file = s.tool.home().join("plan.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let export = audit_export(&s.pg);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let migration = psql_migration(&s.pg, alter);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "-a",
            "acme",
            "--command",
            &migration,
            "--confirm",
            "acme",
            "--restart",
            "none",
            "--max-xact-age",
            "1s",
        ];
        args.extend_from_slice(extra);
        s.tool.run(&args)
    };
    let out = run(&[]);
    assert_eq!(out.code(), 5, "without a plan the long transaction refuses: {}", out.dump());
    assert!(!has_column(&s.pg, "postgres"));

    let out = run(&["--plan", file.to_str().unwrap(), "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["preflight"]["set_aside"][0]["pid"], export.pid, "{doc}");
    assert_eq!(doc["preflight"]["findings"], serde_json::json!([]));
    assert!(out.stderr_text().contains("preflight, narrowed to the plan: set aside 1 session"), "{}", out.dump());
    assert!(has_column(&s.pg, "postgres"), "migrated");

    let reader = long_report(&s.pg, &s.pg.superuser_url("postgres"), 120);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let drop = psql_migration(&s.pg, "ALTER TABLE users DROP COLUMN nickname");
    let out = s.tool.run(&[
        "-a",
        "acme",
        "--command",
        &drop,
        "--confirm",
        "acme",
        "--restart",
        "none",
        "--max-xact-age",
        "1s",
        "--plan",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.code(), 5, "a reader of users is in the plan's way: {}", out.dump());
    assert!(out.stdout_text().contains(&format!("pid {} (reporting", reader.pid)), "{}", out.dump());

    std::fs::write(&file, "{}").unwrap();
    let out = run(&["--plan", file.to_str().unwrap()]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("not a plan written by `migrate-restart plan --json`"), "{}", out.dump());
}

/// While a migration runs on the app's database, no copy is made: it would read a schema that
/// is changing, beside the migration's locks. Refused (5), nothing run; with --scratch-url the
/// plan still runs (the copy is the user's).
#[test]
fn no_copy_is_made_while_a_migration_runs() {
    let s = setup();
    let _migration = spawn(
        &s.pg.superuser_url("postgres"),
        "migrate-restart/run.1001",
        "BEGIN; LOCK TABLE audit IN SHARE MODE; SELECT pg_sleep(120)",
    );
    wait_until("the migration's transaction is open", || {
        s.pg.psql("postgres", "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'audit' AND l.mode = 'ShareLock'")
            .is_ok_and(|n| n == "1")
    });
    let tmp = test_support::tempfile::tempdir().unwrap();
    let migration = psql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let out = s.tool.run(&[
        "plan",
        "-a",
        "acme",
        "--",
        "sh",
        "-c",
        &format!("touch {}/ran; {migration}", tmp.path().display()),
    ]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(
        out.stderr_text().contains("a migration is running on DATABASE_URL of acme (postgresql-teal-12345) (pid "),
        "{}",
        out.dump()
    );
    assert!(!tmp.path().join("ran").exists(), "nothing was run");
    let out = plan(&s, "ALTER TABLE users ADD COLUMN nickname text", &[]);
    assert_eq!(out.code(), 0, "{}", out.dump());
}

/// Without COMMAND, the plan runs the Procfile's `release:` line (through `sh -c`, as the
/// release phase does), from the directory it is run in.
#[test]
fn without_a_command_the_procfiles_release_line_is_planned() {
    let s = setup();
    let migration = psql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    std::fs::write(s.tool.home().join("Procfile"), format!("web: puma\nrelease: {migration}\n")).unwrap();
    let out = s.tool.run_in(s.tool.home(), &["plan", "-a", "acme", "--scratch-url", &s.scratch, "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let report: migrate_restart::report::PlanReport = serde_json::from_value(out.json()).expect("a PlanReport");
    assert_eq!(report.command, vec!["sh".to_string(), "-c".to_string(), migration]);
    assert_eq!(report.statements[0].object.as_deref(), Some("public.users"));
    assert!(has_column(&s.pg, "scratch") && !has_column(&s.pg, "postgres"));
}

/// The guard in the slug, built beside this tool.
fn migrate_guard() -> std::path::PathBuf {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_migrate-restart")).with_file_name("migrate-guard");
    assert!(bin.exists(), "{} is missing: cargo build --workspace --bins (scripts/test does)", bin.display());
    bin
}

/// The guard as the release dyno runs it, with `args` and the release command `script`.
fn guard(s: &Setup, args: &[&str], script: &str) -> std::process::Output {
    std::process::Command::new(migrate_guard())
        .args(args)
        .args(["--", "sh", "-c", script])
        .env("DATABASE_URL", s.pg.superuser_url("postgres"))
        .env("DYNO", "release.7")
        .current_dir(s.tool.home())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// One scene, three judges: a reader that has just begun (younger than any --max-xact-age, so
/// the preflight alone lets it pass) holds `users`, which the plan's ALTER locks
/// AccessExclusive. The plan says the migration would wait (6); with that plan the run's
/// preflight refuses (5), `release --plan` refuses the deploy step (5) and the guard waits for
/// it and refuses when it does not end (5). None of them starts the migration.
#[test]
fn with_a_plan_a_session_in_its_way_stops_the_plan_the_run_the_release_and_the_guard_alike() {
    let s = setup();
    let alter = "ALTER TABLE users ADD COLUMN nickname text";
    let out = plan(&s, alter, &["--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let file = s.tool.home().join("plan.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let file = file.to_str().unwrap();

    let reader =
        spawn(&s.pg.superuser_url("postgres"), "reporting", "BEGIN; SELECT count(*) FROM users; SELECT pg_sleep(120)");
    wait_until("the reader holds users", || {
        s.pg.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_locks WHERE pid = {} AND relation = 'users'::regclass AND granted",
                reader.pid
            ),
        )
        .is_ok_and(|n| n == "1")
    });
    // The scratch database is as it was before the migration (it ran there once already).
    s.pg.psql("scratch", "ALTER TABLE users DROP COLUMN nickname").unwrap();
    let out = plan(&s, alter, &["--json"]);
    assert_eq!(out.code(), 6, "the plan: it would wait: {}", out.dump());
    assert_eq!(out.json()["obstacles"][0]["pid"], reader.pid);

    let migration = psql_migration(&s.pg, alter);
    let out =
        s.tool.run(&["-a", "acme", "--command", &migration, "--confirm", "acme", "--restart", "none", "--plan", file]);
    assert_eq!(out.code(), 5, "the run's preflight with the plan: {}", out.dump());
    assert!(
        out.stdout_text().contains(&format!(
            "pid {} (reporting) holds AccessShareLock on public.users, which the migration locks AccessExclusiveLock",
            reader.pid
        )),
        "{}",
        out.dump()
    );
    assert!(!out.dump().contains("nothing would make the migration wait"), "{}", out.dump());

    let out = s.tool.run(&["release", "-a", "acme", "--confirm", "acme", "--plan", file, "--", "touch", "deployed"]);
    assert_eq!(out.code(), 5, "release --plan: {}", out.dump());
    assert!(!s.tool.home().join("deployed").exists(), "the deploy step did not run");

    let out = guard(&s, &["--plan", file, "--wait-for-clear", "1s"], &migration);
    assert_eq!(out.code(), 5, "the guard: {}", out.dump());
    assert!(!has_column(&s.pg, "postgres"), "no judge started the migration");
}

/// A plan that cannot vouch, records no lock, was made for another database or names relations
/// this database does not have: every `--plan` refuses it (2, one line saying which) before
/// anything starts, instead of reading it as "nothing in the way".
#[test]
fn a_plan_that_cannot_vouch_or_is_for_another_database_is_refused_by_every_plan_flag() {
    let s = setup();
    let write = |name: &str, text: &[u8]| {
        let p = s.tool.home().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    // The tool's own plan of a migration that runs no DDL: it says it cannot vouch.
    let out = s.tool.run(&["plan", "-a", "acme", "--scratch-url", &s.scratch, "--json", "--", "true"]);
    assert_eq!(out.json()["verdict"], "cannot_vouch", "{}", out.dump());
    let nothing = write("nothing.json", &out.stdout);
    // A plan made for another database (another app's, with the same tables), used against
    // the app's.
    s.pg.psql("postgres", "CREATE DATABASE other").unwrap();
    s.pg.psql("other", "CREATE TABLE users (id int PRIMARY KEY); CREATE TABLE audit (id int)").unwrap();
    let alter = psql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    let other_url = s.pg.superuser_url("other");
    let args = ["plan", "-a", "acme", "--scratch-url", &s.scratch, "--database-url", &other_url, "--json"];
    let out = s.tool.run(&[&args[..], &["--", "sh", "-c", &alter]].concat());
    let other = write("other.json", &out.stdout);
    assert!(!out.stdout.is_empty(), "{}", out.dump());
    // A plan for this database, naming a table it does not have.
    s.pg.psql("scratch", "ALTER TABLE users DROP COLUMN IF EXISTS nickname").unwrap();
    let out = plan(&s, "ALTER TABLE users ADD COLUMN nickname text", &["--json"]);
    let renamed = String::from_utf8_lossy(&out.stdout).replace("public.users", "public.customers");
    let missing = write("missing.json", renamed.as_bytes());
    s.pg.psql("scratch", "ALTER TABLE users DROP COLUMN IF EXISTS nickname").unwrap();

    let migration = psql_migration(&s.pg, "ALTER TABLE users ADD COLUMN nickname text");
    for (file, why) in [
        (&nothing, "the plan says it cannot vouch for this migration"),
        (&other, "made for database other"),
        (&missing, "names 1 relation this database does not have (public.customers)"),
    ] {
        let run = s.tool.run(&[
            "-a",
            "acme",
            "--command",
            &migration,
            "--confirm",
            "acme",
            "--restart",
            "none",
            "--plan",
            file,
        ]);
        let release =
            s.tool.run(&["release", "-a", "acme", "--confirm", "acme", "--plan", file, "--", "touch", "deployed"]);
        let guarded = guard(&s, &["--plan", file], &migration);
        for (who, out) in [("run", &run), ("release", &release), ("guard", &guarded)] {
            assert_eq!(out.code(), 2, "{who} {file}: {}", out.dump());
            assert!(out.stderr_text().contains(why), "{who}: {}", out.dump());
        }
        assert!(!s.tool.home().join("deployed").exists(), "the deploy step did not run");
        assert!(!has_column(&s.pg, "postgres"), "nothing started");
    }
}

/// What the running release breaks, found by the server itself: production's busiest queries
/// (pg_stat_statements) are prepared on the copy before and after the migration. A query that
/// reads the column the migration drops prepared before and fails after: `would_break`, exit 8,
/// the query, its calls and the server's error. The test checks the error against the server
/// on its own: the same query, prepared by the test on the migrated copy, fails the same way.
#[test]
fn a_dropped_column_breaks_the_running_releases_query_and_exits_8() {
    let s = setup();
    s.pg.psql("postgres", "ALTER TABLE users ADD COLUMN legacy_flag boolean").unwrap();
    s.pg.psql("scratch", "ALTER TABLE users ADD COLUMN legacy_flag boolean").unwrap();
    s.pg.load_pg_stat_statements("postgres").unwrap();
    // A Rails app: its history table says which two-step form to give.
    s.pg.psql("postgres", "CREATE TABLE schema_migrations (version varchar PRIMARY KEY)").unwrap();
    // The running release, as production sees it: a parameterized read, many times.
    let mut app = test_support::sessions::client(&s.pg.superuser_url("postgres"), "puma");
    for id in 0..25 {
        app.query("SELECT legacy_flag FROM users WHERE id = $1", &[&id]).unwrap();
        app.query("SELECT id FROM users WHERE id = $1", &[&id]).unwrap();
    }
    let out = plan(&s, "ALTER TABLE users DROP COLUMN legacy_flag", &["--json"]);
    assert_eq!(out.code(), 8, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["verdict"], "would_break", "{doc}");
    let breaks = doc["breaks"].as_array().unwrap();
    assert_eq!(breaks.len(), 1, "only the query that reads the dropped column: {doc}");
    let b = &breaks[0];
    let query = b["query"].as_str().unwrap();
    assert!(query.contains("legacy_flag") && query.contains("$1"), "{doc}");
    assert_eq!(b["calls"], 25, "{doc}");
    assert_eq!(b["statement_seq"], 1, "{doc}");
    assert!(doc["statements_checked"].as_u64().unwrap() >= 2, "{doc}");
    // The oracle: the server's own error for that query on the migrated copy.
    let prepared =
        test_support::sessions::client(&s.scratch, "oracle").batch_execute(&format!("PREPARE oracle AS {query}"));
    let server_error = prepared.unwrap_err().as_db_error().unwrap().message().to_string();
    assert_eq!(b["error"], server_error.as_str(), "{doc}");
    assert!(
        out.stderr_text()
            .contains("ALTER TABLE (public.users) breaks `SELECT legacy_flag FROM users WHERE id = $1` — 25 calls"),
        "{}",
        out.dump()
    );
    let two_step = b["two_step"].as_str().unwrap();
    assert!(
        two_step.starts_with("first deploy: add `self.ignored_columns += [\"legacy_flag\"]` to the model"),
        "{doc}"
    );
    assert!(out.stderr_text().contains("  in two deploys: first deploy: add `self.ignored_columns"), "{}", out.dump());
    // Nothing on production changed: the column is still there.
    assert_eq!(s.pg.psql("postgres", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'legacy_flag'").unwrap(), "1");
}

/// The running release sends Rails- and Django-shaped statements (quoted names, bound
/// parameters, `RETURNING`); each kind of change names exactly the queries it breaks, with their
/// calls: a drop names the insert and the read of the column, a rename the reads, a `SET NOT
/// NULL` the inserts that leave the column out (which `PREPARE` alone accepts: the server's
/// completed row shows it), and a nullable column breaks nothing. The oracle for the not-null
/// break is the server's own error when the test runs that insert on the migrated copy.
#[test]
fn each_kind_of_change_names_the_rails_and_django_queries_it_breaks() {
    let s = setup();
    let columns = "ALTER TABLE users ADD COLUMN email text, ADD COLUMN legacy_flag boolean, ADD COLUMN nickname text";
    s.pg.psql("postgres", columns).unwrap();
    s.pg.psql("scratch", columns).unwrap();
    s.pg.load_pg_stat_statements("postgres").unwrap();
    s.pg.psql("postgres", "CREATE TABLE schema_migrations (version varchar PRIMARY KEY)").unwrap();
    send_rails_and_django_traffic(&s.pg);

    let (out, named, _) = breaks_of(&s, "ALTER TABLE users DROP COLUMN legacy_flag");
    assert_eq!(out.code(), 8, "{}", out.dump());
    assert_eq!(named, calls(&[(RAILS_INSERT, 12), (RAILS_READ_FLAG, 9)]), "{}", out.dump());
    s.pg.psql("scratch", "ALTER TABLE users ADD COLUMN legacy_flag boolean").unwrap();

    let (out, named, _) = breaks_of(&s, "ALTER TABLE users RENAME COLUMN nickname TO display_name");
    assert_eq!(out.code(), 8, "{}", out.dump());
    assert_eq!(named, calls(&[(DJANGO_READ, 20)]), "{}", out.dump());
    s.pg.psql("scratch", "ALTER TABLE users RENAME COLUMN display_name TO nickname").unwrap();

    let (out, named, errors) = breaks_of(&s, "ALTER TABLE users ALTER COLUMN nickname SET NOT NULL");
    assert_eq!(out.code(), 8, "{}", out.dump());
    assert_eq!(named, calls(&[(RAILS_INSERT, 12), (DJANGO_INSERT, 7)]), "{}", out.dump());
    let server_error = test_support::sessions::client(&s.scratch, "oracle")
        .execute(DJANGO_INSERT, &[&1i32, &"c@example.com"])
        .unwrap_err()
        .as_db_error()
        .unwrap()
        .message()
        .to_string();
    assert!(errors.iter().all(|e| *e == server_error), "{server_error} vs {errors:?}");
    let two_step = out.json()["breaks"][0]["two_step"].as_str().unwrap().to_string();
    assert!(two_step.contains("`change_column_default` for nickname"), "{}", out.dump());
    s.pg.psql("scratch", "ALTER TABLE users ALTER COLUMN nickname DROP NOT NULL").unwrap();

    let (out, named, _) = breaks_of(&s, "ALTER TABLE users ADD COLUMN bio text");
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(named, vec![], "{}", out.dump());
    assert!(out.json()["statements_checked"].as_u64().unwrap() >= 5, "{}", out.dump());
}

const RAILS_READ_FLAG: &str = r#"SELECT "users"."id" FROM "users" WHERE "users"."legacy_flag" = $1"#;
const RAILS_READ_ALL: &str = r#"SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2"#;
const RAILS_INSERT: &str = r#"INSERT INTO "users" ("id", "email", "legacy_flag") VALUES ($1, $2, $3) RETURNING "id""#;
const DJANGO_READ: &str =
    r#"SELECT "users"."id", "users"."email", "users"."nickname" FROM "users" WHERE "users"."id" = $1"#;
const DJANGO_INSERT: &str = r#"INSERT INTO "users" ("id", "email") VALUES ($1, $2) RETURNING "users"."id""#;

/// The running release, as Active Record and Django send it (bound parameters): 30 reads of
/// every column, 20 Django reads, 12 Rails inserts, 9 reads by legacy_flag, 7 Django inserts.
fn send_rails_and_django_traffic(pg: &PgCluster) {
    let mut app = test_support::sessions::client(&pg.superuser_url("postgres"), "web.1");
    for n in 0..30i32 {
        app.query(RAILS_READ_ALL, &[&n, &1i64]).unwrap();
        if n < 20 {
            app.query(DJANGO_READ, &[&n]).unwrap();
        }
        if n < 12 {
            app.query(RAILS_INSERT, &[&(5000 + n), &"a@example.com", &true]).unwrap();
        }
        if n < 9 {
            app.query(RAILS_READ_FLAG, &[&true]).unwrap();
        }
        if n < 7 {
            app.query(DJANGO_INSERT, &[&(6000 + n), &"b@example.com"]).unwrap();
        }
    }
}

/// The plan of `sql`: its output, the queries it names as broken with their calls (sorted),
/// and their errors.
fn breaks_of(s: &Setup, sql: &str) -> (std::process::Output, Vec<(String, i64)>, Vec<String>) {
    let out = plan(s, sql, &["--json"]);
    let breaks = out.json()["breaks"].as_array().unwrap().clone();
    let mut named: Vec<(String, i64)> =
        breaks.iter().map(|b| (b["query"].as_str().unwrap().to_string(), b["calls"].as_i64().unwrap())).collect();
    named.sort();
    let errors = breaks.iter().map(|b| b["error"].as_str().unwrap().to_string()).collect();
    (out, named, errors)
}

fn calls(expected: &[(&str, i64)]) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = expected.iter().map(|(q, c)| (q.to_string(), *c)).collect();
    v.sort();
    v
}

/// Without pg_stat_statements nothing is checked, and the plan says so rather than giving an
/// all-clear for what it did not check.
#[test]
fn without_pg_stat_statements_the_plan_says_the_running_release_was_not_checked() {
    let s = setup();
    let out = plan(&s, "ALTER TABLE users ADD COLUMN nickname text", &["--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    assert!(doc["breaks_unchecked"].as_str().unwrap().contains("pg_stat_statements is not installed"), "{doc}");
    assert!(
        out.stderr_text().contains("production's own queries were not checked against the migrated schema"),
        "{}",
        out.dump()
    );
}

/// Without pg_stat_statements, a migration that changes what the running release relies on
/// (here a dropped column) gets the weaker check: production's sessions are watched for 5 s and
/// what they run is prepared on the migrated copy. A query seen running is named; when nothing
/// seen breaks, the plan cannot vouch (exit 3), naming the change and that it only sampled.
#[test]
fn without_pg_stat_statements_a_narrowing_migration_samples_what_the_sessions_run() {
    let s = setup();
    s.pg.psql("postgres", "ALTER TABLE users ADD COLUMN legacy_flag boolean").unwrap();
    s.pg.psql("scratch", "ALTER TABLE users ADD COLUMN legacy_flag boolean").unwrap();
    let workload = test_support::sessions::Workload::start(
        &s.pg.superuser_url("postgres"),
        "web.1",
        std::time::Duration::from_millis(10),
        |c, n| {
            let _ = c.query("SELECT legacy_flag FROM users WHERE id = $1", &[&n]);
        },
    );
    let out = plan(&s, "ALTER TABLE users DROP COLUMN legacy_flag", &["--json"]);
    workload.stop();
    assert_eq!(out.code(), 8, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["breaks_sampled_secs"], 5, "{doc}");
    assert!(doc["breaks_unchecked"].as_str().unwrap().contains("pg_stat_statements is not installed"), "{doc}");
    assert_eq!(doc["breaks"][0]["query"], "SELECT legacy_flag FROM users WHERE id = $1", "{doc}");
    assert_eq!(doc["breaks"][0]["error"], "column \"legacy_flag\" does not exist", "{doc}");
    let err = out.stderr_text();
    assert!(err.contains("watching production's sessions for 5s"), "{err}");
    assert!(err.contains("breaks `SELECT legacy_flag FROM users WHERE id = $1` — seen in "), "{err}");

    // Nobody sends it any more: nothing seen breaks, and what was not seen is not vouched for.
    s.pg.psql("scratch", "ALTER TABLE users ADD COLUMN legacy_flag boolean").unwrap();
    let out = plan(&s, "ALTER TABLE users DROP COLUMN legacy_flag", &["--json"]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["verdict"], "cannot_vouch", "{doc}");
    let why = doc["cannot_vouch"].to_string();
    assert!(why.contains("column public.users.legacy_flag boolean") && why.contains("only sampled for 5s"), "{doc}");
    assert!(why.contains("pg_stat_statements is not installed"), "{doc}");
}

/// The window the running release meets the migrated schema in, read from the app: with
/// preboot on, the release phase then about 3 minutes more (the boot timeout plus about 2);
/// off, until the dynos restart, with requests failing meanwhile; and the dynos that booted
/// before the current release, which may cache an older schema still.
#[test]
fn the_plan_says_how_long_old_code_meets_the_new_schema() {
    let s = setup();
    let out = plan(&s, "ALTER TABLE users ADD COLUMN nickname text", &["--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["running_release"]["preboot"], false, "{doc}");
    assert_eq!(doc["running_release"]["restart_secs"], 60, "{doc}");
    assert_eq!(doc["running_release"]["current_release"], 1, "{doc}");
    assert_eq!(doc["running_release"]["booted_before_current_release"], serde_json::json!([]), "{doc}");
    assert!(out.stderr_text().contains("preboot is off, so requests fail meanwhile"), "{}", out.dump());

    s._sim.with(|w| {
        w.set_feature("acme", "preboot", true);
        w.add_formation("acme", "worker", 1, "sidekiq", std::time::Duration::from_secs(2 * 86_400));
    });
    s.pg.psql("scratch", "ALTER TABLE users DROP COLUMN nickname").unwrap();
    let out = plan(&s, "ALTER TABLE users ADD COLUMN nickname text", &["--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["running_release"]["preboot"], true, "{doc}");
    assert_eq!(doc["running_release"]["restart_secs"], 180, "{doc}");
    assert_eq!(doc["running_release"]["booted_before_current_release"], serde_json::json!(["worker.1"]), "{doc}");
    let err = out.stderr_text();
    assert!(
        err.contains(
            "v1 serves traffic for the whole release phase, then about 3m more while preboot keeps its dynos serving"
        ),
        "{err}"
    );
    assert!(err.contains("1 dyno booted before v1 and still run (worker.1)"), "{err}");
}

/// Production with a busy 1,000,000-row `events` (test_support::acme::busy_events), acme on the
/// simulator, and the planner making its own copy (its server under the returned directory).
fn busy_planner() -> (PgCluster, Sim, test_support::tempfile::TempDir, Tool) {
    let pg = PgCluster::start().unwrap();
    test_support::acme::busy_events(&pg, 1_000_000);
    let sim = Sim::start(acme_world(&pg, Generation::Cedar)).unwrap();
    let tmp = test_support::tempfile::tempdir().unwrap();
    let tool = planner(&sim, &pg, tmp.path());
    (pg, sim, tmp, tool)
}

/// The plan's migration: each statement its own `psql -c` (its own transaction).
fn statements_as_migration(pg: &PgCluster, statements: &[&str]) -> String {
    statements.iter().map(|s| psql_migration(pg, s)).collect::<Vec<_>>().join(" && ")
}

/// Times `sql` on production itself — the judge the estimate is held to — and says whether it
/// rewrote `events` (its relfilenode changed).
fn time_on_production(pg: &PgCluster, sql: &str) -> (std::time::Duration, bool) {
    let mut c = test_support::sessions::client(&pg.superuser_url("postgres"), "oracle");
    let file = |c: &mut pg_locks::Client| -> u32 {
        c.query_one("SELECT relfilenode::int8 FROM pg_class WHERE relname = 'events'", &[]).unwrap().get::<_, i64>(0)
            as u32
    };
    let before = file(&mut c);
    let started = std::time::Instant::now();
    c.batch_execute(sql).unwrap();
    let took = started.elapsed();
    (took, file(&mut c) != before)
}

fn scans_of_events(pg: &PgCluster) -> String {
    pg.psql(
        "postgres",
        "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'events'",
    )
    .unwrap()
}

/// How long each statement holds its lock on production's data, predicted from a sample shaped
/// by production's statistics, then held to the time the same statement takes on production:
/// a catalog-only ADD COLUMN is instant; a type change rewrites (relfilenode changes) and an
/// index build both fall within their predicted range; both hold locks the site's reads or
/// writes queue behind past a 200ms budget, so the verdict is would_block (10), each with its
/// safe form. The plan itself never scanned production's table.
#[test]
fn hold_times_are_predicted_from_production_statistics_and_match_the_time_on_production() {
    let (pg, _sim, _tmp, tool) = busy_planner();
    let statements = [
        "ALTER TABLE events ADD COLUMN note text",
        "ALTER TABLE events ALTER COLUMN account_id TYPE bigint",
        "CREATE INDEX events_by_account ON events (account_id)",
        "UPDATE events SET payload = upper(payload) WHERE id <= 200000",
        "ALTER TABLE events ADD CONSTRAINT payload_hex CHECK (payload ~ '^[0-9a-fA-F]+$')",
    ];
    let migration = statements_as_migration(&pg, &statements);
    std::thread::sleep(std::time::Duration::from_millis(1100)); // the site's scans reach the statistics
    let scans_before = scans_of_events(&pg);
    let out = tool.run(&["plan", "-a", "acme", "--lock-wait", "200ms", "--json", "--", "sh", "-c", &migration]);
    assert_eq!(out.code(), 10, "{}", out.dump());
    let report: migrate_restart::report::PlanReport = serde_json::from_value(out.json()).expect("a PlanReport");
    assert_eq!(report.verdict, migrate_restart::report::PlanVerdict::WouldBlock);
    let estimate =
        |i: usize| report.statements[i].estimate.clone().unwrap_or_else(|| panic!("{:?}", report.statements[i]));

    // Catalog only: the server counted no block of the sample read (on a crowded machine its
    // time alone can stretch past the rows' noise floor), so nothing is scaled by the rows.
    let add = estimate(0);
    assert!(add.basis.starts_with("catalog only"), "{add:?}");
    assert!(add.blocks.as_ref().is_some_and(|b| b.for_ms < 200), "{add:?}");

    let retype = estimate(1);
    assert!(
        retype.basis.contains("100,000-row sample shaped like production's, scaled linearly to 1,000,000 rows"),
        "{retype:?}"
    );
    assert_eq!(retype.rows, Some(1_000_000));
    let blocks = retype.blocks.as_ref().expect("the site queues behind it");
    assert_eq!((blocks.relation.as_str(), blocks.queues.as_str()), ("public.events", "reads and writes"));
    assert!(blocks.queued >= 1, "{blocks:?}");
    assert!(retype.safe_form.as_deref().is_some_and(|f| f.contains("a new column of the new type")), "{retype:?}");

    let index = estimate(2);
    assert!(index.basis.contains("by n log n (an index build)"), "{index:?}");
    assert_eq!(index.blocks.as_ref().map(|b| b.queues.as_str()), Some("writes"), "{index:?}");
    assert!(index.safe_form.as_deref().is_some_and(|f| f.contains("CREATE INDEX CONCURRENTLY")), "{index:?}");
    // A backfill: recorded though it fires no event trigger, its rows and time scaled, and the
    // writes to the rows it changes queue behind their row locks.
    let backfill = estimate(3);
    assert_eq!(report.statements[3].tag, "UPDATE");
    let changed = backfill.rows_changed.expect("rows changed");
    assert!((180_000..=220_000).contains(&changed), "{backfill:?}");
    assert_eq!(backfill.blocks.as_ref().map(|b| b.queues.as_str()), Some("writes to the rows it changes"));
    assert!(backfill.safe_form.as_deref().is_some_and(|f| f.contains("in batches")), "{backfill:?}");
    let text = out.stderr_text();
    assert!(text.contains("no row of production's is read"), "{text}");

    // Nothing of production was scanned by the plan: its table's scan count is unchanged.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(scans_of_events(&pg), scans_before, "the plan read catalogs and statistics only");

    // For people: one line per hold, what queues, the safe form, the verdict.
    let human = tool.run(&["plan", "-a", "acme", "--lock-wait", "200ms", "--", "sh", "-c", &migration]);
    assert_eq!(human.code(), 10, "{}", human.dump());
    let text = human.stdout_text();
    let hold = text
        .lines()
        .find(|l| l.contains("holds AccessExclusiveLock on public.events ≈") && l.contains("measured"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(hold.contains(": 1,000,000 rows, ") && hold.contains(" MB on production — measured "), "{hold}");
    assert!(text.contains("reads and writes queue behind its AccessExclusiveLock on public.events for "), "{text}");
    assert!(text.contains("the form that does not: CREATE INDEX CONCURRENTLY"), "{text}");
    assert!(text.contains("A statement would hold a lock the site queues behind: the site's queries would queue behind it for longer than the 200ms budget"), "{text}");

    // The judge: the same statements on production, timed there.
    time_on_production(&pg, statements[0]);
    for (i, sql) in [(1, statements[1]), (2, statements[2]), (3, statements[3]), (4, statements[4])] {
        let e = estimate(i);
        let (took, rewrote) = time_on_production(&pg, sql);
        assert_eq!(rewrote, i == 1, "only the type change rewrites events");
        let ms = took.as_millis() as u64;
        eprintln!("{sql}: {ms}ms on production, predicted {:?}ms ({:?}–{:?})", e.hold_ms, e.low_ms, e.high_ms);
        assert!(
            (e.low_ms.unwrap()..=e.high_ms.unwrap()).contains(&ms),
            "{sql}: took {ms}ms on production, predicted {:?}ms ({:?}–{:?})",
            e.hold_ms,
            e.low_ms,
            e.high_ms
        );
    }
}

/// The safe forms the plan names, planned in turn: none holds a lock the site queues behind
/// past the budget (1 s: the time the statement itself takes on 1,000,000 rows is tens of
/// milliseconds; the rest is room for a crowded machine), so the verdict is clear (0) — CREATE INDEX CONCURRENTLY and VALIDATE
/// CONSTRAINT take a lock reads and writes pass, a NOT VALID constraint and SET NOT NULL over
/// a validated CHECK (PostgreSQL 12+) touch only the catalog, a new column is instant and its
/// backfill in batches holds each batch's rows briefly.
#[test]
fn the_safe_forms_hold_nothing_the_site_queues_behind_past_the_budget() {
    let (pg, _sim, _tmp, tool) = busy_planner();
    // As on Heroku Postgres: the running release's queries are read, not sampled (the NOT NULL
    // and the new constraint change what it relies on).
    pg.load_pg_stat_statements("postgres").unwrap();
    let mut site = test_support::sessions::client(&pg.superuser_url("postgres"), "web.1");
    for id in 1..=20i64 {
        site.query_one("SELECT payload FROM events WHERE id = $1", &[&id]).unwrap();
    }
    let migration = statements_as_migration(
        &pg,
        &[
            "CREATE INDEX CONCURRENTLY events_by_account ON events (account_id)",
            "ALTER TABLE events ADD CONSTRAINT payload_present CHECK (payload IS NOT NULL) NOT VALID",
            "ALTER TABLE events VALIDATE CONSTRAINT payload_present",
            "ALTER TABLE events ALTER COLUMN payload SET NOT NULL",
            "ALTER TABLE events ADD COLUMN account_id_wide bigint",
            // The backfill of the new column in batches, each its own transaction.
            "UPDATE events SET account_id_wide = account_id WHERE id BETWEEN 1 AND 5000",
            "UPDATE events SET account_id_wide = account_id WHERE id BETWEEN 5001 AND 10000",
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = tool.run(&["plan", "-a", "acme", "--lock-wait", "1s", "--json", "--", "sh", "-c", &migration]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let report: migrate_restart::report::PlanReport = serde_json::from_value(out.json()).expect("a PlanReport");
    assert_eq!(report.statements.len(), 7, "{:?}", report.statements);
    for s in &report.statements {
        let e = s.estimate.as_ref().unwrap_or_else(|| panic!("{s:?}"));
        assert!(e.hold_ms.is_some(), "measured: {e:?}");
        if let Some(b) = &e.blocks {
            assert!(b.for_ms <= 1000, "{} holds {} the site queues behind for {}ms", s.query, b.mode.name(), b.for_ms);
        }
    }
}

/// With `--scratch-url` (the user's database: the tool makes no sample there) a statement's
/// hold is not measured. On a small table its size bounds it under the budget; on a big one
/// nothing does, and the plan cannot vouch (3) rather than call it clear.
#[test]
fn an_unmeasured_hold_on_a_big_table_cannot_be_vouched_for() {
    let s = setup();
    test_support::acme::busy_events(&s.pg, 1_000_000);
    s.pg.psql("scratch", "CREATE TABLE events (id bigint PRIMARY KEY, account_id int NOT NULL, payload text, created_at timestamptz NOT NULL)")
        .unwrap();
    let out = plan(&s, "ALTER TABLE events ALTER COLUMN account_id TYPE bigint", &["--json"]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    let doc = out.json();
    assert_eq!(doc["verdict"], "cannot_vouch", "{doc}");
    let why =
        doc["cannot_vouch"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect::<Vec<_>>().join("; ");
    assert!(why.contains("how long statement 1 (ALTER TABLE) holds its lock: not measured: --scratch-url"), "{why}");
    assert!(why.contains("from public.events's size"), "{why}");
    // A small table: bounded under the budget by its size, and clear.
    let out = plan(&s, "ALTER TABLE users ADD COLUMN nickname text", &[]);
    assert_eq!(out.code(), 0, "{}", out.dump());
}

/// Statements no trigger fires for are in the plan all the same, read from the copy's own
/// server log: `LOCK TABLE` with its mode, in order; a `VACUUM FULL` of a big table, which the
/// sample run cannot time, is bounded by the table's size — past the budget, so the plan cannot
/// vouch; a `VACUUM` of every table names no table, and the plan cannot vouch for that either.
#[test]
fn lock_table_and_vacuum_are_planned_from_the_copys_log() {
    let (pg, _sim, _tmp, tool) = busy_planner();
    let migration = statements_as_migration(
        &pg,
        &[
            "BEGIN; LOCK TABLE events IN SHARE MODE; ALTER TABLE events ADD COLUMN note text; COMMIT",
            "VACUUM FULL events",
        ],
    );
    let out = tool.run(&["plan", "-a", "acme", "--json", "--", "sh", "-c", &migration]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    let report: migrate_restart::report::PlanReport = serde_json::from_value(out.json()).expect("a PlanReport");
    let tags: Vec<&str> = report.statements.iter().map(|s| s.tag.as_str()).collect();
    assert_eq!(tags, vec!["LOCK TABLE", "ALTER TABLE", "VACUUM FULL"], "{:#?}", report.statements);
    let lock = &report.statements[0];
    assert_eq!(lock.transaction, report.statements[1].transaction, "the LOCK and the ALTER share their transaction");
    assert_eq!(lock.locks.iter().find(|l| l.relation == "public.events").map(|l| l.mode.name()), Some("ShareLock"));
    assert_eq!(report.statements[2].rewrites, vec!["public.events".to_string()]);
    assert!(
        report
            .cannot_vouch
            .iter()
            .any(|w| w.starts_with("how long statement 3 (VACUUM FULL) holds its lock: not measured")),
        "{:?}",
        report.cannot_vouch
    );

    let every_table = statements_as_migration(&pg, &["VACUUM"]);
    let out = tool.run(&["plan", "-a", "acme", "--json", "--", "sh", "-c", &every_table]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    let doc = out.json();
    assert!(
        doc["cannot_vouch"].to_string().contains("`VACUUM`: VACUUM of every table; its locks are not recorded"),
        "{doc}"
    );
}
