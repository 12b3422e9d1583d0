//! Statements no trigger fires for — `LOCK TABLE`, `CLUSTER`, `VACUUM`, `REINDEX` — seen in the
//! copy's own server log (on the tool's own server every statement of the migration's sessions
//! is logged), their locks written from PostgreSQL's documentation ("Explicit Locking" and each
//! command's page) and resolved against the copy's catalog. The oracle test holds them to what
//! `pg_locks` shows.
//!
//! The log is read as the server writes it with its default prefix (`%m [%p] `): one line a
//! message, continuation lines indented; a statement sent through the extended protocol is
//! logged as `execute <name>: …`.

use pg_locks::lockplan::{LockMode, LockPlan, PlannedLock, PlannedStatement};

use crate::sql_text::{statements, Token};

/// One message a session sent, as the server logged it.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// The session.
    pub pid: i32,
    /// The text, whole.
    pub text: String,
}

/// The statements logged in `log`, in order.
pub fn logged_statements(log: &str) -> Vec<Logged> {
    let mut out: Vec<Logged> = Vec::new();
    let mut open = false;
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix('\t') {
            if open {
                if let Some(last) = out.last_mut() {
                    last.text.push('\n');
                    last.text.push_str(rest);
                }
            }
            continue;
        }
        open = false;
        let Some((pid, message)) = prefixed(line) else { continue };
        let text = message
            .strip_prefix("LOG:  statement: ")
            .or_else(|| message.strip_prefix("LOG:  execute ").and_then(|m| m.split_once(": ").map(|(_, t)| t)));
        if let Some(text) = text {
            out.push(Logged { pid, text: text.to_string() });
            open = true;
        }
    }
    out
}

/// `2026-12-07 05:10:00.123 UTC [1234] LOG:  …` → (1234, `LOG:  …`).
fn prefixed(line: &str) -> Option<(i32, &str)> {
    let open = line.find(" [")?;
    let close = open + line[open..].find("] ")?;
    let pid = line[open + 2..close].parse().ok()?;
    Some((pid, &line[close + 2..]))
}

/// What one of these statements does, as far as its locks go.
#[derive(Debug, Clone, PartialEq)]
enum Utility {
    /// `LOCK [TABLE] [ONLY] name [, …] [IN mode MODE]`.
    Lock { tables: Vec<String>, mode: LockMode, only: bool },
    /// `CLUSTER table [USING index]`, `VACUUM FULL table`: the table rebuilt.
    Rebuild { tag: &'static str, tables: Vec<String> },
    /// `VACUUM table` (not FULL).
    Vacuum { tables: Vec<String> },
    /// `REINDEX INDEX|TABLE [CONCURRENTLY] name`.
    Reindex { index: bool, name: String, concurrently: bool },
}

/// The statement as one of these kinds (None: another kind; `Err`: one of them whose targets
/// cannot be told — `VACUUM` of every table, `REINDEX SCHEMA` — and so is not recorded).
fn utility(tokens: &[Token]) -> Option<Result<Utility, String>> {
    let word = |t: &Token| match t {
        Token::Word(w) => Some(w.to_ascii_uppercase()),
        _ => None,
    };
    let first = word(tokens.first()?)?;
    let words: Vec<String> = tokens.iter().filter_map(word).collect();
    let names = |from: usize| names(&tokens[from.min(tokens.len())..]);
    match first.as_str() {
        "LOCK" => {
            let at = 1 + usize::from(words.get(1).is_some_and(|w| w == "TABLE"));
            let only = tokens.get(at).and_then(word).is_some_and(|w| w == "ONLY");
            let tables = names(at + usize::from(only));
            let mode = lock_mode(&words).unwrap_or(LockMode::AccessExclusiveLock);
            Some(Ok(Utility::Lock { tables, mode, only }))
        }
        "CLUSTER" | "VACUUM" => {
            // Options: `VACUUM (FULL, VERBOSE) t`, `VACUUM FULL VERBOSE t`, `CLUSTER VERBOSE t USING i`.
            let full = first == "CLUSTER" || words.iter().any(|w| w == "FULL");
            let after_options = match tokens.get(1) {
                Some(Token::Punct('(')) => {
                    tokens.iter().position(|t| *t == Token::Punct(')')).map_or(tokens.len(), |p| p + 1)
                }
                _ => {
                    1 + tokens[1..]
                        .iter()
                        .take_while(|t| {
                            word(t).is_some_and(|w| matches!(w.as_str(), "FULL" | "FREEZE" | "VERBOSE" | "ANALYZE"))
                        })
                        .count()
                }
            };
            let tables = names(after_options);
            if tables.is_empty() {
                return Some(Err(format!("{first} of every table")));
            }
            Some(Ok(if full {
                Utility::Rebuild { tag: if first == "CLUSTER" { "CLUSTER" } else { "VACUUM FULL" }, tables }
            } else {
                Utility::Vacuum { tables }
            }))
        }
        "REINDEX" => {
            let mut at = 1;
            if tokens.get(1) == Some(&Token::Punct('(')) {
                at = tokens.iter().position(|t| *t == Token::Punct(')')).map_or(tokens.len(), |p| p + 1);
            }
            let kind = tokens.get(at).and_then(word).unwrap_or_default();
            let concurrently = tokens.get(at + 1).and_then(word).is_some_and(|w| w == "CONCURRENTLY");
            let name = names(at + 1 + usize::from(concurrently)).into_iter().next();
            match (kind.as_str(), name) {
                ("INDEX" | "TABLE", Some(name)) => {
                    Some(Ok(Utility::Reindex { index: kind == "INDEX", name, concurrently }))
                }
                _ => Some(Err(format!("REINDEX {kind}"))),
            }
        }
        _ => None,
    }
}

/// `IN SHARE ROW EXCLUSIVE MODE` → ShareRowExclusiveLock.
fn lock_mode(words: &[String]) -> Option<LockMode> {
    let at = words.iter().position(|w| w == "IN")?;
    let end = words.iter().position(|w| w == "MODE")?;
    let name: String =
        words.get(at + 1..end)?.iter().map(|w| w[..1].to_string() + &w[1..].to_ascii_lowercase()).collect();
    LockMode::parse(&format!("{name}Lock"))
}

/// The relation names from the start of `tokens`, comma-separated, each as `to_regclass` reads
/// it (`"My Table"`, `public.users`); stops at the first word that is not part of a name.
fn names(tokens: &[Token]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut expect_name = true;
    for t in tokens {
        match t {
            Token::Word(w) if expect_name => {
                current.push_str(w);
                expect_name = false;
            }
            Token::Quoted(q) if expect_name => {
                current.push_str(&format!("\"{}\"", q.replace('"', "\"\"")));
                expect_name = false;
            }
            Token::Punct('.') if !expect_name => {
                current.push('.');
                expect_name = true;
            }
            Token::Punct('*') => {}
            Token::Punct(',') if !expect_name => {
                out.push(std::mem::take(&mut current));
                expect_name = true;
            }
            _ => break,
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Adds the statements of `logged` that no trigger recorded, in the order the session sent
/// them: one that comes before any statement a trigger records in its message goes before the
/// statements recorded from that message, any other after them; each in the transaction of the
/// recorded statements of its message (a message with none is its own). Their locks are
/// resolved on `client`'s database. Returns what could not be resolved, for `cannot_vouch`.
pub fn add_unrecorded(plan: &mut LockPlan, client: &mut pg_locks::Client, logged: &[Logged]) -> Vec<String> {
    let mut unresolved = Vec::new();
    let mut recorded: Vec<PlannedStatement> = std::mem::take(&mut plan.statements);
    let mut out: Vec<PlannedStatement> = Vec::new();
    let mut sessions = Sessions::default();
    for message in logged {
        let text = message.text.trim();
        let parts = statements(text);
        sessions.begins(message.pid, &parts);
        let from_message = |s: &PlannedStatement| s.query.trim() == text;
        // This message's recorded statements: the first run of them still to place.
        let run: Vec<PlannedStatement> = match recorded.iter().position(from_message) {
            Some(p) => {
                let end = p + recorded[p..].iter().take_while(|s| from_message(s)).count();
                let run = recorded.drain(p..end).collect();
                out.extend(recorded.drain(..p));
                run
            }
            None => Vec::new(),
        };
        let (transaction, waits) = sessions.transaction(message.pid, run.first().map(|s| s.transaction), &mut out);
        // What a trigger did record from this message (REINDEX fires event triggers from
        // PostgreSQL 17): not added twice.
        let mut by_trigger: Vec<String> = run.iter().map(|s| s.tag.clone()).collect();
        let mut run = Some(run);
        for tokens in &parts {
            if recorded_by_a_trigger(tokens) {
                out.extend(run.take().unwrap_or_default());
            }
            let Some(kind) = utility(tokens) else { continue };
            match kind.and_then(|u| resolve(client, &u)) {
                Ok((tag, ..)) if by_trigger.iter().any(|t| t == tag) => by_trigger.retain(|t| t != tag),
                Ok((tag, locks, rewrites)) => {
                    if waits {
                        sessions.waiting(message.pid, out.len());
                    }
                    out.push(seen_in_the_log(tag, locks, rewrites, text, transaction));
                }
                Err(why) => {
                    unresolved.push(format!("`{}`: {why}; its locks are not recorded", cli_kit::printable(text)))
                }
            }
        }
        out.extend(run.take().unwrap_or_default());
        sessions.ends(message.pid, &parts);
    }
    out.append(&mut recorded);
    for (i, s) in out.iter_mut().enumerate() {
        s.seq = i as i64 + 1;
    }
    plan.statements = out;
    unresolved
}

/// A statement read from the log, with its documented locks.
fn seen_in_the_log(
    tag: &str,
    locks: Vec<PlannedLock>,
    rewrites: Vec<String>,
    text: &str,
    transaction: i64,
) -> PlannedStatement {
    PlannedStatement {
        seq: 0,
        tag: tag.to_string(),
        object: locks.first().map(|l| l.relation.clone()),
        query: text.to_string(),
        transaction,
        locks,
        rewrites,
        waits_for_older_transactions: false,
        rows: None,
        ran_us: None,
        blocks_read: None,
        estimate: None,
    }
}

/// Which transaction each session's messages are in: one opened by a message of its own
/// (`BEGIN` sent alone, as frameworks do) takes the id of the first statement recorded in it,
/// given to what the log showed before that too; a message outside one is its own.
#[derive(Default)]
struct Sessions {
    open: std::collections::BTreeMap<i32, OpenTransaction>,
    own: i64,
}

impl Sessions {
    fn begins(&mut self, pid: i32, parts: &[Vec<Token>]) {
        if parts.first().is_some_and(|t| matches!(first_word(t).as_str(), "BEGIN" | "START")) {
            self.open.insert(pid, OpenTransaction::default());
        }
    }

    fn ends(&mut self, pid: i32, parts: &[Vec<Token>]) {
        if parts.last().is_some_and(|t| matches!(first_word(t).as_str(), "COMMIT" | "END" | "ROLLBACK" | "ABORT")) {
            self.open.remove(&pid);
        }
    }

    /// The transaction of a message of `pid` whose recorded statements are in `recorded`
    /// (None: it had none), and whether what it adds waits to learn it.
    fn transaction(&mut self, pid: i32, recorded: Option<i64>, out: &mut [PlannedStatement]) -> (i64, bool) {
        match (recorded, self.open.get_mut(&pid)) {
            (Some(t), Some(tx)) => {
                for i in tx.waiting.drain(..) {
                    out[i].transaction = t;
                }
                tx.transaction = Some(t);
                (t, false)
            }
            (Some(t), None) => (t, false),
            (None, Some(OpenTransaction { transaction: Some(t), .. })) => (*t, false),
            (None, Some(tx)) => {
                // Not known yet: one id of its own meanwhile, for every statement of it.
                let own = *tx.own.get_or_insert_with(|| {
                    self.own += 1;
                    -self.own
                });
                (own, true)
            }
            (None, None) => {
                self.own += 1;
                (-self.own, false)
            }
        }
    }

    fn waiting(&mut self, pid: i32, at: usize) {
        if let Some(tx) = self.open.get_mut(&pid) {
            tx.waiting.push(at);
        }
    }
}

/// The first word of a statement, upper-cased.
fn first_word(tokens: &[Token]) -> String {
    match tokens.first() {
        Some(Token::Word(w)) => w.to_ascii_uppercase(),
        _ => String::new(),
    }
}

/// A transaction a session opened with a message of its own.
#[derive(Default)]
struct OpenTransaction {
    /// Its id, once a statement in it was recorded.
    transaction: Option<i64>,
    /// Statements added before that, to give it to (their places in the plan).
    waiting: Vec<usize>,
    /// The id its statements carry until then.
    own: Option<i64>,
}

/// Whether an event trigger or a table trigger records this statement (DDL, a data change):
/// the statements of a message that come before the first such are placed before what was
/// recorded from it.
fn recorded_by_a_trigger(tokens: &[Token]) -> bool {
    matches!(
        tokens.first(),
        Some(Token::Word(w)) if matches!(
            w.to_ascii_uppercase().as_str(),
            "ALTER" | "CREATE" | "DROP" | "COMMENT" | "GRANT" | "REVOKE" | "INSERT" | "UPDATE" | "DELETE"
                | "TRUNCATE" | "REFRESH" | "SECURITY" | "IMPORT" | "MERGE" | "COPY" | "WITH" | "DO" | "CALL"
        )
    )
}

/// The documented locks of `u`, on the relations of `client`'s database.
fn resolve(
    client: &mut pg_locks::Client,
    u: &Utility,
) -> Result<(&'static str, Vec<PlannedLock>, Vec<String>), String> {
    let mut locks: Vec<PlannedLock> = Vec::new();
    let mut add =
        |relation: String, kind: String, mode: LockMode| match locks.iter_mut().find(|l| l.relation == relation) {
            Some(l) => l.mode = l.mode.max(mode),
            None => locks.push(PlannedLock { relation, kind, mode, new: true, created: false }),
        };
    Ok(match u {
        Utility::Lock { tables, mode, only } => {
            for t in tables {
                for (relation, kind) in table_and(client, t, if *only { Family::Itself } else { Family::Descendants })?
                {
                    add(relation, kind, *mode);
                }
            }
            ("LOCK TABLE", locks, Vec::new())
        }
        Utility::Rebuild { tag, tables } => {
            let mut rewrites = Vec::new();
            for t in tables {
                let family = table_and(client, t, Family::Indexes)?;
                rewrites.push(family[0].0.clone());
                for (relation, kind) in family {
                    add(relation, kind, LockMode::AccessExclusiveLock);
                }
            }
            (*tag, locks, rewrites)
        }
        Utility::Vacuum { tables } => {
            for t in tables {
                let (relation, kind) = table_and(client, t, Family::Itself)?.remove(0);
                add(relation, kind, LockMode::ShareUpdateExclusiveLock);
            }
            ("VACUUM", locks, Vec::new())
        }
        Utility::Reindex { index, name, concurrently } => {
            let (table_mode, index_mode) = if *concurrently {
                (LockMode::ShareUpdateExclusiveLock, LockMode::ShareUpdateExclusiveLock)
            } else {
                (LockMode::ShareLock, LockMode::AccessExclusiveLock)
            };
            let family =
                if *index { index_and_table(client, name)? } else { table_and(client, name, Family::Indexes)? };
            for (relation, kind) in family {
                let mode = if kind == "index" { index_mode } else { table_mode };
                add(relation, kind, mode);
            }
            ("REINDEX", locks, Vec::new())
        }
    })
}

/// Which relations beside a table a statement takes.
#[derive(Clone, Copy)]
enum Family {
    Itself,
    Indexes,
    Descendants,
}

/// The table `name` names (first), and its indexes or its descendants (inheritance children
/// and partitions, at every level), schema-qualified, with their kinds.
fn table_and(client: &mut pg_locks::Client, name: &str, family: Family) -> Result<Vec<(String, String)>, String> {
    let sql = match family {
        Family::Itself => "SELECT n.nspname || '.' || c.relname, c.relkind::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
        Family::Indexes => "SELECT n.nspname || '.' || c.relname, c.relkind::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = to_regclass($1) OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = to_regclass($1)) \
             ORDER BY c.oid <> to_regclass($1), 1",
        Family::Descendants => "WITH RECURSIVE tree(oid) AS (SELECT to_regclass($1)::oid \
               UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid) \
             SELECT n.nspname || '.' || c.relname, c.relkind::text FROM tree JOIN pg_class c ON c.oid = tree.oid \
             JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY c.oid <> to_regclass($1), 1",
    };
    let rows = client.query(sql, &[&name]).map_err(|e| format!("reading {name}: {e}"))?;
    if rows.is_empty() {
        return Err(format!("{name} is not a relation of the copy after the migration"));
    }
    Ok(rows.iter().map(|r| (r.get(0), kind_word(r.get::<_, String>(1).as_str()))).collect())
}

/// The index `name` and the table it is on.
fn index_and_table(client: &mut pg_locks::Client, name: &str) -> Result<Vec<(String, String)>, String> {
    let rows = client
        .query(
            "SELECT n.nspname || '.' || c.relname, c.relkind::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = to_regclass($1) OR c.oid = (SELECT indrelid FROM pg_index WHERE indexrelid = to_regclass($1))",
            &[&name],
        )
        .map_err(|e| format!("reading {name}: {e}"))?;
    if rows.is_empty() {
        return Err(format!("{name} is not an index of the copy after the migration"));
    }
    Ok(rows.iter().map(|r| (r.get(0), kind_word(r.get::<_, String>(1).as_str()))).collect())
}

/// pg_class.relkind, said as the recorder says it.
fn kind_word(relkind: &str) -> String {
    match relkind {
        "r" => "table",
        "i" => "index",
        "p" => "partitioned table",
        "I" => "partitioned index",
        "m" => "materialized view",
        _ => "relation",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_log_gives_each_sessions_statements_in_order() {
        let log = "2026-12-07 05:10:00.123 UTC [41] LOG:  statement: BEGIN\n\
                   2026-12-07 05:10:00.124 UTC [41] LOG:  statement: LOCK TABLE users\n\
                   \tIN SHARE MODE\n\
                   2026-12-07 05:10:00.125 UTC [41] LOG:  execute <unnamed>: VACUUM FULL \"Events\"\n\
                   2026-12-07 05:10:00.126 UTC [41] DETAIL:  parameters: $1 = 'x'\n\
                   2026-12-07 05:10:00.127 UTC [9] LOG:  checkpoint starting: time\n";
        let got = logged_statements(log);
        assert_eq!(
            got.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            vec!["BEGIN", "LOCK TABLE users\nIN SHARE MODE", "VACUUM FULL \"Events\""]
        );
        assert!(got.iter().all(|l| l.pid == 41));
    }

    #[test]
    fn each_kind_is_read_with_its_targets_and_mode() {
        let one = |sql: &str| utility(&statements(sql)[0]).unwrap();
        assert_eq!(
            one("LOCK TABLE ONLY public.users, \"Order Items\" IN SHARE ROW EXCLUSIVE MODE NOWAIT").unwrap(),
            Utility::Lock {
                tables: vec!["public.users".into(), "\"Order Items\"".into()],
                mode: LockMode::ShareRowExclusiveLock,
                only: true
            }
        );
        assert_eq!(
            one("lock users").unwrap(),
            Utility::Lock { tables: vec!["users".into()], mode: LockMode::AccessExclusiveLock, only: false }
        );
        assert_eq!(
            one("VACUUM (FULL, VERBOSE) events").unwrap(),
            Utility::Rebuild { tag: "VACUUM FULL", tables: vec!["events".into()] }
        );
        assert_eq!(
            one("VACUUM FULL FREEZE events, users").unwrap(),
            Utility::Rebuild { tag: "VACUUM FULL", tables: vec!["events".into(), "users".into()] }
        );
        assert_eq!(one("VACUUM ANALYZE events").unwrap(), Utility::Vacuum { tables: vec!["events".into()] });
        assert_eq!(
            one("CLUSTER VERBOSE events USING events_pkey").unwrap(),
            Utility::Rebuild { tag: "CLUSTER", tables: vec!["events".into()] }
        );
        assert_eq!(
            one("REINDEX (VERBOSE) INDEX CONCURRENTLY users_pkey").unwrap(),
            Utility::Reindex { index: true, name: "users_pkey".into(), concurrently: true }
        );
        assert!(one("VACUUM").is_err(), "every table: targets unknown");
        assert!(one("REINDEX SCHEMA public").is_err());
        assert!(utility(&statements("UPDATE users SET a = 1")[0]).is_none());
    }

    #[test]
    fn statements_split_outside_strings_comments_and_dollar_quotes() {
        let parts = statements("SELECT ';' ; -- LOCK x;\nDO $$ BEGIN LOCK y; END $$; /* ; */ LOCK TABLE \"a;b\"");
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(
            utility(&parts[2]).unwrap().unwrap(),
            Utility::Lock { tables: vec!["\"a;b\"".into()], mode: LockMode::AccessExclusiveLock, only: false }
        );
        assert!(utility(&parts[1]).is_none(), "a LOCK inside a DO body is not a top-level statement");
    }
}
