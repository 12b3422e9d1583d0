//! `migrate-restart check`: which dynos booted before the schema last changed.

mod render;

use std::time::SystemTime;

use crate::report::{CheckReport, StaleDyno};
use cli_kit::{api_client, format_duration, usage, Exit, Output};
use heroku_api::timestamp::{format_rfc3339, parse_rfc3339};

use crate::cli::CheckArgs;
use crate::record;

/// Where the schema-change time came from.
fn schema_changed(
    args: &CheckArgs,
    app: &str,
    client: &heroku_api::Client,
    out: &Output,
    vars: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<(SystemTime, String)> {
    if let Some(since) = &args.since {
        return Ok((since_flag(since)?, "--since".into()));
    }
    let db = cli_kit::database::from_flag_or_app(&args.db, app, vars)?;
    if let Some(db) = db {
        match framework_migration_time(&db) {
            Ok(Some((t, table))) => return Ok((t, format!("the last migration recorded in {table}"))),
            Ok(None) => {}
            Err(e) => out.show(&render::Checking::MigrationTimesUnread { error: e.to_string() }),
        }
    }
    if let Some(t) = record::last_migration(app) {
        return Ok((t, "the last migrate-restart run on this machine".into()));
    }
    let release =
        client.latest_release(app)?.ok_or_else(|| cli_kit::fail(Exit::Failed, format!("{app} has no releases")))?;
    let t = parse_rfc3339(&release.created_at)
        .ok_or_else(|| cli_kit::fail(Exit::Failed, "the current release has no readable time"))?;
    Ok((t, format!("the current release v{} (no migration time recorded)", release.version)))
}

/// `--since`: a time (not in the future) or an age, checked before any request.
fn since_flag(since: &str) -> anyhow::Result<SystemTime> {
    if let Some(t) = parse_rfc3339(since) {
        // A clock a minute off is a clock; a schema change in the future is a typo, and
        // would make every dyno look stale.
        if t > SystemTime::now() + std::time::Duration::from_secs(60) {
            return Err(usage(format!(
                "--since {}: that is in the future; give when the schema changed, e.g. 2026-11-22T06:00:00Z or 10m",
                cli_kit::printable(since)
            )));
        }
        return Ok(t);
    }
    let shown = cli_kit::printable(since);
    if since.trim_start().starts_with('-') {
        return Err(usage(format!(
            "--since `{shown}` is negative: give how long ago without a sign (e.g. 5m), or a time like 2026-11-22T06:00:00Z"
        )));
    }
    let ago = cli_kit::parse_duration(since)
        .map_err(|_| usage(format!("--since `{shown}`: use a time like 2026-11-22T06:00:00Z or an age like 10m")))?;
    Ok(SystemTime::now() - ago)
}

/// Django records when each migration was applied; Rails' schema_migrations does not.
fn framework_migration_time(db: &cli_kit::ResolvedDatabase) -> anyhow::Result<Option<(SystemTime, &'static str)>> {
    let mut c = pg_locks::connect(&db.connect_options("migrate-restart"))?;
    let row = c.query_one("SELECT to_char(max(applied) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM django_migrations WHERE to_regclass('django_migrations') IS NOT NULL", &[]);
    match row {
        Ok(r) => Ok(r.get::<_, Option<String>>(0).and_then(|t| parse_rfc3339(&t)).map(|t| (t, "django_migrations"))),
        // No django_migrations table: the query fails on the missing relation.
        Err(_) => Ok(None),
    }
}

/// Runs the check.
pub fn run(args: CheckArgs) -> anyhow::Result<Exit> {
    let out = Output::new(&args.output);
    let app = args.app.resolve()?;
    if let Some(since) = &args.since {
        since_flag(since)?;
    }
    let client = api_client("migrate-restart", env!("CARGO_PKG_VERSION"), &out)?;
    let (dynos, vars) = std::thread::scope(|s| {
        let vars = s.spawn(|| client.config_vars(&app));
        (client.dynos(&app), cli_kit::join(vars))
    });
    let dynos = dynos?;
    let vars = if args.db.database_url.is_some() || args.since.is_some() { Default::default() } else { vars? };
    let (changed, source) = schema_changed(&args, &app, &client, &out, &vars)?;
    // One-off and release dynos end on their own; the formation's dynos are the ones that stay stale.
    let mut stale: Vec<&heroku_api::Dyno> =
        dynos.iter().filter(|d| !d.is_one_off()).filter(|d| d.created_at_time().is_some_and(|b| b < changed)).collect();
    stale.sort_by_key(|d| d.name.clone());
    let ago = SystemTime::now().duration_since(changed).map(format_duration).unwrap_or_else(|_| "just now".into());
    out.show(&render::Checking::SchemaChanged { at: format_rfc3339(changed), ago, source: &source });
    if stale.is_empty() {
        out.show(&render::Checking::NoStaleDynos { app: &app });
    } else {
        let dynos = stale
            .iter()
            .map(|d| {
                let age = d.age(SystemTime::now()).map(format_duration).unwrap_or_default();
                (d.name.as_str(), d.state.as_str(), age)
            })
            .collect();
        out.show(&render::Checking::StaleDynos { app: &app, dynos });
    }
    out.report(&CheckReport {
        schema_version: cli_kit::SCHEMA_VERSION,
        app: app.clone(),
        schema_changed_at: format_rfc3339(changed),
        source,
        stale: stale
            .iter()
            .map(|d| StaleDyno {
                name: d.name.clone(),
                id: d.id.clone(),
                created_at: d.created_at.clone(),
                state: d.state.clone(),
            })
            .collect(),
        dynos_checked: dynos.iter().filter(|d| !d.is_one_off()).count(),
    });
    Ok(if stale.is_empty() { Exit::Success } else { Exit::NotVerified })
}
