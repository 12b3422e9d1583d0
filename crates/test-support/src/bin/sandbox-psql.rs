//! `sandbox-psql`: the few psql invocations the sandbox and the demo make, for a machine with
//! no PostgreSQL client installed (the demo must run on a fresh machine with Rust, Node and
//! git). Used only when no real psql is found, or when `PG_IGNORE_SYSTEM=1` hides it.
//!
//! It keeps the parts of libpq's and psql's behaviour the scenarios depend on: `PGOPTIONS`
//! becomes the `options` startup parameter (so `lock_timeout` is in force, as for a migration
//! run by a framework), `PGAPPNAME` the application_name, `PGPASSWORD` the password; an error
//! prints `ERROR:  message` on stderr and exits 1, a connection failure exits 2; `COPY … TO
//! stdout` streams to stdout with blocking writes, so a reader that stops reading leaves the
//! server waiting in ClientWrite, as a backup to slow storage does.
//!
//! Accepted: `sandbox-psql [URL] [-h HOST] [-p PORT] [-U USER] [-d DB] -c SQL`, and psql's
//! `-X -q -A -t -v NAME=VALUE`, which change nothing here (rows are printed unaligned,
//! fields joined with `|`, as with `-A -t`).

use std::io::Write;
use std::process::ExitCode;
use std::str::FromStr;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn run(args: Vec<String>) -> Result<(), Failure> {
    let usage = |m: &str| (2, format!("sandbox-psql: {m}"));
    let mut config = postgres::Config::new();
    let mut sql = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| usage(&format!("{flag} needs a value")));
        match a.as_str() {
            "-c" => sql = Some(value("-c")?),
            "-h" => {
                config.host(&value("-h")?);
            }
            "-p" => {
                let port = value("-p")?;
                config.port(port.parse().map_err(|_| usage(&format!("bad port {port}")))?);
            }
            "-U" => {
                config.user(&value("-U")?);
            }
            "-d" => {
                config.dbname(&value("-d")?);
            }
            "-v" => {
                value("-v")?;
            }
            "-X" | "-q" | "-A" | "-t" => {}
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                config = postgres::Config::from_str(url).map_err(|e| usage(&format!("bad URL: {e}")))?;
            }
            other => return Err(usage(&format!("unsupported argument {other}"))),
        }
    }
    let sql = sql.ok_or_else(|| usage("give the SQL with -c"))?;
    if let Some(password) = std::env::var_os("PGPASSWORD") {
        config.password(password.to_string_lossy().as_bytes());
    }
    if let Some(name) = std::env::var_os("PGAPPNAME") {
        config.application_name(&name.to_string_lossy());
    }
    if let Some(options) = std::env::var_os("PGOPTIONS") {
        config.options(&options.to_string_lossy());
    }
    let mut client = config
        .connect(postgres::NoTls)
        .map_err(|e| (2, format!("sandbox-psql: error: connection to server failed: {}", message(&e))))?;
    let stdout = std::io::stdout();
    let trimmed = sql.trim_start().to_ascii_uppercase();
    if trimmed.starts_with("COPY") && trimmed.contains("TO STDOUT") {
        let mut reader = client.copy_out(sql.as_str()).map_err(|e| (1, format!("ERROR:  {}", message(&e))))?;
        std::io::copy(&mut reader, &mut stdout.lock()).map_err(|e| (1, format!("sandbox-psql: {e}")))?;
        return Ok(());
    }
    let messages = client.simple_query(&sql).map_err(|e| (1, format!("ERROR:  {}", message(&e))))?;
    let mut out = stdout.lock();
    for m in messages {
        if let postgres::SimpleQueryMessage::Row(row) = m {
            let fields: Vec<&str> = (0..row.len()).map(|i| row.get(i).unwrap_or("")).collect();
            let _ = writeln!(out, "{}", fields.join("|"));
        }
    }
    Ok(())
}

/// The server's message when there is one (what psql prints), else the driver's.
fn message(e: &postgres::Error) -> String {
    e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string())
}
