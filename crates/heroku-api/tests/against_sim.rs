//! The client against the simulator: pagination, retries, errors, headers, typed resources.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heroku_api::{
    ApiHost, Client, ClientBuilder, DynoCreate, Error, FormationUpdate, RequestRecord, RetryPolicy, Token,
};
use heroku_sim::{FaultKind, Sim, World};

fn client_for(sim: &Sim) -> Client {
    builder_for(sim).build().unwrap()
}

fn builder_for(sim: &Sim) -> ClientBuilder {
    let host = ApiHost::from_heroku_host(Some(&sim.url())).unwrap();
    ClientBuilder::new(host, Token::new(sim.token()), "test-tool", "9.9.9")
        .retry_policy(RetryPolicy { base_backoff: Duration::from_millis(20), ..RetryPolicy::default() })
}

fn acme() -> World {
    let mut w = World::default();
    w.add_app("acme");
    w.add_formation("acme", "web", 2, "puma", Duration::from_secs(3600));
    w.add_formation("acme", "worker", 1, "sidekiq", Duration::from_secs(3600));
    w.add_dyno("acme", "release", "release.2343", "rake db:migrate", Duration::from_secs(1200));
    w
}

#[test]
fn lists_all_250_dynos_through_range_pagination() {
    let mut w = acme();
    w.add_formation("acme", "burst", 246, "work", Duration::from_secs(60));
    w.faults.page_size = 100;
    let sim = Sim::start(w).unwrap();
    let dynos = client_for(&sim).dynos("acme").unwrap();
    assert_eq!(dynos.len(), 250);
    let mut ids: Vec<_> = dynos.iter().map(|d| d.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 250, "a page repeated or skipped dynos");
    let gets: Vec<_> = sim.requests().into_iter().filter(|r| r.path == "/apps/acme/dynos").collect();
    assert_eq!(gets.len(), 3, "250 dynos in pages of 100 take three requests");
    assert_eq!(gets[0].status, 206);
    assert!(
        gets[1].range.as_deref().unwrap().starts_with("id ]"),
        "second page asks for the Next-Range: {:?}",
        gets[1].range
    );
    assert_eq!(gets[2].status, 200);
}

#[test]
fn waits_for_retry_after_on_429_then_succeeds() {
    let sim = Sim::start(acme()).unwrap();
    sim.add_fault(FaultKind::RateLimited(1), Some("GET"), Some("/apps/acme"), 1);
    let started = Instant::now();
    let app = client_for(&sim).app_info("acme").unwrap();
    assert_eq!(app.name, "acme");
    assert!(started.elapsed() >= Duration::from_millis(950), "did not wait for Retry-After: {:?}", started.elapsed());
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);
}

#[test]
fn a_429_on_a_create_is_retried_because_nothing_happened() {
    let sim = Sim::start(acme()).unwrap();
    sim.add_fault(FaultKind::RateLimited(0), Some("POST"), None, 1);
    let dyno =
        client_for(&sim).create_dyno("acme", &DynoCreate { command: "echo".into(), ..Default::default() }).unwrap();
    assert!(dyno.name.starts_with("run."));
    assert_eq!(sim.requests().iter().filter(|r| r.method == "POST").count(), 2);
}

#[test]
fn a_get_is_retried_after_503_but_a_create_is_not() {
    let sim = Sim::start(acme()).unwrap();
    let client = client_for(&sim);
    sim.add_fault(FaultKind::ServiceUnavailable, Some("GET"), None, 2);
    assert_eq!(client.dynos("acme").unwrap().len(), 4);
    assert_eq!(sim.requests().iter().filter(|r| r.method == "GET").count(), 3);

    sim.add_fault(FaultKind::ServiceUnavailable, Some("POST"), None, 1);
    let err = client
        .create_dyno("acme", &DynoCreate { command: "rake db:migrate".into(), ..Default::default() })
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 503, .. }), "{err:?}");
    assert_eq!(sim.requests().iter().filter(|r| r.method == "POST").count(), 1, "a create was sent twice");
    assert_eq!(sim.dyno_names("acme").len(), 4, "no one-off dyno may exist");
}

#[test]
fn a_reset_connection_is_retried_for_a_get_and_reported_for_a_create() {
    let sim = Sim::start(acme()).unwrap();
    let client = client_for(&sim);
    sim.add_fault(FaultKind::Reset, Some("GET"), None, 1);
    assert_eq!(client.app_info("acme").unwrap().name, "acme");

    sim.add_fault(FaultKind::Reset, Some("POST"), None, 1);
    let err = client.create_dyno("acme", &DynoCreate { command: "x".into(), ..Default::default() }).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Transport { not_retried_unsafe: true, .. }), "{err:?}");
    assert!(msg.contains("not retried"), "{msg}");
    assert_eq!(sim.requests().iter().filter(|r| r.method == "POST").count(), 1);
}

#[test]
fn a_rejected_token_says_to_log_in() {
    let sim = Sim::start(acme()).unwrap();
    let host = ApiHost::from_heroku_host(Some(&sim.url())).unwrap();
    let client = ClientBuilder::new(host, Token::new("wrong-token"), "t", "1").build().unwrap();
    let err = client.app_info("acme").unwrap_err();
    assert!(err.is_auth());
    let msg = err.to_string();
    assert!(msg.contains("heroku login") && msg.contains("HEROKU_API_KEY"), "{msg}");
    assert!(!msg.contains("wrong-token"));
}

#[test]
fn two_factor_is_named() {
    let sim = Sim::start(acme()).unwrap();
    sim.add_fault(FaultKind::TwoFactor, None, None, 1);
    let err = client_for(&sim).app_info("acme").unwrap_err();
    assert!(err.is_auth());
    assert!(err.to_string().contains("two-factor"), "{err}");
}

#[test]
fn not_found_names_the_missing_thing() {
    let sim = Sim::start(acme()).unwrap();
    let client = client_for(&sim);
    assert_eq!(client.app_info("nope").unwrap_err().to_string(), "app `nope` not found (Couldn't find that app)");
    let err = client.dyno_info("acme", "web.9").unwrap_err();
    assert!(err.is_not_found());
    assert!(err.to_string().starts_with("dyno `web.9` of acme not found"), "{err}");
    assert!(client.release_info("acme", "99").unwrap_err().to_string().starts_with("release `99` of acme not found"));
}

#[test]
fn every_request_has_a_timeout() {
    let mut w = acme();
    w.faults.latency = Duration::from_secs(3);
    let sim = Sim::start(w).unwrap();
    let client = builder_for(&sim)
        .timeout(Duration::from_millis(300))
        .retry_policy(RetryPolicy { max_attempts: 1, ..RetryPolicy::default() })
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.app_info("acme").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "timeout not applied: {:?}", started.elapsed());
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[test]
fn sends_v3_accept_and_a_user_agent_and_logs_without_the_token() {
    let sim = Sim::start(acme()).unwrap();
    let records: Arc<Mutex<Vec<RequestRecord>>> = Arc::default();
    let sink = records.clone();
    let client = builder_for(&sim)
        .logger(Arc::new(move |r: &RequestRecord| sink.lock().unwrap().push(r.clone())))
        .build()
        .unwrap();
    // GET /apps/{app} goes under the 3.sdk variant, as the CLI asks for it (it carries the
    // generation); every other route keeps plain v3.
    client.app_info("acme").unwrap();
    let seen = &sim.requests()[0];
    assert_eq!(seen.accept.as_deref(), Some("application/vnd.heroku+json; version=3.sdk"));
    client.formation("acme").unwrap();
    assert_eq!(sim.requests()[1].accept.as_deref(), Some("application/vnd.heroku+json; version=3"));
    assert!(seen.user_agent.as_deref().unwrap().starts_with("test-tool/9.9.9"), "{:?}", seen.user_agent);
    let records = records.lock().unwrap();
    assert_eq!(records.len(), 2);
    let r = &records[0];
    assert_eq!((r.method.as_str(), r.path.as_str(), r.status), ("GET", "/apps/acme", Some(200)));
    assert_eq!(r.request_id.as_deref(), Some("sim-1"));
    assert!(!format!("{r:?}").contains(&sim.token()));
    assert_eq!(client.calls_made(), 2);
}

#[test]
fn typed_resources_round_trip() {
    let sim = Sim::start(acme()).unwrap();
    let c = client_for(&sim);

    assert!(!c.app_info("acme").unwrap().maintenance);
    assert!(c.set_maintenance("acme", true).unwrap().maintenance);
    assert!(sim.with(|w| w.apps["acme"].maintenance));
    assert!(!c.set_maintenance("acme", false).unwrap().maintenance);

    let formation = c.formation("acme").unwrap();
    assert_eq!(formation.iter().find(|f| f.process_type == "worker").unwrap().quantity, 1);
    let updated = c
        .update_formation(
            "acme",
            &[
                FormationUpdate { process_type: "worker".into(), quantity: 0 },
                FormationUpdate { process_type: "web".into(), quantity: 3 },
            ],
        )
        .unwrap();
    assert_eq!(updated.len(), 2);
    assert_eq!(
        sim.requests().iter().filter(|r| r.method == "PATCH" && r.path.ends_with("/formation")).count(),
        1,
        "one batch request"
    );

    let web1 = c.dyno_info("acme", "web.1").unwrap();
    assert_eq!(web1.process_type, "web");

    let releases = c.releases("acme").unwrap();
    assert_eq!(releases.len(), 1);
    sim.with(|w| w.add_release("acme", "abc1234", "Deploy abc1234", Duration::from_secs(5)));
    let releases = c.releases("acme").unwrap();
    assert_eq!(releases.iter().map(|r| r.version).collect::<Vec<_>>(), vec![2, 1], "newest first");
    assert!(releases[0].current);
    let latest = c.latest_release("acme").unwrap().unwrap();
    assert_eq!(latest.version, 2);
    let slug = c.slug_info("acme", &latest.slug.as_ref().unwrap().id).unwrap();
    assert_eq!(slug.commit.as_deref(), Some("abc1234"));
    let release = c.create_release("acme", &slug.id, "Promote abc1234").unwrap();
    assert_eq!(release.version, 3);
    assert_eq!(c.release_info("acme", &release.id).unwrap().version, 3);

    sim.with(|w| w.add_postgres("acme", "DATABASE", "postgresql-teal-123", "postgres://u:p@db.example/d"));
    assert_eq!(c.config_vars("acme").unwrap()["DATABASE_URL"], "postgres://u:p@db.example/d");
    let att = c.addon_attachments("acme").unwrap();
    assert_eq!((att[0].name.as_str(), att[0].addon.name.as_str()), ("DATABASE", "postgresql-teal-123"));

    let one_off = c
        .create_dyno(
            "acme",
            &DynoCreate {
                command: "rake db:migrate".into(),
                attach: false,
                size: Some("standard-2X".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(one_off.name.starts_with("run."));
    assert_eq!(one_off.size.as_deref(), Some("standard-2X"));
}

#[test]
fn stop_by_id_removes_the_dyno_but_a_stop_to_a_type_name_stops_nothing() {
    let sim = Sim::start(acme()).unwrap();
    let c = client_for(&sim);
    // The platform accepts a stop addressed to the bare type name and does nothing.
    c.stop_dyno("acme", "release").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert!(sim.dyno_names("acme").contains(&"release.2343".to_string()));

    let release = c.dynos("acme").unwrap().into_iter().find(|d| d.name == "release.2343").unwrap();
    c.stop_dyno("acme", &release.id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.dynos("acme").unwrap().iter().any(|d| d.id == release.id) {
        assert!(Instant::now() < deadline, "dyno never went away");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn restarts_give_new_boot_times_and_pass_through_starting() {
    let sim = Sim::start(acme()).unwrap();
    let c = client_for(&sim);
    let before = c.dyno_info("acme", "worker.1").unwrap();
    c.restart_process_type("acme", "worker").unwrap();
    let after = c.dyno_info("acme", "worker.1").unwrap();
    assert_eq!(after.state, "starting");
    assert!(after.created_at_time().unwrap() > before.created_at_time().unwrap());
    assert_eq!(c.dyno_info("acme", "web.1").unwrap().state, "up", "only the type restarts");
    c.restart_all("acme").unwrap();
    assert_eq!(c.dyno_info("acme", "web.1").unwrap().state, "starting");
    let w = c.dyno_info("acme", "web.2").unwrap();
    c.restart_dyno("acme", &w.id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.dynos("acme").unwrap().iter().any(|d| d.state != "up") {
        assert!(Instant::now() < deadline, "dynos never came up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_dyno_that_ignores_stop_stays_listed() {
    let mut w = acme();
    w.dyno_mut("acme", "release.2343").ignores_stop = true;
    let sim = Sim::start(w).unwrap();
    let c = client_for(&sim);
    let id = c.dyno_info("acme", "release.2343").unwrap().id;
    c.stop_dyno("acme", &id).unwrap();
    std::thread::sleep(sim.with(|w| w.timing.stop_delay) * 3);
    assert!(c.dynos("acme").unwrap().iter().any(|d| d.id == id));
}

#[test]
fn rate_limiting_every_nth_request_is_absorbed() {
    let mut w = acme();
    w.faults.rate_limit_every = Some(3);
    w.faults.retry_after_secs = 0;
    let sim = Sim::start(w).unwrap();
    let c = client_for(&sim);
    for _ in 0..5 {
        assert_eq!(c.app_info("acme").unwrap().name, "acme");
    }
    let limited = sim.requests().iter().filter(|r| r.status == 429).count();
    assert!(limited >= 2, "the fault fired {limited} times");
}

#[test]
fn a_long_retry_after_is_capped() {
    // An hour-long Retry-After must not stall an incident tool: the wait is bounded by the policy.
    let sim = Sim::start(acme()).unwrap();
    sim.add_fault(FaultKind::RateLimited(3600), Some("GET"), None, 1);
    let client = builder_for(&sim)
        .retry_policy(RetryPolicy { max_retry_after: Duration::from_millis(200), ..RetryPolicy::default() })
        .build()
        .unwrap();
    let started = Instant::now();
    assert_eq!(client.app_info("acme").unwrap().name, "acme");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(190) && waited < Duration::from_secs(5), "waited {waited:?}");
}
