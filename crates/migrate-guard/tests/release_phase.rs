//! The guard where it lives: heroku-sim's release phase runs the Procfile's `release:` command
//! with what the buildpack installed on PATH (a classic slug's `.profile.d` on Cedar, a CNB
//! launch layer on Fir), against a real PostgreSQL — and no tool of ours runs outside. The
//! deploy nobody watches stays safe on its own.

use std::process::Command;
use std::time::{Duration, Instant};

use heroku_sim::Sim;
use test_support::generation::Generation;
use test_support::on_both_generations;
use test_support::sessions::{lock_waiters, long_report, spawn, wait_until, Running};
use test_support::PgCluster;

const BIN: &str = env!("CARGO_BIN_EXE_migrate-guard");

struct Setup {
    pg: PgCluster,
    sim: Sim,
    _dir: test_support::tempfile::TempDir,
}

/// acme (web×2) on generation `g`, built with the migrate-guard buildpack, its DATABASE_URL a
/// real PostgreSQL with `users`; a stopped dyno gets SIGKILL 15 s after SIGTERM (the platform: 30 s;
/// half of it here, yet long enough for the guard to end its statements and write its summary on
/// a loaded 2-core machine running the whole suite, where 3 s once and 8 s twice were not; alone
/// the guard takes well under a second).
fn setup(g: Generation) -> Setup {
    let pg = test_support::acme::users_database().unwrap();
    let dir = test_support::tempfile::tempdir().unwrap();
    let mut w = test_support::acme::acme_world(&pg, g);
    w.timing.kill_grace = Duration::from_secs(15);
    test_support::buildpack::install_migrate_guard(std::path::Path::new(BIN), &mut w, g, dir.path()).unwrap();
    let sim = Sim::start(w).unwrap();
    Setup { pg, sim, _dir: dir }
}

impl Setup {
    /// Deploys a slug whose Procfile says `release: migrate-guard GUARD_ARGS -- psql … -c SQL`.
    fn push(&self, guard_args: &str, sql: &str) -> u64 {
        let release = format!("migrate-guard {guard_args} -- {}", test_support::acme::psql_migration(&self.pg, sql));
        self.sim.push("acme", "feed1234", "add nickname", &[("web", "puma"), ("release", &release)])
    }

    fn status(&self, version: u64) -> String {
        self.sim.with(|w| w.apps["acme"].releases.iter().find(|r| r.version == version).unwrap().status.clone())
    }

    /// Waits for the release phase to end; its status and its output.
    fn outcome(&self, version: u64) -> (String, String) {
        wait_until("the release phase ends", || self.status(version) != "pending");
        let output = self.sim.with(|w| {
            let id = w.apps["acme"].releases.iter().find(|r| r.version == version).unwrap().output_id.clone().unwrap();
            w.release_phases.outputs[&id].text.clone()
        });
        (self.status(version), output)
    }

    fn current(&self) -> u64 {
        self.sim.with(|w| w.apps["acme"].current_version())
    }

    fn url(&self) -> String {
        self.pg.superuser_url("postgres")
    }

    fn has_column(&self) -> bool {
        self.pg
            .psql("postgres", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'")
            .unwrap()
            == "1"
    }

    /// `POST /apps/acme/dynos/{id}/actions/stop`, as `heroku ps:stop --dyno-name` sends it.
    fn stop_release_dyno(&self) {
        let id =
            self.sim.with(|w| w.apps["acme"].dynos.iter().find(|d| d.process_type == "release").unwrap().id.clone());
        let out = Command::new("curl")
            .args(["--fail", "-sS", "-X", "POST"])
            .arg(format!("{}/apps/acme/dynos/{id}/actions/stop", self.sim.url()))
            .arg("-H")
            .arg(format!("Authorization: Bearer {}", self.sim.token()))
            .args(["-H", "Accept: application/vnd.heroku+json; version=3"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

on_both_generations! {
    /// Incident 000 as an unattended release phase: the release's ALTER turns its own
    /// lock_timeout off and waits behind a long report; 40 queries of the site queue behind
    /// it. The guard inside the release dyno cuts it at the budget, the queue finishes within
    /// budget + 1 s, the release fails, the previous release stays current, and the release
    /// output names the blocker.
    fn incident_000_unattended_the_guard_in_the_release_dyno_cuts_the_ddl(g) {
        let s = setup(g);
        let before = s.current();
        let reader = long_report(&s.pg, &s.url(), 120);
        let v = s.push("--lock-wait 1s --retries 0 --max-xact-age 10m", "SET lock_timeout = 0; ALTER TABLE users ADD COLUMN nickname text");
        wait_until("the release's ALTER waits", || lock_waiters(&s.pg) == 1);
        let waiting_since = Instant::now();
        let queued: Vec<Running> =
            (0..40).map(|i| spawn(&s.url(), &format!("web.{}", i % 2 + 1), "SELECT count(*) FROM users")).collect();
        for q in queued {
            q.finish().expect("a queued query runs once the guard cuts the ALTER");
        }
        let blocked = waiting_since.elapsed();
        let (status, output) = s.outcome(v);
        assert!(blocked < Duration::from_millis(1500 + 1000), "the site was blocked {blocked:?}: {output}");
        assert_eq!(status, "failed", "{output}");
        assert_eq!(s.current(), before, "the app stays on its release");
        assert!(output.contains("migrate-guard: ✂ Lock-wait budget 1.5s: cancelled the migration's"), "{output}");
        assert!(output.contains(&format!("held by pid {} (reporting", reader.pid)), "{output}");
        assert!(output.contains("migrate-guard: outcome=lock_timeout attempts=1 cut=1 waited_ms=0 exit=1"), "{output}");
        assert!(!s.has_column());
    }
}

on_both_generations! {
    /// Stopping the release dyno through the API (SIGTERM to every process of the dyno, SIGKILL
    /// after the grace): the guard ends its child's statement on the database first, so 2 s
    /// later nothing of the migration is left — the stopped release no longer holds the queue.
    fn stopping_the_release_dyno_ends_its_ddl_in_the_database(g) {
        let s = setup(g);
        let _reader = long_report(&s.pg, &s.url(), 120);
        let v = s.push("--lock-wait 10m --max-xact-age 10m", "SET lock_timeout = 0; ALTER TABLE users ADD COLUMN nickname text");
        wait_until("the release's ALTER waits", || lock_waiters(&s.pg) == 1);
        s.stop_release_dyno();
        let (status, _) = s.outcome(v);
        // The release is failed as soon as its dyno is stopped; the guard's last lines (its
        // summary) follow in the moments after: read the output once they have had the time.
        std::thread::sleep(Duration::from_secs(2));
        let (_, output) = s.outcome(v);
        assert_eq!(status, "failed", "{output}");
        assert_eq!(lock_waiters(&s.pg), 0, "{output}");
        let left = s.pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'migrate-restart/%'").unwrap();
        assert_eq!(left, "0", "{output}");
        assert!(output.contains("stop requested (SIGTERM"), "{output}");
        assert!(output.contains("migrate-guard: outcome=stopped"), "{output}");
    }
}

on_both_generations! {
    /// The same scene when the blocker ends during the retries: the release succeeds and the
    /// formation restarts onto it.
    fn a_blocker_ending_during_the_retries_lets_the_unattended_release_succeed(g) {
        let s = setup(g);
        let _reader = long_report(&s.pg, &s.url(), 3);
        let v = s.push("--lock-wait 500ms --retries 6 --max-xact-age 10m", "ALTER TABLE users ADD COLUMN nickname text");
        let (status, output) = s.outcome(v);
        assert_eq!(status, "succeeded", "{output}");
        assert!(output.contains("lock timeout (attempt 1 of 7); retrying in"), "{output}");
        assert!(output.contains("migrate-guard: outcome=succeeded"), "{output}");
        wait_until("the app runs the release", || s.current() == v);
        assert!(s.has_column());
    }
}

on_both_generations! {
    /// Incident 001 unattended: the nightly backup's COPY blocks the release's DROP. Without
    /// `--cancel-backups` the release fails before the DROP ever queues the site, naming the
    /// backup and how to cancel it; with it the guard cancels the backup and the release succeeds.
    fn incident_001_unattended_refused_or_the_backup_cancelled(g) {
        let s = setup(g);
        s.pg.psql("postgres", "CREATE TABLE field_history AS SELECT g AS id, md5(g::text) AS data FROM generate_series(1, 200000) g")
            .unwrap();
        let backup = test_support::sessions::Backup::start(&s.pg, "postgres", "field_history", false);
        let v = s.push("--wait-for-clear 1s", "DROP TABLE field_history");
        let (status, output) = s.outcome(v);
        assert_eq!(status, "failed", "{output}");
        assert!(output.contains(&format!("[backup] pid {}", backup.pid)), "{output}");
        assert!(output.contains("heroku pg:backups:cancel -a APP, or let the guard cancel it with --cancel-backups"), "{output}");
        assert!(output.contains("migrate-guard: outcome=refused attempts=0"), "{output}");
        let v = s.push("--wait-for-clear 0s --cancel-backups", "DROP TABLE field_history");
        let (status, output) = s.outcome(v);
        assert_eq!(status, "succeeded", "{output}");
        assert!(output.contains(&format!("cancelling the Heroku Postgres backup pid {}", backup.pid)), "{output}");
    }
}

/// A pooled DATABASE_URL (PgBouncer, transaction mode) with the direct URL beside it: the guard
/// in the release dyno watches the direct one and still cuts the ALTER.
#[test]
fn a_pooled_database_url_is_guarded_through_the_direct_url_in_the_release_phase() {
    let s = setup(Generation::Cedar);
    let bouncer = test_support::pgbouncer::PgBouncer::start(&s.pg, "transaction", 5).unwrap();
    s.sim.with(|w| {
        w.set_config_var("acme", "HEROKU_POSTGRESQL_TEAL_URL", &s.pg.superuser_url("postgres"));
        w.set_config_var("acme", "DATABASE_URL", &bouncer.url("postgres"));
    });
    let _reader = long_report(&s.pg, &s.url(), 120);
    let v = s.push("--lock-wait 1s --retries 0 --max-xact-age 10m", "ALTER TABLE users ADD COLUMN nickname text");
    let (status, output) = s.outcome(v);
    assert_eq!(status, "failed", "{output}");
    assert!(output.contains("the watch and its budget read HEROKU_POSTGRESQL_TEAL_URL directly"), "{output}");
    assert!(output.contains("migrate-guard: outcome=lock_timeout attempts=1 cut=1"), "{output}");
}
