//! The contract step waits for the old code: before the first statement of a migration whose
//! plan names queries it breaks, each is looked for live on the database — its calls growing in
//! `pg_stat_statements` over a short window, or a session running it now — and a query still
//! arriving refuses the run. Once that traffic has stopped (the release that sent it is gone),
//! the same check passes and the contract step runs.
//!
//! A check that cannot run (no `pg_stat_statements`, or texts this credential may not read) is
//! not read as "nothing arrives": it refuses too, and says how to go on.

use std::time::{Duration, Instant};

use serde::Deserialize;

/// One query the plan says the migration breaks (the plan's `breaks[]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PlannedBreak {
    /// Production's normalized text (`pg_stat_statements.query`).
    pub query: String,
    /// The server's error on the migrated copy.
    #[serde(default)]
    pub error: String,
}

/// A broken query the running release still sends.
#[derive(Debug, Clone, PartialEq)]
pub struct StillArriving {
    /// Its text, as `pg_stat_statements` has it.
    pub query: String,
    /// Its calls a minute over the window.
    pub per_minute: f64,
    /// Sessions running it at the end of the window (PostgreSQL 14+, which names the query of
    /// a session; 0 before).
    pub running_now: usize,
}

/// How long calls are watched for growth.
pub const WINDOW: Duration = Duration::from_secs(2);

/// The planned breaks still arriving, watched for `window`; an error when they cannot be
/// watched (no `pg_stat_statements`, texts hidden from this credential).
pub fn still_arriving(
    client: &mut pg_locks::Client,
    breaks: &[PlannedBreak],
    window: Duration,
) -> anyhow::Result<Vec<StillArriving>> {
    let texts: Vec<String> = breaks.iter().map(|b| b.query.clone()).collect();
    let calls = |c: &mut pg_locks::Client| -> anyhow::Result<Vec<(String, i64)>> {
        let rows = c
            .query(
                "SELECT s.query, sum(s.calls)::int8 FROM pg_stat_statements s \
                 WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                   AND s.query = ANY ($1) GROUP BY s.query",
                &[&texts],
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot read pg_stat_statements ({}): whether the running release still sends the queries this migration breaks cannot be told",
                    e.as_db_error().map(|d| d.message()).unwrap_or("error")
                )
            })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    };
    let started = Instant::now();
    let before = calls(client)?;
    let hidden: i64 = client
        .query_one("SELECT count(*) FROM pg_stat_statements WHERE query = '<insufficient privilege>'", &[])?
        .get(0);
    if hidden > 0 {
        anyhow::bail!(
            "this credential cannot read other roles' statements in pg_stat_statements: whether the running release still sends the queries this migration breaks cannot be told"
        );
    }
    std::thread::sleep(window);
    let after = calls(client)?;
    let over = started.elapsed().as_secs_f64().max(0.001);
    let running = running_now(client, &texts)?;
    Ok(after
        .into_iter()
        .filter_map(|(query, n)| {
            let was = before.iter().find(|(q, _)| *q == query).map(|(_, c)| *c).unwrap_or(0);
            let now = running.iter().filter(|q| **q == query).count();
            (n > was || now > 0).then(|| StillArriving {
                per_minute: (n - was).max(0) as f64 * 60.0 / over,
                running_now: now,
                query,
            })
        })
        .collect())
}

/// The planned texts that sessions other than this one are running now (their `query_id`, from
/// PostgreSQL 14, matched to `pg_stat_statements.queryid`).
fn running_now(client: &mut pg_locks::Client, texts: &[String]) -> anyhow::Result<Vec<String>> {
    let version: i32 = client.query_one("SELECT current_setting('server_version_num')::int", &[])?.get(0);
    if version < 140_000 {
        return Ok(Vec::new());
    }
    let rows = client.query(
        "SELECT s.query FROM pg_stat_activity a JOIN pg_stat_statements s ON s.queryid = a.query_id \
         WHERE a.state = 'active' AND a.pid <> pg_backend_pid() AND s.query = ANY ($1)",
        &[&texts],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
