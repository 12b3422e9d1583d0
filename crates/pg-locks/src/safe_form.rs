//! The form of a statement that does not hold its lock for as long as production's data takes:
//! what a guard says when it cut a statement for holding a lock too long, and what a plan
//! proposes beside a long hold. Each form here is one PostgreSQL documents as taking a weaker
//! lock or none for the long part (the "Notes" of `ALTER TABLE`, `CREATE INDEX`, `REINDEX`,
//! `REFRESH MATERIALIZED VIEW`).
//!
//! The statement is recognised by its words, lower-cased with its whitespace folded: this runs
//! where a cut has just happened and the statement text is all there is. Words inside string
//! literals can mislead it; the answer is advice, never a decision.

/// The safe form for `query`, when one is known.
pub fn safe_form(query: &str) -> Option<&'static str> {
    let q = query.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase();
    let has = |w: &str| q.contains(w);
    let starts = |w: &str| q.starts_with(w);
    if starts("create index") || starts("create unique index") {
        return (!has(" concurrently ")).then_some(
            "CREATE INDEX CONCURRENTLY, in a migration of its own outside a transaction: it takes \
             ShareUpdateExclusiveLock, which reads and writes pass",
        );
    }
    if starts("reindex") {
        return (!has(" concurrently ")).then_some("REINDEX … CONCURRENTLY (PostgreSQL 12+), outside a transaction");
    }
    if starts("refresh materialized view") {
        return (!has(" concurrently ")).then_some(
            "REFRESH MATERIALIZED VIEW CONCURRENTLY (it needs a unique index on the view): reads go on meanwhile",
        );
    }
    if starts("vacuum full") || starts("cluster") {
        return Some(
            "pg_repack (an extension Heroku Postgres offers), which rebuilds the table without holding its lock",
        );
    }
    if starts("update") || starts("delete") {
        return Some("the same change in batches of a few thousand rows, each in its own transaction");
    }
    if !starts("alter table") {
        return None;
    }
    if has(" set not null") {
        return Some(
            "ADD CONSTRAINT … CHECK (column IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT, then SET NOT NULL \
             (PostgreSQL 12+ trusts the valid CHECK and skips the scan), then drop the CHECK",
        );
    }
    if has(" add constraint ") && (has(" unique") || has(" primary key")) && !has(" using index") {
        return Some("CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … UNIQUE USING INDEX");
    }
    if (has(" check ") || has(" check(") || has(" foreign key") || has(" references ")) && !has(" not valid") {
        return Some(
            "ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT in its own transaction: the validating scan \
             takes ShareUpdateExclusiveLock, which reads and writes pass",
        );
    }
    if has(" type ") {
        return Some("a new column of the new type, backfilled in batches, then swapped in over two deploys");
    }
    if has(" add column ") || has(" add ") {
        return has(" default ").then_some(
            "ADD COLUMN without a volatile default, then SET DEFAULT, then backfill existing rows in batches",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::safe_form;

    #[test]
    fn each_long_holding_form_has_its_safe_form_and_the_safe_forms_have_none() {
        let cases = [
            ("CREATE INDEX idx ON users (email)", Some("CREATE INDEX CONCURRENTLY")),
            ("create unique index idx on users (email)", Some("CREATE INDEX CONCURRENTLY")),
            ("CREATE INDEX CONCURRENTLY idx ON users (email)", None),
            ("ALTER TABLE users ALTER COLUMN email SET NOT NULL", Some("CHECK (column IS NOT NULL) NOT VALID")),
            ("ALTER TABLE users ADD CONSTRAINT c CHECK (id > 0)", Some("NOT VALID, then VALIDATE")),
            ("ALTER TABLE users ADD CONSTRAINT c CHECK (id > 0) NOT VALID", None),
            ("ALTER TABLE o ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES users (id)", Some("NOT VALID, then VALIDATE")),
            ("ALTER TABLE users ADD CONSTRAINT u UNIQUE (email)", Some("USING INDEX")),
            ("ALTER TABLE users ALTER COLUMN id TYPE bigint", Some("a new column of the new type")),
            ("ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()", Some("without a volatile default")),
            ("ALTER TABLE users ADD COLUMN nickname text", None),
            ("ALTER TABLE users RENAME COLUMN a TO b", None),
            ("UPDATE users SET flag = true", Some("in batches")),
            ("REINDEX TABLE users", Some("CONCURRENTLY")),
            ("REFRESH MATERIALIZED VIEW totals", Some("CONCURRENTLY")),
            ("VACUUM FULL users", Some("pg_repack")),
            ("SELECT 1", None),
        ];
        for (query, want) in cases {
            match (safe_form(query), want) {
                (Some(got), Some(w)) => assert!(got.contains(w), "{query}: {got}"),
                (got, want) => assert_eq!(got.is_some(), want.is_some(), "{query}: {got:?}"),
            }
        }
    }
}
