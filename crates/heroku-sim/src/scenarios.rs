//! Named worlds that replay the incidents, for the demo, the real-CLI tests and the runbooks.

use std::time::Duration;

use crate::model::World;

/// Every scenario name with a one-line description.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("stuck-release", "acme: web x2, worker x1 on v1; release.2343 running the release phase of v2 (`rake db:migrate`) for 20 minutes"),
    ("backup-6am", "acme: web x2, worker x1; its DATABASE_URL is --database-url's, where the README's \"try it by hand\" stages a backup's COPY with a DROP TABLE waiting behind it"),
    ("stale-schema", "acme: web x2, worker x1 booted 18h ago; a migration ran 10 minutes ago"),
    ("deploy-window", "acme: web x2, worker x3, clock x1; acme-staging holds a prebuilt slug to promote"),
    ("empty", "no apps"),
];

const MIN: u64 = 60;

/// Builds a scenario's world; `None` for an unknown name.
pub fn scenario(name: &str) -> Option<World> {
    let mut w = World::default();
    match name {
        "empty" => {}
        "stuck-release" => {
            base_app(&mut w, "acme", 1);
            // The release phase of v2 has run for 20 minutes: v2 is pending (the platform makes
            // a release current only when its release phase ends), release.2343 runs it, and the
            // formation still runs v1.
            let v2 = w.add_release(
                "acme",
                "b7c2e4f1a9d3",
                "Deploy b7c2e4f1: add users.nickname",
                Duration::from_secs(21 * MIN),
            );
            let app = w.apps.get_mut("acme").expect("just added");
            app.releases.iter_mut().filter(|r| r.version == v2).for_each(|r| r.status = "pending".into());
            w.add_formation("acme", "release", 0, "bundle exec rake db:migrate", Duration::from_secs(20 * MIN));
            w.add_dyno(
                "acme",
                "release",
                "release.2343",
                "bundle exec rake db:migrate",
                Duration::from_secs(20 * MIN),
            )
            .release_version = v2;
        }
        "backup-6am" => {
            base_app(&mut w, "acme", 1);
        }
        "stale-schema" => {
            base_app(&mut w, "acme", 1);
            w.add_release("acme", "c0ffee123456", "Deploy c0ffee12: drop field_history", Duration::from_secs(10 * MIN));
        }
        "deploy-window" => {
            base_app(&mut w, "acme", 3);
            w.add_formation("acme", "clock", 1, "bundle exec clockwork clock.rb", Duration::from_secs(3600));
            w.add_app("acme-staging");
            w.add_release(
                "acme-staging",
                "feedface0001",
                "Deploy feedface: new billing",
                Duration::from_secs(30 * MIN),
            );
        }
        _ => return None,
    }
    Some(w)
}

fn base_app(w: &mut World, name: &str, workers: u32) {
    w.add_app(name);
    w.add_formation(name, "web", 2, "bundle exec puma -C config/puma.rb", Duration::from_secs(18 * 3600));
    w.add_formation(name, "worker", workers, "bundle exec sidekiq", Duration::from_secs(17 * 3600));
}
