//! The narrated replay. Each act sets the scene in the sandbox, runs the tools exactly as a
//! person would type them, and checks what happened.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use cli_kit::output::{bold, cyan, dim, green, red};
use heroku_sim::World;
use test_support::sandbox::Sandbox;
use test_support::sessions::{create_big_table, lock_waiters, wait_until, Backup, StuckAlter};

/// The demo's state: where the tools are, whether to pause, what failed.
pub struct Demo {
    bins: PathBuf,
    interactive: bool,
    /// Checks made.
    pub checks: usize,
    /// Checks that failed, described.
    pub failures: Vec<String>,
    /// The app's repository, pushed from in step 1b and again in 1c.
    repo: Option<test_support::app_repo::AppRepo>,
}

impl Demo {
    /// A demo using the tools in `bins`.
    pub fn new(bins: PathBuf, interactive: bool) -> Demo {
        Demo { bins, interactive, checks: 0, failures: Vec::new(), repo: None }
    }

    fn say(&self, text: &str) {
        println!("{text}");
    }

    fn act(&self, title: &str, story: &str) -> anyhow::Result<()> {
        self.stop_if_interrupted()?;
        println!("\n{}\n{}", bold().apply_to(format!("━━ {title} ━━")), dim().apply_to(story));
        Ok(())
    }

    fn pause(&self) -> anyhow::Result<()> {
        self.stop_if_interrupted()?;
        if self.interactive {
            println!("{}", dim().apply_to("   (Enter to continue)"));
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
        }
        self.stop_if_interrupted()
    }

    fn stop_if_interrupted(&self) -> anyhow::Result<()> {
        if cli_kit::interrupt::requested() {
            anyhow::bail!("Ctrl-C");
        }
        Ok(())
    }

    /// Runs a command line as a user would, showing it and its output.
    fn shell(&self, sb: &Sandbox, line: &str) -> anyhow::Result<Output> {
        self.stop_if_interrupted()?;
        println!("\n{} {}", cyan().apply_to("$"), bold().apply_to(line));
        // stderr merged into stdout, so the narration shows lines in the order they appeared.
        let out = sb.sh(&format!("{line} 2>&1")).output()?;
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            println!("  {l}");
        }
        println!("  {}", dim().apply_to(format!("(exit {})", out.status.code().unwrap_or(-1))));
        Ok(out)
    }

    /// [`Demo::shell`] in `dir` (a repository the command pushes from).
    fn shell_in(&self, sb: &Sandbox, dir: &std::path::Path, line: &str) -> anyhow::Result<Output> {
        self.stop_if_interrupted()?;
        println!("\n{} {}", cyan().apply_to("$"), bold().apply_to(line));
        let out = sb.sh(&format!("{line} 2>&1")).current_dir(dir).env("GIT_CONFIG_NOSYSTEM", "1").output()?;
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            println!("  {l}");
        }
        println!("  {}", dim().apply_to(format!("(exit {})", out.status.code().unwrap_or(-1))));
        Ok(out)
    }

    /// Records a check.
    fn check(&mut self, what: &str, ok: bool) {
        self.checks += 1;
        if ok {
            println!("  {} {what}", green().apply_to("✔ check:"));
        } else {
            println!("  {} {what}", red().apply_to("✘ check failed:"));
            self.failures.push(what.to_string());
        }
    }

    /// The whole story.
    pub fn run(&mut self) -> anyhow::Result<()> {
        self.say(&format!(
            "{}\nA sandbox stands in for Heroku (heroku-sim) and for Heroku Postgres (a throwaway PostgreSQL).\nThe tools are the real binaries from {}.",
            bold().apply_to("Four Heroku deploys that went wrong, replayed with the tools."),
            self.bins.display()
        ));
        let sb = Sandbox::start(&self.bins)?;
        println!(
            "{}",
            dim().apply_to(format!(
                "The database: PostgreSQL {} from {}; psql: {}",
                sb.pg.server_major()?,
                sb.pg.bindir().display(),
                sb.pg.psql_path().display()
            ))
        );
        if std::env::var_os("PG_IGNORE_SYSTEM").is_some_and(|v| v == "1") {
            // As on a fresh machine: nothing of the system's PostgreSQL may have been used.
            let pinned = sb.pg.bindir().starts_with(test_support::workspace_root().join("tests/pg-versions"));
            let stand_in = sb.pg.psql_path().file_name().is_some_and(|n| n == "sandbox-psql");
            self.check(
                "without the system's PostgreSQL: the pinned server build and the psql stand-in",
                pinned && stand_in,
            );
        }
        self.stuck_release(&sb)?;
        self.guarded_release(&sb)?;
        self.unattended_release(&sb)?;
        self.backup_6am(&sb)?;
        self.stale_schema(&sb)?;
        self.window(&sb)?;
        Ok(())
    }

    fn stuck_release(&mut self, sb: &Sandbox) -> anyhow::Result<()> {
        self.act(
            "1. The release phase is stuck",
            "A migration adding a blank column has hung in the release phase for 20 minutes. A long report holds a lock on users;\n\
             the ALTER waits for it, and every query on users queues behind the ALTER — the site times out.",
        )?;
        let stuck = StuckAlter::start(&sb.pg, 40, "rails release.2343");
        self.say("The scene: a long reader holds users, `ALTER TABLE users ADD COLUMN nickname text` waits, 40 web queries wait behind it.");
        if test_support::heroku_cli::heroku_bin().is_ok() {
            self.say("\nWhat the on-call engineer tried first:");
            let out = self.shell(sb, "heroku ps:stop release -a acme")?;
            let still = sb.sim.with(|w| w.apps["acme"].dynos.iter().any(|d| d.name == "release.2343"));
            self.check("the Heroku CLI reports success for `ps:stop release`", out.status.success());
            wait_until("the platform's stop delay to pass", || {
                sb.sim.requests().iter().any(|r| r.path.ends_with("/release/actions/stop"))
            });
            self.check("…yet release.2343 is still running (a stop addressed to a type name stops nothing)", still);
        }
        self.pause()?;
        self.say("\nsafe-ps-kill resolves `release` to its dyno, stops it by id and watches it go:");
        let out = self.shell(sb, "safe-ps-kill release -a acme --confirm acme")?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        self.check(
            "release → release.2343, stopped and seen gone",
            out.status.success() && text.contains("release → release.2343") && text.contains("✓ release.2343 stopped"),
        );
        self.check(
            "it warns that the dyno's ALTER is still waiting, with the 40 behind it",
            text.contains("ALTER TABLE users ADD COLUMN nickname text") && text.contains("blocking 40"),
        );
        self.pause()?;
        self.say("\nThe site is still down. pg-blockers shows why — heroku pg:blocking shows nothing here:");
        let out = self.shell(sb, "pg-blockers -a acme")?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        self.check(
            "pg-blockers shows the chain: the reader, the waiting ALTER, 40 queued queries",
            text.contains("41 sessions waiting") && text.contains("blocking 40"),
        );
        self.pause()?;
        self.say("\nOne cancel, not pg:killall: the waiting ALTER (its deploy has already failed) — the 40 queries run at once:");
        let out = self.shell(sb, &format!("pg-blockers -a acme --cancel {} --confirm acme", stuck.alter.pid))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        self.check(
            "the cancel is verified: 40 of 40 blocked sessions run again",
            out.status.success() && text.contains("40 of 40 previously blocked sessions are running again"),
        );
        let finished = stuck.queued.into_iter().map(|r| r.finish()).filter(Result::is_ok).count();
        self.check(&format!("all 40 queued queries finished ({finished} of 40)"), finished == 40);
        drop(stuck.reader);
        sb.pg.psql(
            "postgres",
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'reporting'",
        )?;
        self.pause()
    }

    /// Incident 000 again, with the release phase followed while it runs: the lock-wait budget
    /// cuts the release's ALTER, so the site is blocked no longer than the budget.
    fn guarded_release(&mut self, sb: &Sandbox) -> anyhow::Result<()> {
        const BUDGET_MS: u64 = 3000;
        self.act(
            "1b. The same deploy, guarded from the terminal that pushes it",
            "The same migration, pushed again with a real `git push` while the same kind of report holds users. `git push` waits for the\n\
             release phase and exits 0 even when it fails, so the push is wrapped: `heroku migrate:release -- git push heroku main` picks up\n\
             the release the push creates, and with a lock-wait budget of 3s cancels the release's ALTER once it has waited 3s.",
        )?;
        let url = sb.pg.superuser_url("postgres");
        let reader = test_support::sessions::long_report(&sb.pg, &url, 3600);
        let release = sb.psql_migration("ALTER TABLE users ADD COLUMN nickname text");
        let procfile = format!("web: bundle exec puma -C config/puma.rb\nrelease: {release}\n");
        let repo = test_support::app_repo::AppRepo::new(&sb.sim, "acme", Some(&procfile))?;
        // The site's traffic: 40 queries arrive once the ALTER waits, and queue behind it.
        let pg = &sb.pg;
        let traffic = std::thread::scope(|s| -> anyhow::Result<(Output, Duration)> {
            let queued = s.spawn(|| queue_behind_the_alter(pg, &url));
            let out = self.shell_in(
                sb,
                repo.path(),
                "migrate-restart release -a acme --lock-wait 3s --confirm acme -- git push heroku main",
            )?;
            let (ok, blocked) = queued.join().map_err(|_| anyhow::anyhow!("traffic thread"))?;
            self.check(&format!("all 40 queued queries ran ({ok} of 40)"), ok == 40);
            Ok((out, blocked))
        });
        let (out, blocked) = traffic?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        self.check(
            "the push said done and exited 0 inside; the wrapper reports the failed release phase (exit 1), names the blocker and the retry",
            out.status.code() == Some(1)
                && text.contains("remote: Waiting for release.... failed.")
                && text.contains("pid ")
                && text.contains("heroku releases:retry -a acme"),
        );
        self.check(
            &format!(
                "the site was blocked {} — no longer than the 3s budget (plus the time to see it)",
                cli_kit::format_duration(blocked)
            ),
            blocked <= Duration::from_millis(BUDGET_MS + 1000),
        );
        let version = sb.sim.with(|w| w.apps["acme"].releases.last().map(|r| (r.version, r.status.clone())));
        let (version, status) = version.unwrap_or_default();
        self.check(
            &format!("v{version} failed and acme stays on its current release; the report was never touched"),
            status == "failed" && !reader.is_finished(),
        );
        drop(reader);
        sb.pg.psql(
            "postgres",
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'reporting'",
        )?;
        self.repo = Some(repo);
        self.pause()
    }

    /// Incident 000 as it really happened: nobody watching. migrate-guard, installed into the
    /// slug by the buildpack, guards the release phase from inside the release dyno; no tool of
    /// ours runs outside — a plain `git push`, which exits 0 on the failed release phase.
    fn unattended_release(&mut self, sb: &Sandbox) -> anyhow::Result<()> {
        const BUDGET_MS: u64 = 3000;
        self.act(
            "1c. The same deploy with nobody watching: the guard inside the release dyno",
            "The buildpack puts migrate-guard into the slug and the Procfile says\n\
             `release: migrate-guard --lock-wait 3s -- bundle exec rake db:migrate`. A plain `git push`, the same report holding users,\n\
             and no tool of ours outside: the guard in the release dyno cuts the ALTER (which turned its own lock_timeout off).",
        )?;
        let guard = self.bins.join("migrate-guard");
        let dir = sb.dir().join("unattended");
        let cedar = test_support::generation::Generation::Cedar;
        sb.sim.with(|w| test_support::buildpack::install_migrate_guard(&guard, w, cedar, &dir))?;
        let url = sb.pg.superuser_url("postgres");
        let reader = test_support::sessions::long_report(&sb.pg, &url, 3600);
        let release = format!(
            "migrate-guard --lock-wait 3s --retries 0 --max-xact-age 10m -- {}",
            sb.psql_migration("SET lock_timeout = 0; ALTER TABLE users ADD COLUMN nickname text")
        );
        let Some(repo) = self.repo.take() else { anyhow::bail!("step 1b made the repository") };
        repo.commit_procfile(&format!("web: bundle exec puma -C config/puma.rb\nrelease: {release}\n"))?;
        let pg = &sb.pg;
        let (out, (ok, blocked)) = std::thread::scope(|s| -> anyhow::Result<(Output, (usize, Duration))> {
            let queued = s.spawn(|| queue_behind_the_alter(pg, &url));
            let out = self.shell_in(sb, repo.path(), "git push heroku main")?;
            Ok((out, queued.join().map_err(|_| anyhow::anyhow!("traffic thread"))?))
        })?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let status = sb.sim.with(|w| w.apps["acme"].releases.last().map(|r| (r.version, r.status.clone())));
        let (version, status) = status.unwrap_or_default();
        self.check(&format!("all 40 queued queries ran ({ok} of 40), with no tool of ours outside"), ok == 40);
        self.check(
            &format!("the site was blocked {} — within the 3s budget + 1s", cli_kit::format_duration(blocked)),
            blocked <= Duration::from_millis(BUDGET_MS + 1000),
        );
        self.check(
            &format!("v{version} failed safely (the previous release stays current); git push exited 0 as the platform's does, and its output names the blocker and ends with the guard's summary"),
            status == "failed"
                && out.status.code() == Some(0)
                && text.contains(&format!("held by pid {}", reader.pid))
                && text.contains("remote: migrate-guard: outcome=lock_timeout attempts=1 cut=1"),
        );
        drop(reader);
        sb.pg.psql(
            "postgres",
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'reporting'",
        )?;
        self.pause()
    }

    fn backup_6am(&mut self, sb: &Sandbox) -> anyhow::Result<()> {
        self.act(
            "2. The 6 am deploy and the nightly backup",
            "A deploy drops a table while the nightly backup copies it (COPY … TO stdout, a two-hour job stuck writing to its client).\n\
             The DROP would wait behind the backup, and every query on the table behind the DROP.",
        )?;
        create_big_table(&sb.pg, "field_history", 20);
        let backup = Backup::start(&sb.pg, "postgres", "field_history", false);
        let migration = sb.psql_migration("DROP TABLE field_history");
        self.say("migrate-restart checks the database before starting the migration:");
        let out = self.shell(sb, &format!("migrate-restart -a acme --command '{migration}' --confirm acme"))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        self.check(
            "the preflight refuses (exit 5) and names the backup; nothing started",
            out.status.code() == Some(5) && text.contains("[backup]"),
        );
        self.pause()?;
        self.say("\nThe backup can be taken again later; the deploy cannot wait two hours. Cancel it — the pid the preflight named —\nescalating to terminate if the cancel does not take (it is stuck writing to its client):");
        let out = self.shell(sb, &format!("pg-blockers -a acme --cancel {} --escalate --confirm acme", backup.pid))?;
        let gone = sb.pg.psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {} AND state = 'active'", backup.pid),
        )? == "0";
        self.check(
            "the backup's statement is gone, verified by pg-blockers and by the database",
            out.status.success() && gone,
        );
        self.pause()?;
        let out = self.shell(sb, &format!("migrate-restart -a acme --command '{migration}' --confirm acme"))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let dropped = sb.pg.psql("postgres", "SELECT to_regclass('field_history') IS NULL")? == "t";
        self.check(
            "the migration ran, the table is gone, and every dyno restarted after it",
            out.status.success() && dropped && text.contains("restarted after the migration and up"),
        );
        self.check("no migration session is left in the database", lock_waiters(&sb.pg) == 0);
        self.pause()
    }

    fn stale_schema(&mut self, sb: &Sandbox) -> anyhow::Result<()> {
        self.act(
            "3. Stale schema after a migration",
            "Processes that booted before a migration keep their cached view of the schema until restarted (\"stuck dynos\").",
        )?;
        // Its own database, as every Heroku app with a migration has: the lock watch reads it.
        sb.pg.psql("postgres", "CREATE DATABASE billing")?;
        let billing_db = sb.pg.superuser_url("billing");
        sb.sim.with(|w: &mut World| {
            w.add_app("billing");
            w.add_postgres("billing", "DATABASE", "postgresql-amber-24680", &billing_db);
            w.add_formation("billing", "web", 2, "puma", Duration::from_secs(18 * 3600));
            w.add_formation("billing", "worker", 1, "sidekiq", Duration::from_secs(17 * 3600));
            w.add_release("billing", "c0ffee12", "Deploy c0ffee12: drop legacy columns", Duration::from_secs(600));
        });
        let out = self.shell(sb, "migrate-restart check -a billing")?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        self.check(
            "check lists the 3 dynos that booted before the change (exit 3)",
            out.status.code() == Some(3) && text.contains("3 dynos booted before it"),
        );
        self.pause()?;
        self.say("\nmigrate-restart runs the migration with a real exit status and restarts at once (a failed migration would restart nothing):");
        let out = self
            .shell(sb, "migrate-restart -a billing --command 'echo == migrated ==' --no-preflight --confirm billing")?;
        self.check("migration, restart, and every dyno verified fresh and up", out.status.success());
        let out = self.shell(sb, "migrate-restart check -a billing")?;
        self.check("check now finds no stale dyno", out.status.success());
        self.pause()
    }

    fn window(&mut self, sb: &Sandbox) -> anyhow::Result<()> {
        self.act(
            "4. The shortest maintenance window",
            "Enter maintenance only when migrations changed, scale background workers down first, release a prebuilt slug,\n\
             and report how long the site was down. Everything changed is journaled first.",
        )?;
        let (repo, deployed, code_only, _migration) = sb.rails_repo()?;
        sb.pg.psql("postgres", "CREATE DATABASE shop")?;
        let shop_db = sb.pg.superuser_url("shop");
        sb.sim.with(|w: &mut World| {
            w.add_app("shop");
            w.add_postgres("shop", "DATABASE", "postgresql-coral-13579", &shop_db);
            w.add_formation("shop", "web", 2, "puma", Duration::from_secs(3600));
            w.add_formation("shop", "worker", 3, "sidekiq", Duration::from_secs(3600));
            w.add_formation("shop", "clock", 1, "clockwork", Duration::from_secs(3600));
            w.add_release("shop", &deployed, "Deploy", Duration::from_secs(3600));
            w.add_app("shop-staging");
            w.add_release("shop-staging", "feedface", "Build of the new version", Duration::from_secs(300));
        });
        let cd = format!("cd {} && ", repo.display());
        let out = self.shell(sb, &format!("{cd}maintenance-window plan -a shop --target {code_only}"))?;
        self.check(
            "a code-only change needs no window",
            String::from_utf8_lossy(&out.stdout).contains("No window needed"),
        );
        let out = self.shell(sb, &format!("{cd}maintenance-window plan -a shop"))?;
        self.check(
            "a new file in db/migrate needs one",
            String::from_utf8_lossy(&out.stdout).contains("A window is needed"),
        );
        self.pause()?;
        let out = self.shell(
            sb,
            &format!("{cd}maintenance-window -a shop --promote-from shop-staging --confirm shop -- migrate-restart -a shop --restart none --no-preflight --command 'echo migrating' --confirm shop"),
        )?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let restored = sb.sim.with(|w| {
            let a = &w.apps["shop"];
            !a.maintenance
                && a.formation.iter().all(|f| {
                    f.quantity
                        == match f.process_type.as_str() {
                            "worker" => 3,
                            "web" => 2,
                            _ => 1,
                        }
                })
        });
        self.check(
            "the window closed with workers restored exactly and a timing report",
            out.status.success() && restored && text.contains("the site was in maintenance for"),
        );
        Ok(())
    }
}

/// The site's traffic: once the release's ALTER waits, 40 queries arrive and queue behind it;
/// how many ran, and how long from the ALTER's wait until the last finished.
fn queue_behind_the_alter(pg: &test_support::PgCluster, url: &str) -> (usize, Duration) {
    wait_until("the release's ALTER waits", || lock_waiters(pg) == 1);
    let started = std::time::Instant::now();
    let queries: Vec<_> = (0..40)
        .map(|i| test_support::sessions::spawn(url, &format!("web.{}", i % 2 + 1), "SELECT count(*) FROM users"))
        .collect();
    let ok = queries.into_iter().map(|q| q.finish()).filter(Result::is_ok).count();
    (ok, started.elapsed())
}
