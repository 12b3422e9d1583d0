//! Building worlds: apps, formation, dynos, releases, config vars, attachments.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::model::{AppState, AttachmentState, DynoState, FormationState, ReleaseState, SlugState, World};

impl World {
    /// Turns an app feature on or off (`preboot`: the old dynos keep serving while the new ones
    /// boot, after a release).
    pub fn set_feature(&mut self, app: &str, name: &str, enabled: bool) {
        self.apps.get_mut(app).expect("seed: unknown app").features.insert(name.to_string(), enabled);
    }

    /// Adds an app with release v1 (a slug built from commit `0000000…`). Returns it for tweaking.
    pub fn add_app(&mut self, name: &str) -> &mut AppState {
        let id = self.new_id();
        let slug_id = self.new_id();
        let release_id = self.new_id();
        let long_ago = SystemTime::now() - Duration::from_secs(86_400);
        let app = AppState {
            id,
            name: name.to_string(),
            maintenance: false,
            created_at: long_ago,
            updated_at: long_ago,
            dynos: Vec::new(),
            formation: Vec::new(),
            releases: vec![ReleaseState {
                id: release_id,
                version: 1,
                description: "Initial release".into(),
                status: "succeeded".into(),
                created_at: long_ago,
                slug_id: Some(slug_id.clone()),
                output_id: None,
            }],
            slugs: vec![SlugState {
                id: slug_id,
                commit: Some("0000000000000000000000000000000000000000".into()),
                commit_description: Some("initial".into()),
                process_types: BTreeMap::new(),
                created_at: long_ago,
            }],
            config_vars: BTreeMap::new(),
            attachments: Vec::new(),
            features: BTreeMap::from([("preboot".to_string(), false)]),
            generation: "cedar".into(),
            stack: "heroku-24".into(),
        };
        self.apps.insert(name.to_string(), app);
        self.apps.get_mut(name).expect("just inserted")
    }

    /// Adds a release built from a new slug for `commit`; it becomes current.
    pub fn add_release(&mut self, app: &str, commit: &str, description: &str, age: Duration) -> u64 {
        let slug_id = self.new_id();
        let release_id = self.new_id();
        let a = self.apps.get_mut(app).expect("seed: unknown app");
        let at = SystemTime::now() - age;
        let version = a.releases.last().map(|r| r.version).unwrap_or(0) + 1;
        a.slugs.push(SlugState {
            id: slug_id.clone(),
            commit: Some(commit.to_string()),
            commit_description: Some(description.to_string()),
            process_types: BTreeMap::new(),
            created_at: at,
        });
        a.releases.push(ReleaseState {
            id: release_id,
            version,
            description: description.to_string(),
            status: "succeeded".into(),
            created_at: at,
            slug_id: Some(slug_id),
            output_id: None,
        });
        version
    }

    /// Adds a formation entry and its dynos, all `up`, booted `age` ago.
    pub fn add_formation(&mut self, app: &str, ptype: &str, quantity: u32, command: &str, age: Duration) {
        let id = self.new_id();
        {
            let a = self.apps.get_mut(app).expect("seed: unknown app");
            a.formation.push(FormationState {
                id,
                process_type: ptype.to_string(),
                quantity,
                size: "standard-1X".into(),
                command: command.to_string(),
                updated_at: SystemTime::now() - age,
            });
            if let Some(slug) = a.slugs.last_mut() {
                slug.process_types.insert(ptype.to_string(), command.to_string());
            }
        }
        for i in 1..=quantity {
            let id = self.new_id();
            let name = self.apps[app].dyno_name(ptype, i as u64, &id);
            self.add_dyno(app, ptype, &name, command, age).slot = Some(i as u64);
        }
    }

    /// Adds one `up` dyno outside the formation bookkeeping (release, run, or a formation dyno).
    pub fn add_dyno(&mut self, app: &str, ptype: &str, name: &str, command: &str, age: Duration) -> &mut DynoState {
        let id = self.new_id();
        let a = self.apps.get_mut(app).expect("seed: unknown app");
        let booted = SystemTime::now() - age;
        let version = a.current_version();
        a.dynos.push(DynoState {
            id,
            name: name.to_string(),
            process_type: ptype.to_string(),
            command: command.to_string(),
            size: "standard-1X".into(),
            state: "up".into(),
            created_at: booted,
            updated_at: booted,
            release_version: version,
            gone_at: None,
            up_at: None,
            ignores_stop: false,
            never_up: false,
            attach_url: None,
            env: BTreeMap::new(),
            process: None,
            slot: None,
        });
        a.dynos.last_mut().expect("just pushed")
    }

    /// Looks a dyno up by name for tweaking (`ignores_stop`, `never_up`).
    pub fn dyno_mut(&mut self, app: &str, name: &str) -> &mut DynoState {
        self.apps
            .get_mut(app)
            .and_then(|a| a.dynos.iter_mut().find(|d| d.name == name))
            .unwrap_or_else(|| panic!("seed: no dyno {name} on {app}"))
    }

    /// Makes `app` a Fir app, on the `cnb` stack when `cnb`: the dynos it already has get
    /// pod-style names (`web-…`, `release-…`, `run-…`), as Fir would have named them.
    pub fn make_fir(&mut self, app: &str, cnb: bool) {
        let a = self.apps.get_mut(app).expect("seed: unknown app");
        a.generation = "fir".into();
        if cnb {
            a.stack = "cnb".into();
        }
        let renamed: Vec<String> = a
            .dynos
            .iter()
            .enumerate()
            .map(|(i, d)| a.dyno_name(&d.process_type, d.slot.unwrap_or(1000 + i as u64), &d.id))
            .collect();
        for (d, name) in a.dynos.iter_mut().zip(renamed) {
            d.name = name;
        }
    }

    /// Couples apps into one new pipeline, each at its stage; returns the pipeline's id.
    pub fn add_pipeline(&mut self, stages: &[(&str, &str)]) -> String {
        let pipeline_id = self.new_id();
        for (app, stage) in stages {
            assert!(self.apps.contains_key(*app), "seed: unknown app {app}");
            let id = self.new_id();
            self.pipelines.couplings.push(crate::model::CouplingState {
                id,
                app: app.to_string(),
                pipeline_id: pipeline_id.clone(),
                stage: stage.to_string(),
                created_at: SystemTime::now() - Duration::from_secs(86_400),
            });
        }
        pipeline_id
    }

    /// Sets a config var.
    pub fn set_config_var(&mut self, app: &str, key: &str, value: &str) {
        self.apps.get_mut(app).expect("seed: unknown app").config_vars.insert(key.into(), value.into());
    }

    /// Attaches one database to every app as its `DATABASE` (the standalone simulator's
    /// `--database-url`): each app its own add-on name, as Heroku Postgres gives each one.
    pub fn attach_database_everywhere(&mut self, url: &str) {
        let apps: Vec<String> = self.apps.keys().cloned().collect();
        for (i, app) in apps.iter().enumerate() {
            self.add_postgres(app, "DATABASE", &format!("postgresql-teal-{}", 12345 + i), url);
        }
    }

    /// Attaches a Postgres add-on under `name` and sets `{name}_URL` to `url`.
    pub fn add_postgres(&mut self, app: &str, attachment: &str, addon_name: &str, url: &str) {
        let id = self.new_id();
        let addon_id = self.new_id();
        let plan_id = self.new_id();
        let a = self.apps.get_mut(app).expect("seed: unknown app");
        a.attachments.push(AttachmentState {
            id,
            name: attachment.to_string(),
            addon_id,
            addon_name: addon_name.to_string(),
            plan: (plan_id, "heroku-postgresql:standard-0".to_string()),
        });
        a.config_vars.insert(format!("{attachment}_URL"), url.to_string());
    }
}
