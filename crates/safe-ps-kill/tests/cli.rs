//! safe-ps-kill against heroku-sim (and a real PostgreSQL for the database check).

use std::time::Duration;

use heroku_sim::{scenario, FaultKind, Sim, World};
use serde_json::Value;
use test_support::sessions::StuckAlter;
use test_support::tool::{OutputExt, Tool};
use test_support::PgCluster;

fn stuck() -> World {
    let mut w = scenario("stuck-release").unwrap();
    w.timing.stop_delay = Duration::from_millis(200);
    w
}

fn tool(sim: &Sim) -> Tool {
    Tool::new(env!("CARGO_BIN_EXE_safe-ps-kill")).against(sim)
}

fn stops(sim: &Sim) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/actions/stop"))
        .map(|r| r.path)
        .collect()
}

#[test]
fn incident_release_resolves_to_release_2343_stops_it_by_id_and_sees_it_gone() {
    let sim = Sim::start(stuck()).unwrap();
    let id = sim.with(|w| w.dyno_mut("acme", "release.2343").id.clone());
    let out = tool(&sim).run(&["release", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    // The resolution, the plan, what stopping it does to v2, the stop seen.
    test_support::assert_whole!("stopped.stdout", test_support::snapshot::columns_collapsed(&out.stdout_text()));
    assert_eq!(stops(&sim), vec![format!("/apps/acme/dynos/{id}/actions/stop")], "stopped by id, once");
    assert!(!sim.requests().iter().any(|r| r.path.contains("/dynos/release/")), "never addressed to the type name");
    assert!(!sim.dyno_names("acme").contains(&"release.2343".to_string()));
    // No DATABASE_URL on this app: the check says so in one line.
    test_support::assert_whole!("stopped.stderr", out.stderr_text());
}

#[test]
fn an_exact_formation_dyno_name_is_stopped_and_its_replacement_noted() {
    let sim = Sim::start(stuck()).unwrap();
    let out = tool(&sim).run(&["web.1", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains("✓ web.1 stopped (gone after"), "{}", out.dump());
    assert!(out.stdout_text().contains("its formation started a new web.1"), "{}", out.dump());
    assert!(!out.stderr_text().contains("database check"), "web dynos need no database check");
}

#[test]
fn several_dynos_of_a_type_need_a_choice_or_all_with_confirm() {
    let mut w = stuck();
    w.add_formation("acme", "clock", 3, "clockwork", Duration::from_secs(60));
    let sim = Sim::start(w).unwrap();
    let t = tool(&sim);

    let out = t.run(&["clock", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(
        out.stderr_text().contains(
            "clock has 3 dynos (clock.1, clock.2, clock.3): name one, or stop them all with --all --confirm acme"
        ),
        "{}",
        out.dump()
    );
    let out = t.run(&["clock", "-a", "acme", "--all"]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(stops(&sim).is_empty(), "nothing may be stopped");

    let out = t.run(&["clock", "-a", "acme", "--all", "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    for n in 1..=3 {
        assert!(out.stdout_text().contains(&format!("✓ clock.{n} stopped")), "{}", out.dump());
    }
    assert_eq!(stops(&sim).len(), 3);
}

#[test]
fn no_argument_without_a_terminal_and_unknown_names_are_usage_errors() {
    let sim = Sim::start(stuck()).unwrap();
    let t = tool(&sim);
    let out = t.run(&["-a", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("name a dyno or process type"), "{}", out.dump());
    let out = t.run(&["relase", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(
        out.stderr_text().contains("no dyno or process type `relase` on acme; its dynos: release.2343, "),
        "closest first: {}",
        out.dump()
    );
    assert!(stops(&sim).is_empty());
}

#[test]
fn a_dyno_that_ignores_stop_is_reported_still_running_with_exit_3() {
    let mut w = stuck();
    w.dyno_mut("acme", "release.2343").ignores_stop = true;
    let sim = Sim::start(w).unwrap();
    let out = tool(&sim).run(&["release", "-a", "acme", "--confirm", "acme", "--wait", "1s"]);
    assert_eq!(out.code(), 3, "{}", out.dump());
    assert!(!out.stdout_text().contains("✓"), "never reports a stop it did not observe: {}", out.dump());
    test_support::assert_whole!("still-running.stdout", test_support::snapshot::columns_collapsed(&out.stdout_text()));
}

/// `safe-ps-kill … | head -1`: the reader goes away, the tool still waits for the stop, and the
/// exit code is the operation's (3: not seen gone), not 0. The outcome moves to stderr.
#[test]
fn a_closed_stdout_does_not_turn_an_unverified_stop_into_success() {
    let mut w = stuck();
    w.dyno_mut("acme", "release.2343").ignores_stop = true;
    let sim = Sim::start(w).unwrap();
    let run = test_support::tool::run_closing_stdout_after_first_line(tool(&sim).command(&[
        "release",
        "-a",
        "acme",
        "--confirm",
        "acme",
        "--wait",
        "1s",
    ]));
    assert_eq!(run.code(), 3, "first line {:?}; stderr:\n{}", run.first_line, run.stderr);
    assert!(run.stderr.contains("✗ release.2343 STILL RUNNING after 1s"), "{}", run.stderr);
    assert!(run.stderr.contains("stdout was closed"), "{}", run.stderr);
    assert_eq!(stops(&sim).len(), 1, "the stop was sent");
}

#[test]
fn rate_limits_and_503s_while_polling_are_absorbed() {
    let mut w = stuck();
    w.timing.stop_delay = Duration::from_millis(800);
    w.faults.rate_limit_every = Some(3);
    w.faults.retry_after_secs = 0;
    let sim = Sim::start(w).unwrap();
    sim.add_fault(FaultKind::ServiceUnavailable, Some("GET"), Some("/apps/acme/dynos"), 2);
    let out = tool(&sim).run(&["release", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let statuses: Vec<u16> = sim.requests().iter().filter(|r| r.path == "/apps/acme/dynos").map(|r| r.status).collect();
    let limited = sim.requests().iter().filter(|r| r.status == 429).count();
    assert!(statuses.contains(&503) && limited > 0, "faults fired: {statuses:?}, {limited} rate-limited");
    // A 429 is answered before anything is done, so a stop refused with it may be sent again;
    // an accepted stop is never repeated.
    let accepted = sim.requests().iter().filter(|r| r.path.ends_with("/actions/stop") && r.status == 202).count();
    assert_eq!(accepted, 1, "a stop is accepted once: {:?}", stops(&sim));
    assert!(!out.stderr_text().contains("rate-limiting"), "a short wait off a terminal, without -v, is not said");

    // With -v, the wait a 429 asks for is said rather than silent.
    let out = tool(&sim).run(&["web.1", "-a", "acme", "--dry-run", "-v"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(
        out.stderr_text().contains("Heroku is rate-limiting this account (429 on GET /apps/acme"),
        "{}",
        out.dump()
    );
}

#[test]
fn finds_the_release_dyno_among_250() {
    let mut w = stuck();
    w.add_formation("acme", "burst", 246, "work", Duration::from_secs(60));
    w.faults.page_size = 100;
    let sim = Sim::start(w).unwrap();
    assert_eq!(sim.dyno_names("acme").len(), 250);
    let out = tool(&sim).run(&["release", "-a", "acme", "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["resolved"][0]["name"], "release.2343");
    assert!(sim.requests().iter().any(|r| r.path == "/apps/acme/dynos" && r.status == 206), "paged");
}

#[test]
fn json_is_one_document_with_the_outcome() {
    let sim = Sim::start(stuck()).unwrap();
    let out = tool(&sim).run(&["release", "-a", "acme", "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.dump()));
    assert_eq!(doc["schema_version"], 1);
    let _: safe_ps_kill::report::KillReport =
        serde_json::from_value(doc.clone()).expect("the document is a KillReport");
    assert_eq!(doc["app"], "acme");
    assert_eq!(doc["argument"], "release");
    assert_eq!(doc["resolution"], "type");
    assert_eq!(doc["action"], "stop");
    assert_eq!(doc["resolved"][0]["release_version"], 2);
    assert_eq!(doc["outcomes"][0]["name"], "release.2343");
    assert_eq!(doc["outcomes"][0]["stopped"], true);
    assert!(doc["outcomes"][0]["gone_after_ms"].as_u64().unwrap() < 30_000);
    assert_eq!(doc["database_check"]["status"], "skipped");
    assert!(out.stderr_text().contains("release → release.2343"), "human text goes to stderr under --json");
}

#[test]
fn dry_run_and_refusals_stop_nothing() {
    let sim = Sim::start(stuck()).unwrap();
    let t = tool(&sim);
    let out = t.run(&["release", "-a", "acme", "--dry-run"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(out.stdout_text().contains("Dry run: nothing was stopped"), "{}", out.dump());
    let out = t.run(&["release", "-a", "acme"]);
    assert_eq!(out.code(), 5, "no terminal and no --confirm: {}", out.dump());
    assert!(out.stderr_text().contains("--confirm acme"), "{}", out.dump());
    let out = t.run(&["release", "-a", "acme", "--confirm", "acme-staging"]);
    assert_eq!(out.code(), 5, "{}", out.dump());
    assert!(stops(&sim).is_empty(), "the sim saw no stop request");
}

#[test]
fn bad_input_gets_one_line_and_the_documented_code() {
    let sim = Sim::start(stuck()).unwrap();
    let t = tool(&sim);
    let cases: &[(&[&str], i32, &str)] = &[
        (&["release", "-a", "ACME!"], 2, "not a valid app name"),
        (&["release", "-a", "nope"], 2, "app `nope` not found"),
        (&["release", "-a", "acme", "--wait", "0s"], 2, "greater than zero"),
        (&["release", "-a", "acme", "--wait", "soon"], 2, "not a duration"),
        (&["release", "-a", "acme", "--wait=-5s"], 2, "negative"),
    ];
    // Every refusal whole, in one document (tests/snapshots/refusals.snap).
    let mut refusals = test_support::snapshot::Transcript::new();
    for (args, code, needle) in cases {
        let out = t.run(args);
        assert_eq!(out.code(), *code, "{args:?}: {}", out.dump());
        assert!(out.stderr_text().contains(needle), "{args:?}: {}", out.dump());
        refusals.record("safe-ps-kill", args, &out);
    }
    for (args, code) in
        [(&["release", "-a", "acme"][..], 5), (&["release", "-a", "acme", "--confirm", "acme-staging"], 5)]
    {
        let out = t.run(args);
        assert_eq!(out.code(), code, "{args:?}: {}", out.dump());
        refusals.record("safe-ps-kill", args, &out);
    }
    let args = ["release", "-a", "acme"];
    let out = Tool::new(env!("CARGO_BIN_EXE_safe-ps-kill")).env("HEROKU_HOST", &sim.url()).run(&args);
    assert_eq!(out.code(), 4, "{}", out.dump());
    refusals.record("safe-ps-kill (no token)", &args, &out);
    let out = Tool::new(env!("CARGO_BIN_EXE_safe-ps-kill")).api(&sim.url(), "revoked").run(&args);
    assert_eq!(out.code(), 4, "{}", out.dump());
    refusals.record("safe-ps-kill (a revoked token)", &args, &out);
    // A HEROKU_HOST with a scheme the API does not speak is a usage error naming the variable
    // (it used to become `https://api.ftp://x`, a DNS failure after four attempts).
    let out = Tool::new(env!("CARGO_BIN_EXE_safe-ps-kill"))
        .env("HEROKU_HOST", "ftp://x")
        .env("HEROKU_API_KEY", "t")
        .run(&["release", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    assert!(out.stderr_text().contains("HEROKU_HOST `ftp://x` uses the scheme `ftp`"), "{}", out.dump());
    assert_eq!(out.stderr_text().lines().count(), 1, "one line: {}", out.dump());
    refusals.record("safe-ps-kill (HEROKU_HOST=ftp://x)", &["release", "-a", "acme", "--confirm", "acme"], &out);
    assert!(stops(&sim).is_empty());
    test_support::assert_whole!("refusals", test_support::snapshot::columns_collapsed(&refusals.text()));
}

#[test]
fn the_prompt_under_a_terminal_says_no_by_default_and_yes_stops() {
    let sim = Sim::start(stuck()).unwrap();
    let t = tool(&sim);
    let mut no = t.pty(&["release", "-a", "acme"]);
    no.expect("Stop release.2343 on acme?", Duration::from_secs(20));
    no.send("\r");
    assert_eq!(no.wait(Duration::from_secs(20)).code(), Some(5), "{}", no.screen());
    assert!(stops(&sim).is_empty());

    let mut yes = t.pty(&["release", "-a", "acme"]);
    yes.expect("Stop release.2343 on acme?", Duration::from_secs(20));
    yes.send("y");
    assert_eq!(yes.wait(Duration::from_secs(20)).code(), Some(0), "{}", yes.screen());
    assert!(yes.screen().contains("release.2343 stopped"), "{}", yes.screen());
    assert_eq!(stops(&sim).len(), 1);
}

#[test]
fn on_a_terminal_an_ambiguous_type_offers_a_pick() {
    let mut w = stuck();
    w.add_formation("acme", "clock", 2, "clockwork", Duration::from_secs(60));
    let sim = Sim::start(w).unwrap();
    let mut s = tool(&sim).pty(&["clock", "-a", "acme"]);
    s.expect("clock has 2 dynos; which?", Duration::from_secs(20));
    // Down twice to "all 2 clock dynos", Enter, then confirm.
    s.send("\x1b[B");
    s.send("\x1b[B");
    s.send("\r");
    s.expect("Stop clock.1, clock.2 on acme?", Duration::from_secs(20));
    s.send("y");
    assert_eq!(s.wait(Duration::from_secs(20)).code(), Some(0), "{}", s.screen());
    assert_eq!(stops(&sim).len(), 2);
}

#[test]
fn after_stopping_a_release_dyno_the_waiting_alter_and_its_queue_are_named() {
    let pg = PgCluster::start().unwrap();
    let stuck_alter = StuckAlter::start(&pg, 40, "migrate-restart/release.2343");
    let mut w = stuck();
    w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres"));
    let sim = Sim::start(w).unwrap();
    let out = tool(&sim).run(&["release", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let text = out.stdout_text();
    // The whole output (pids filtered), then that the pids are the right sessions'.
    test_support::assert_whole!("ddl-left-waiting.stdout", test_support::snapshot::columns_collapsed(&text));
    let (alter, reader) = (stuck_alter.alter.pid, stuck_alter.reader.pid);
    assert!(text.contains(&format!("  pid {alter} [migrate-restart/release.2343] waits")), "{text}");
    assert!(text.contains(&format!("held up by pid {reader} (reporting")), "{text}");
    assert!(text.contains(&format!("--cancel {alter} --confirm acme")), "{text}");
    assert!(!text.contains("test-superuser-pw") && !out.stderr_text().contains("test-superuser-pw"));

    // A credential that owns none of the sessions sees the same waiting DDL (its query hidden).
    let second = pg.create_role("second_credential", "second-pw", "postgres").unwrap();
    let sim = Sim::start(stuck()).unwrap();
    let out = tool(&sim).run(&["release", "-a", "acme", "--confirm", "acme", "--database-url", &second]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let text = out.stdout_text();
    // No all-clear: the waiting DDL, its query hidden; the commands it prints name
    // "$DATABASE_URL" (the URL holds a password), and it says what to set before running them —
    // never the password.
    // PostgreSQL 12 and 13 have no pg_locks.waitstart: there, another role's wait is untimed.
    let timed = text.replace(" waits (for how long, hidden from this credential):", " waits [dur]:");
    test_support::assert_whole!(
        "ddl-left-waiting-second-credential.stdout",
        test_support::snapshot::columns_collapsed(&timed)
    );
    assert!(text.contains(&format!("  pid {} [migrate-restart/release.2343] waits", stuck_alter.alter.pid)), "{text}");
    assert!(!text.contains("second-pw"), "{text}");

    // An unreachable database: one line, and the stop itself still succeeds.
    let sim = Sim::start(stuck()).unwrap();
    sim.with(|w| w.set_config_var("acme", "DATABASE_URL", "postgres://u:p@127.0.0.1:1/db?sslmode=disable"));
    let out = tool(&sim).run(&["release", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert!(
        out.stderr_text().contains("database check skipped: cannot connect to database db on 127.0.0.1"),
        "{}",
        out.dump()
    );
}

#[test]
fn on_a_terminal_a_spinner_shows_while_waiting_and_no_color_is_honoured() {
    let mut w = stuck();
    w.timing.stop_delay = Duration::from_millis(800);
    let sim = Sim::start(w).unwrap();
    let t = tool(&sim);
    let mut cmd = t.command(&["web.1", "-a", "acme", "--confirm", "acme"]);
    cmd.env_remove("NO_COLOR");
    let mut colored = test_support::pty::PtySession::spawn(cmd);
    assert_eq!(colored.wait(Duration::from_secs(20)).code(), Some(0), "{}", colored.screen());
    let screen = colored.screen();
    assert!(screen.contains("waiting for web.1 to stop"), "a spinner while polling: {screen}");
    assert!(screen.contains("\x1b[32m"), "colour on a terminal: {screen:?}");

    let mut plain = test_support::pty::PtySession::spawn(t.command(&["web.2", "-a", "acme", "--confirm", "acme"]));
    assert_eq!(plain.wait(Duration::from_secs(20)).code(), Some(0), "{}", plain.screen());
    assert!(
        !plain.screen().contains("\x1b[32m") && !plain.screen().contains("\x1b[31"),
        "NO_COLOR: {:?}",
        plain.screen()
    );
    // Without a terminal there is no spinner at all.
    let out = t.run(&["worker.1", "-a", "acme", "--confirm", "acme"]);
    assert!(!out.stderr_text().contains("waiting for"), "{}", out.dump());
}

/// Stopping a release dyno while its release phase runs fails that release: the plan says so
/// before asking, with the release the app stays on, and the report carries it.
#[test]
fn a_release_dyno_is_named_with_its_pending_release_and_what_stopping_it_does() {
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 1, "puma", Duration::from_secs(600));
    w.timing.stop_delay = Duration::from_millis(100);
    let sim = Sim::start(w).unwrap();
    let v = sim.push("acme", "feed1234", "add nickname", &[("web", "puma"), ("release", "sleep 30")]);
    let out = tool(&sim).run(&["release", "-a", "acme", "--dry-run", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let text = out.stderr_text();
    assert!(
        text.contains(&format!(
            "runs the release phase of v{v}: stopping it marks v{v} failed, and acme stays on v{}",
            v - 1
        )),
        "{}",
        out.dump()
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["release_phase"][0]["version"], v);
    assert_eq!(doc["release_phase"][0]["status"], "pending");
    assert_eq!(doc["release_phase"][0]["stays_on"], v - 1);
    // And it does: the stop fails the release, the app stays on the previous one.
    let out = tool(&sim).run(&["release", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    test_support::sessions::wait_until("the release fails", || {
        sim.with(|w| w.apps["acme"].releases.iter().any(|r| r.version == v && r.status == "failed"))
    });
    assert_eq!(sim.with(|w| w.apps["acme"].current_version()), v - 1);
}

/// No free connection slot: the stop still happens by id and is verified (exit 0); the
/// database check says in one line why it was skipped and the ways out.
#[test]
fn with_no_free_connection_the_stop_is_verified_and_the_db_check_says_why_it_was_skipped() {
    let pg = PgCluster::start_with_max_connections(6).unwrap();
    let mut w = stuck();
    w.add_postgres("acme", "DATABASE", "postgresql-teal-12345", &pg.superuser_url("postgres"));
    let sim = Sim::start(w).unwrap();
    let _held = test_support::sessions::take_every_slot(&pg);
    let out = tool(&sim).run(&["release", "-a", "acme", "--confirm", "acme", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let err = out.stderr_text();
    assert!(err.contains("database check skipped:") && err.contains("every connection slot is taken"), "{err}");
    assert!(err.contains("`heroku pg:killall -a acme`") && err.contains("heroku ps:scale worker=0 -a acme"), "{err}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["database_check"]["status"], "skipped");
    assert!(doc["database_check"]["reason"].as_str().unwrap().contains("53300"), "{doc}");
}

/// On a Fir app dynos are pods (`web-<hash>-<5>`): a type resolves to them, each is stopped by
/// id and seen gone, whatever its replacement is called.
#[test]
fn on_a_fir_app_a_type_resolves_to_its_pods_and_each_is_stopped_by_id() {
    let mut w = World::default();
    w.add_app("acme");
    w.make_fir("acme", true);
    w.add_formation("acme", "worker", 2, "bundle exec sidekiq", Duration::from_secs(600));
    w.timing.stop_delay = Duration::from_millis(100);
    let sim = Sim::start(w).unwrap();
    let pods = sim.dyno_names("acme");
    assert!(pods.iter().all(|n| n.starts_with("worker-")), "{pods:?}");
    let ids: Vec<String> = sim.with(|w| w.apps["acme"].dynos.iter().map(|d| d.id.clone()).collect());
    let out = tool(&sim).run(&["worker", "-a", "acme", "--all", "--confirm", "acme"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let text = out.stdout_text();
    for p in &pods {
        assert!(text.contains(&format!("✓ {p} stopped")), "{text}");
    }
    let mut stopped: Vec<String> = stops(&sim).into_iter().map(|p| p.split('/').nth(4).unwrap().to_string()).collect();
    stopped.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(stopped, want, "each pod stopped by id");
}

/// An argument with control characters is echoed escaped in the error, never obeyed.
#[test]
fn an_argument_with_control_characters_is_echoed_escaped() {
    let sim = Sim::start(stuck()).unwrap();
    let out = tool(&sim).run(&["web\x1b[2J", "-a", "acme", "--confirm", "acme"]);
    assert_eq!(out.code(), 2, "{}", out.dump());
    let err = out.stderr_text();
    assert!(!err.contains('\x1b'), "{err:?}");
    assert!(err.contains("web\\x1b[2J"), "{err}");
}

/// A dyno command from the platform carrying bidi controls (a right-to-left override would
/// reverse the rest of the table row) is shown escaped, like C0/C1 controls.
#[test]
fn a_dyno_command_with_bidi_controls_is_shown_escaped() {
    let mut w = stuck();
    w.dyno_mut("acme", "web.1").command = "bundle exec puma \u{202e}txt.exe\u{2066}".into();
    let sim = Sim::start(w).unwrap();
    let out = tool(&sim).run(&["web.1", "-a", "acme", "--dry-run"]);
    assert_eq!(out.code(), 0, "{}", out.dump());
    let text = out.stdout_text();
    assert!(!text.contains('\u{202e}') && !text.contains('\u{2066}'), "{text:?}");
    assert!(text.contains("bundle exec puma \\u{202e}txt.exe\\u{2066}"), "{text}");
}

/// Ctrl-C after the stop was sent and before the dyno was seen gone: the tool says a stop was
/// sent and not yet confirmed, with the commands to check, and exits 130.
#[test]
fn an_interrupt_after_the_stop_says_it_was_sent_and_not_confirmed() {
    let mut w = stuck();
    w.dyno_mut("acme", "release.2343").ignores_stop = true;
    let sim = Sim::start(w).unwrap();
    let child = tool(&sim)
        .command(&["release", "-a", "acme", "--confirm", "acme", "--wait", "60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    test_support::sessions::wait_until("the stop was sent", || !stops(&sim).is_empty());
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", out.dump());
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    assert!(text.contains("interrupted: a stop was sent to release.2343"), "{text}");
    assert!(text.contains("not yet confirmed gone; check with `heroku ps -a acme`"), "{text}");
}

/// An API host nothing answers on is named in the error (with where it came from), so a
/// HEROKU_HOST typo is not a bare "could not connect".
#[test]
fn an_unreachable_api_host_is_named() {
    let out = Tool::new(env!("CARGO_BIN_EXE_safe-ps-kill")).api("http://127.0.0.1:1", "tok").run(&[
        "web.1",
        "-a",
        "acme",
        "--dry-run",
    ]);
    assert_eq!(out.code(), 1, "{}", out.dump());
    let err = out.stderr_text();
    assert!(err.contains("could not connect to 127.0.0.1:1 (HEROKU_HOST)"), "{err}");
    assert!(!err.contains("tok"), "{err}");
}

/// On a terminal, a Retry-After wait long enough to look like a hang (here 3 s) is said even
/// without -v; off a terminal a short one is not (see the test above).
#[test]
fn on_a_terminal_a_long_rate_limit_wait_is_said() {
    let sim = Sim::start(stuck()).unwrap();
    sim.add_fault(FaultKind::RateLimited(3), Some("GET"), Some("/apps/acme"), 1);
    let mut s = tool(&sim).pty(&["web.1", "-a", "acme", "--dry-run"]);
    s.expect("Heroku is rate-limiting this account (429 on GET /apps/acme", Duration::from_secs(20));
    s.expect("waiting 3s as its Retry-After asks", Duration::from_secs(5));
    s.wait(Duration::from_secs(60));
}
