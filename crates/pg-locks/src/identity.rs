//! Which database a connection reached, as the server itself says: never decided by how a URL
//! is spelled (`localhost` and `127.0.0.1`, another user, extra parameters, a pooler in front
//! all name the same database).

use postgres::Client;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A database as its server identifies it: the cluster's `system_identifier` (set by initdb,
/// shared only by a cluster's physical copies: its replicas and forks) and the database's oid
/// and name in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseIdentity {
    /// `pg_control_system().system_identifier`, as text (it is a 64-bit unsigned number).
    pub system_identifier: String,
    /// `pg_database.oid` of the connection's database.
    pub database_oid: u32,
    /// Its name.
    pub database: String,
}

/// A running server's database: its identity and when its postmaster started, which tells a
/// physical copy (a fork, a promoted replica) from the server itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDatabase {
    /// Which database.
    pub identity: DatabaseIdentity,
    /// `pg_postmaster_start_time()`, as text.
    pub started_at: String,
}

/// Reads the identity of the database `client` is connected to (one catalog query).
pub fn database_identity(client: &mut Client) -> Result<ServerDatabase, Error> {
    let row = client
        .query_one(
            "SELECT (SELECT system_identifier::text FROM pg_control_system()), d.oid::int8, d.datname::text, \
               pg_postmaster_start_time()::text \
             FROM pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .map_err(|e| Error::from_driver("reading which database this is", e))?;
    Ok(ServerDatabase {
        identity: DatabaseIdentity {
            system_identifier: row.get(0),
            database_oid: row.get::<_, i64>(1) as u32,
            database: row.get(2),
        },
        started_at: row.get(3),
    })
}

impl ServerDatabase {
    /// The same database of the same running server: whatever the two URLs said.
    pub fn same_as(&self, other: &ServerDatabase) -> bool {
        self == other
    }
}
