//! Where the migration runs for the plan: the tool's own copy of the app's schema in a local
//! server of the same major version, or a database the user names (`--scratch-url`), which is
//! never the app's own (told by the servers' identities, not by how the URLs are spelled).

use cli_kit::{fail, refused, Exit, ResolvedDatabase};
use pg_locks::{Connection, Label};
pub use schema_copy::fetch::Fetching;

use crate::{NotCopied, SchemaCopy};

/// Where the migration runs for the plan: the user's database, or the tool's local copy
/// (stopped and removed when dropped).
pub struct Scratch {
    /// The scratch database.
    pub db: ResolvedDatabase,
    /// The tool's local server, when it made the copy.
    pub server: Option<schema_copy::ScratchServer>,
    /// What the tool's copy holds (None: a database the user named).
    pub copy: Option<SchemaCopy>,
    /// The schema read from production (a second copy of it is the sample's).
    pub dump: Option<schema_copy::SchemaDump>,
}

impl Scratch {
    /// A database the user named: no server or copy of the tool's.
    pub fn named(db: ResolvedDatabase) -> Scratch {
        Scratch { db, server: None, copy: None, dump: None }
    }

    /// How it is named to people.
    pub fn name(&self) -> String {
        scratch_label(&self.db, self.copy.as_ref())
    }
}

/// `a copy of the schema in a local PostgreSQL 15 server`, or the named database.
pub fn scratch_label(db: &ResolvedDatabase, copy: Option<&SchemaCopy>) -> String {
    match copy {
        Some(c) => format!("a copy of the schema in a local PostgreSQL {} server", c.server_major),
        None => scratch_name(db),
    }
}

/// Reads the app's schema (one statement per part: no lock outlives its statement), starts a
/// local server of the same major version and recreates the schema there.
pub fn copy_schema(
    db: &ResolvedDatabase,
    live: &mut pg_locks::Conn,
    tool: &str,
    on_fetch: &mut dyn FnMut(&schema_copy::fetch::Fetching),
) -> anyhow::Result<Scratch> {
    let cannot = |what: &str, e: &dyn std::fmt::Display| {
        fail(
            Exit::Failed,
            format!("cannot make the scratch copy: {what}: {e}; or give one with --scratch-url URL; nothing was run"),
        )
    };
    refuse_while_a_migration_runs(db, live)?;
    let dump = schema_copy::read(live.client())
        .map_err(|e| cannot(&format!("reading the schema of {}", db.describe()), &e))?;
    let bindir = local_server(dump.major(), on_fetch).map_err(|e| cannot("finding a local server", &e))?;
    let server = schema_copy::ScratchServer::start(&bindir).map_err(|e| cannot("starting a local server", &e))?;
    cli_kit::redact::register_secret(server.password());
    let scratch = scratch_database(&server.url())?;
    let mut c = pg_locks::connect(&scratch.connect_options(&format!("{tool}-plan")))
        .map_err(|e| cannot("connecting to the local server", &e))?;
    let restored = dump.restore(c.client()).map_err(|e| cannot("recreating the schema", &e))?;
    let copy = SchemaCopy {
        server_major: dump.major(),
        objects: restored.applied,
        history_rows: restored.history_rows,
        read_ms: dump.took.as_millis() as u64,
        lock_hold_ms: dump.lock_hold.as_millis() as u64,
        not_copied: restored.failed.into_iter().map(|(what, error)| NotCopied { what, error }).collect(),
    };
    Ok(Scratch { db: scratch, server: Some(server), copy: Some(copy), dump: Some(dump) })
}

/// A server of production's major version: this machine's (`PG_BINDIR` first), or — when it
/// has none and `PG_BINDIR` is not set — the pinned build fetched once into the user's cache.
fn local_server(
    major: u32,
    on_fetch: &mut dyn FnMut(&schema_copy::fetch::Fetching),
) -> Result<std::path::PathBuf, String> {
    match schema_copy::find_bindir(major) {
        Ok(bindir) => Ok(bindir),
        // What the user pointed at is what they meant: no fetch behind their back.
        Err(why) if std::env::var_os("PG_BINDIR").is_some() => Err(why),
        Err(why) => schema_copy::fetch::pinned_server(major, on_fetch).map_err(|fetch| format!("{fetch}; and {why}")),
    }
}

/// A migration running now changes the schema the copy would read, and holds the tables it
/// would need to deparse: the plan waits for it to end rather than queue beside it.
fn refuse_while_a_migration_runs(db: &ResolvedDatabase, live: &mut pg_locks::Conn) -> anyhow::Result<()> {
    let snap = pg_locks::Snapshot::take(live)?;
    let running = snap
        .sessions
        .iter()
        .find(|s| !s.has(Label::Own) && s.xact_age_secs.is_some() && (s.has(Label::Migration) || s.has(Label::Ddl)));
    match running {
        None => Ok(()),
        Some(s) => Err(refused(format!(
            "a migration is running on {} (pid {}, {}: {}): the copy would read a schema it is changing; plan once it has ended, or give a copy with --scratch-url; nothing was run",
            db.describe(),
            s.pid,
            if s.application_name.is_empty() { "no application_name" } else { &s.application_name },
            s.query_line(60)
        ))),
    }
}

/// `database acme_dev on 127.0.0.1`.
fn scratch_name(scratch: &ResolvedDatabase) -> String {
    format!("database {} on {}", scratch.dbname, scratch.host)
}

/// The database `--scratch-url` names (its password registered for redaction).
pub fn scratch_database(url: &str) -> anyhow::Result<ResolvedDatabase> {
    cli_kit::redact::register_url_password(url);
    let parsed = pg_locks::parse_url(url, pg_locks::SslMode::Prefer)?;
    Ok(ResolvedDatabase {
        url: url.to_string(),
        source: cli_kit::DatabaseSource::Flag,
        dbname: parsed.dbname,
        host: parsed.host,
    })
}

/// The migration runs on the scratch database: it must not be the app's. Decided by what the
/// two servers say they are (cluster, database, when the server started), never by how the URLs
/// are spelled: `localhost` for `127.0.0.1`, another user, a pooler or extra parameters all
/// reach the same database.
pub fn refuse_production_as_scratch(
    db: &ResolvedDatabase,
    production: &pg_locks::ServerDatabase,
    scratch: &ResolvedDatabase,
    tool: &str,
) -> anyhow::Result<()> {
    let mut c = pg_locks::connect(&scratch.connect_options(&format!("{tool}-plan")))
        .map_err(|e| fail(Exit::Failed, format!("cannot reach the scratch database: {e}; nothing was run")))?;
    let theirs = pg_locks::database_identity(c.client())?;
    if theirs.same_as(production) {
        return Err(refused(format!(
            "--scratch-url reaches {} itself (the same server and database: {} on cluster {}), the database the plan is checked against: the migration would run there. Give a copy with the schema (e.g. your development database); nothing was run",
            db.describe(),
            cli_kit::printable(&theirs.identity.database),
            theirs.identity.system_identifier
        )));
    }
    Ok(())
}
