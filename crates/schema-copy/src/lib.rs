//! A scratch copy of a database's schema, for recording what a migration locks
//! (`migrate-restart plan`) without touching the database it will run on.
//!
//! - [`dump::read`] reads the schema from the catalogs through the caller's connection: schemas, extensions, enum types and domains, sequences, functions,
//!   tables (columns, defaults, identity and generated columns, partitioning), constraints,
//!   indexes, views, triggers — as the SQL that recreates them — and the rows of the
//!   migration-history tables frameworks keep (`schema_migrations`, `django_migrations`,
//!   `flyway_schema_history`, …), so the migration skips what production has already applied.
//!   `pg_dump` holds AccessShareLock on every table until it ends, so a migration that starts
//!   meanwhile queues behind it and the site behind the migration; this read takes the locks
//!   the server needs to deparse (indexes, checks, generated columns, views, triggers, the
//!   history rows) one statement at a time, each released when its statement ends, and says
//!   the longest it held them.
//! - [`server::ScratchServer`] starts a throwaway PostgreSQL server of a given major version
//!   from binaries found on this machine, on a free loopback port with a random password;
//!   dropped, it stops and its directory is removed.
//! - [`dump::SchemaDump::restore`] replays the dump into it, statement by statement, and says
//!   what could not be recreated (an extension the local server lacks, say).
//!
//! What a copy cannot be: production's data (the tables are empty, so a data-dependent
//! migration behaves differently, and no statement takes as long), objects the catalogs
//! describe only in part (operator classes, foreign servers, publications are not copied), and
//! the state between this read and the real run (drift).

pub mod dump;
pub mod fetch;
pub mod server;

pub use dump::{read, HistoryTable, SchemaDump};
pub use server::{find_bindir, ScratchServer};
