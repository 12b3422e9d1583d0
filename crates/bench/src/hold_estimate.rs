//! `migrate-restart plan`'s hold estimates held to the time the same statements take on the
//! same database: a rewrite, an index build, a validating scan and a backfill on a 1,000,000-row
//! table, each planned (sampled from production's statistics, scaled) and then run on
//! "production" and timed there. The ratio measured/predicted; the plan's range is ×0.5–×2.

use std::path::Path;
use std::time::Instant;

use heroku_sim::Sim;
use test_support::generation::Generation;
use test_support::PgCluster;

const STATEMENTS: [(&str, &str); 4] = [
    ("rewrite (`ALTER COLUMN … TYPE bigint`)", "ALTER TABLE events ALTER COLUMN account_id TYPE bigint"),
    ("index build (`CREATE INDEX`)", "CREATE INDEX events_by_account ON events (account_id)"),
    (
        "validating scan (`ADD CONSTRAINT … CHECK`)",
        "ALTER TABLE events ADD CONSTRAINT payload_hex CHECK (payload ~ '^[0-9a-fA-F]+$')",
    ),
    ("backfill (`UPDATE` of 20 % of the rows)", "UPDATE events SET payload = upper(payload) WHERE id <= 200000"),
];

/// The section for docs/BENCHMARKS.md.
pub fn run(bin_dir: &Path, _runs: usize) -> anyhow::Result<String> {
    let pg = PgCluster::start()?;
    test_support::acme::busy_events(&pg, 1_000_000);
    let sim = Sim::start(test_support::acme::acme_world(&pg, Generation::Cedar))?;
    let home = tempfile::tempdir()?;
    let migration =
        STATEMENTS.iter().map(|(_, sql)| test_support::acme::psql_migration(&pg, sql)).collect::<Vec<_>>().join(" && ");
    let started = Instant::now();
    let out = crate::measure::tool(bin_dir, "migrate-restart", &sim, home.path())
        .args(["plan", "-a", "acme", "--lock-wait", "200ms", "--json", "--", "sh", "-c", &migration])
        .output()?;
    let plan_took = started.elapsed();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut rows = String::new();
    let mut c = postgres::Client::connect(&pg.superuser_url("postgres"), postgres::NoTls)?;
    for (i, (kind, sql)) in STATEMENTS.iter().enumerate() {
        let e = &doc["statements"][i]["estimate"];
        let predicted = e["hold_ms"].as_u64().unwrap_or(0);
        let t = Instant::now();
        c.batch_execute(sql)?;
        let measured = t.elapsed().as_millis() as u64;
        rows.push_str(&format!(
            "| {kind} | {predicted} ms ({}–{}) | {measured} ms | {:.2} |\n",
            e["low_ms"],
            e["high_ms"],
            measured as f64 / predicted.max(1) as f64
        ));
    }
    Ok(format!(
        "\n## migrate-restart plan: predicted hold times beside the time on the same database\n\n\
         `events`, 1,000,000 rows (102 MB), analyzed; the plan fills a 100,000-row sample shaped by its \
         statistics on a local server, times the migration there and scales; then each statement runs on the \
         database itself and is timed. Goal: every measured time inside the predicted range (×0.5–×2). The \
         whole `plan` took {:.1} s.\n\n\
         | statement | predicted (range) | measured | measured / predicted |\n|---|---|---|---|\n{rows}",
        plan_took.as_secs_f64()
    ))
}
