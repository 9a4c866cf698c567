//! Connecting to PostgreSQL, bringing its schema up to date, and turning
//! sqlx errors into [`StoreError`]s that name the operation and never the
//! database URL.

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::super::{StoreError, Table};

/// The migrations under `gateway/migrations/`, embedded at build time.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The `application_name` toolgated's pooled connections carry.
pub(super) const APPLICATION_NAME: &str = "toolgated";

/// Longest wait for a lock on the server (PostgreSQL `lock_timeout`):
/// longer than the longest upstream call a refresh lock is held across
/// (`upstream_timeout_secs` up to 3600 s is allowed, 60 s is the default).
const LOCK_TIMEOUT: &str = "120s";
/// Longest a transaction may sit idle on the server
/// (`idle_in_transaction_session_timeout`).
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "180s";

/// The connection options in `url`, with toolgated's application name and
/// server-side lock and idle-transaction timeouts.
///
/// Errors: [`StoreError::Postgres`] if the URL does not parse; the message
/// does not repeat the URL.
pub(super) fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| {
        StoreError::Postgres(format!(
            "the database URL is not a valid PostgreSQL URL: {}",
            scrub(&e.to_string(), url)
        ))
    })?;
    // sqlx logs every statement at debug level (the text only, never bound
    // values); slow ones at warn.
    //
    // Server-side bounds, so a partitioned or stopped replica cannot hold
    // a lock forever: a lock wait (the admin lock, a refresh lock) gives up
    // after LOCK_TIMEOUT, and a transaction left idle (a replica that
    // stopped mid-change, or a named lock held across a Salesforce call
    // longer than any upstream timeout allows) is ended by the server
    // after IDLE_IN_TRANSACTION_TIMEOUT, releasing its locks.
    Ok(options.application_name(APPLICATION_NAME).options([
        ("lock_timeout", LOCK_TIMEOUT),
        (
            "idle_in_transaction_session_timeout",
            IDLE_IN_TRANSACTION_TIMEOUT,
        ),
    ]))
}

/// The newest schema version this toolgated knows.
pub(super) fn known_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Applies the migrations this database lacks, on a connection of its own
/// (sqlx's migrator holds a session advisory lock on it while it runs, so
/// replicas starting together apply each migration once; closing the
/// connection releases the lock even if a migration fails).
///
/// Errors: [`StoreError::Schema`] if the database has a migration this
/// toolgated does not know (a newer toolgated migrated it), if an applied
/// migration differs from ours, or if one failed part way;
/// [`StoreError::Unavailable`] if it cannot connect in `timeout`.
pub(super) async fn migrate(
    options: &PgConnectOptions,
    timeout: Duration,
) -> Result<(), StoreError> {
    let mut conn = tokio::time::timeout(timeout, PgConnection::connect_with(options))
        .await
        .map_err(|_| {
            StoreError::Unavailable(format!(
                "connecting to migrate the schema: no connection within {timeout:?}"
            ))
        })?
        .map_err(db_err("connecting to migrate the schema"))?;
    let result = async {
        check_not_newer(&mut conn).await?;
        MIGRATOR.run(&mut conn).await.map_err(migrate_error)
    }
    .await;
    // Dropping would close it too; closing says goodbye to the server.
    let _ = conn.close().await;
    result
}

/// Refuses a database whose schema is newer than this toolgated before
/// touching it (the migrator would refuse too; this names the versions).
async fn check_not_newer(conn: &mut PgConnection) -> Result<(), StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err("reading the schema version"))?;
    if !exists {
        // An empty database.
        return Ok(());
    }
    let applied: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err("reading the schema version"))?;
    match applied {
        Some(version) if version > known_version() => Err(newer(version)),
        _ => Ok(()),
    }
}

fn newer(version: i64) -> StoreError {
    StoreError::Schema(format!(
        "the database schema is at version {version}, newer than this toolgated knows ({}); upgrade toolgated",
        known_version()
    ))
}

fn migrate_error(err: MigrateError) -> StoreError {
    match err {
        MigrateError::VersionMissing(version) => newer(version),
        MigrateError::VersionMismatch(version) => StoreError::Schema(format!(
            "schema migration {version} applied to this database differs from the one this toolgated carries; the database was migrated by a different build"
        )),
        MigrateError::Dirty(version) => StoreError::Schema(format!(
            "schema migration {version} failed part way on this database; restore it from a backup"
        )),
        MigrateError::Execute(err) => db_err("migrating the schema")(err),
        other => StoreError::Schema(format!("migrating the schema: {other}")),
    }
}

/// The SQL table of `table` (names are constants: never user input).
pub(super) fn table_name(table: Table) -> &'static str {
    match table {
        Table::Settings => "settings",
        Table::Meta => "meta",
        Table::Server => "servers",
        Table::Tool => "tools",
        Table::Toolset => "toolsets",
        Table::AccessProfile => "access_profiles",
        Table::User => "users",
        Table::Token => "tokens",
        Table::TokenHash => "token_hashes",
        Table::Connection => "connections",
        Table::OAuthClient => "oauth_clients",
        Table::AiClient => "ai_clients",
        Table::OAuthGrant => "oauth_grants",
        Table::AccessRequest => "access_requests",
        Table::Hook => "hooks",
        Table::HeldCall => "held_calls",
    }
}

/// The name serde gives a unit enum variant (e.g. `READ`), as it appears
/// in stored records and so in generated columns.
pub(super) fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// Maps an error of `operation` to a [`StoreError`]: the database cannot
/// be reached (no free connection in time, connection refused or lost, the
/// server shutting down or refusing connections) is
/// [`StoreError::Unavailable`]; anything else [`StoreError::Postgres`].
pub(super) fn db_err(operation: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |err| map_error(operation, &err)
}

fn map_error(operation: &str, err: &sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::PoolTimedOut => StoreError::Unavailable(format!(
            "{operation}: no database connection within the acquire timeout (the database is unreachable or every pooled connection is busy)"
        )),
        sqlx::Error::PoolClosed => {
            StoreError::Unavailable(format!("{operation}: the connection pool is closed"))
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            StoreError::Unavailable(format!("{operation}: {err}"))
        }
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let unreachable = code.starts_with("08") // connection exception
                || code.starts_with("53") // insufficient resources
                || code.starts_with("57P") // shutting down, cannot connect now
                || code == "3D000" // the database does not exist
                || (code == "55000" && db.message().contains("not currently accepting connections"));
            let mut message = format!("{operation}: {} (SQLSTATE {code}", db.message());
            if let Some(constraint) = db.constraint() {
                message.push_str(", constraint ");
                message.push_str(constraint);
            }
            message.push(')');
            if unreachable {
                StoreError::Unavailable(message)
            } else {
                StoreError::Postgres(message)
            }
        }
        other => StoreError::Postgres(format!("{operation}: {other}")),
    }
}

/// `message` with `url` and its password removed, should a parser ever
/// quote them.
fn scrub(message: &str, url: &str) -> String {
    let mut out = message.replace(url, "<database URL>");
    if let Ok(parsed) = url::Url::parse(url) {
        let in_query = parsed
            .query_pairs()
            .filter(|(k, _)| k == "password")
            .map(|(_, v)| v.into_owned());
        for password in parsed
            .password()
            .map(str::to_owned)
            .into_iter()
            .chain(in_query)
        {
            if !password.is_empty() {
                out = out.replace(&password, "<password>");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_refused_without_repeating_it() {
        let url = "postgres://toolgate:hunter2@db.example:5432/toolgate?sslmode=sometimes";
        let err = connect_options(url).unwrap_err().to_string();
        assert!(err.contains("not a valid PostgreSQL URL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(!err.contains(url), "{err}");
    }

    #[test]
    fn the_known_version_is_the_newest_migration() {
        assert!(known_version() >= 1);
        assert_eq!(
            known_version(),
            MIGRATOR.iter().map(|m| m.version).max().unwrap()
        );
    }

    #[test]
    fn enum_names_are_the_stored_spelling() {
        assert_eq!(enum_name(&crate::model::ToolAction::Read), "READ");
        assert_eq!(enum_name(&crate::model::Outcome::Denied), "DENIED");
    }
}
