//! The PostgreSQL backend, for several replicas on one database.
//!
//! (Being written: see the contract in `super` — every method here mirrors
//! the embedded backend's.)

use std::sync::Arc;

use super::{Op, RawEphemeral, Shared, StoreError, Table, ToolQuery};
use crate::model::AuditEvent;

/// Connection settings for PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most pooled connections per replica (plus one for the change feed).
    pub max_connections: u32,
    /// How long a request waits for the database before failing closed.
    pub acquire_timeout: std::time::Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// An admin change's transaction, shared by the change's reads and its
/// commit.
#[derive(Clone)]
pub(crate) struct SharedTx;

/// A transaction holding an advisory lock.
pub(crate) struct PgLock;

/// The PostgreSQL backend.
pub(super) struct PgBackend;

#[allow(unused_variables, clippy::unused_async)]
impl PgBackend {
    pub(super) async fn open(
        url: &str,
        options: PgOptions,
        shared: Arc<Shared>,
    ) -> Result<Self, StoreError> {
        Err(StoreError::Postgres("not built yet".into()))
    }
    pub(super) fn feed_ok(&self) -> bool {
        unimplemented!()
    }
    pub(super) async fn begin(&self) -> Result<SharedTx, StoreError> {
        unimplemented!()
    }
    pub(super) async fn commit(
        &self,
        tx: SharedTx,
        ops: &[Op],
        events: Vec<AuditEvent>,
    ) -> Result<(), StoreError> {
        unimplemented!()
    }
    pub(super) async fn get(&self, table: Table, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        unimplemented!()
    }
    pub(super) async fn tx_get(
        &self,
        tx: &SharedTx,
        table: Table,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        unimplemented!()
    }
    pub(super) async fn list(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        unimplemented!()
    }
    pub(super) async fn tx_list(
        &self,
        tx: &SharedTx,
        table: Table,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        unimplemented!()
    }
    pub(super) async fn secret(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        unimplemented!()
    }
    pub(super) async fn tx_secret(
        &self,
        tx: &SharedTx,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        unimplemented!()
    }
    pub(super) async fn all_secrets(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        unimplemented!()
    }
    pub(super) async fn tool_page(
        &self,
        query: &ToolQuery,
    ) -> Result<(Vec<(String, Vec<u8>)>, u64, bool), StoreError> {
        unimplemented!()
    }
    pub(super) async fn append_audit(&self, events: Vec<AuditEvent>) -> Result<(), StoreError> {
        unimplemented!()
    }
    pub(super) async fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
        filter: &(dyn Fn(&AuditEvent) -> bool + Send + Sync),
    ) -> Result<(Vec<AuditEvent>, bool), StoreError> {
        unimplemented!()
    }
    pub(super) async fn audit_start_after(
        &self,
        since: i64,
        up_to: u64,
    ) -> Result<u64, StoreError> {
        unimplemented!()
    }
    pub(super) async fn audit_forward(
        &self,
        from: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        unimplemented!()
    }
    pub(super) async fn is_healthy(&self) -> bool {
        unimplemented!()
    }
    pub(super) async fn put_ephemeral(
        &self,
        kind: &str,
        key: &str,
        owner: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        unimplemented!()
    }
    pub(super) async fn get_ephemeral(
        &self,
        kind: &str,
        key: &str,
        take: bool,
    ) -> Result<Option<RawEphemeral>, StoreError> {
        unimplemented!()
    }
    pub(super) async fn find_ephemeral(
        &self,
        kind: &str,
        owner: &str,
    ) -> Result<Option<(String, RawEphemeral)>, StoreError> {
        unimplemented!()
    }
    pub(super) async fn delete_ephemeral(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        unimplemented!()
    }
    pub(super) async fn named_lock(&self, name: &str) -> Result<PgLock, StoreError> {
        unimplemented!()
    }
    pub(super) async fn import(
        &self,
        ops: Vec<Op>,
        events: Vec<AuditEvent>,
    ) -> Result<(), StoreError> {
        unimplemented!()
    }
}
