//! `toolgated store copy`: moves every record, sealed secret and audit
//! event from one store to another (embedded to PostgreSQL to move an
//! install onto replicas; PostgreSQL to embedded for a backup). Secrets
//! stay sealed under the same master key; audit events keep their sequence
//! numbers and times. The target must be empty.

use super::{Store, StoreError};

/// How many audit events are read per step.
const AUDIT_CHUNK: usize = 5_000;

/// What a copy moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyReport {
    /// Records (settings, servers, tools, toolsets, profiles, users,
    /// tokens, connections, metadata).
    pub records: usize,
    /// Sealed secrets (consumer secrets, users' Salesforce tokens, the
    /// master key check).
    pub secrets: usize,
    /// Audit events.
    pub audit_events: usize,
}

/// Copies everything in `from` into the empty `to`, in one atomic write on
/// the target: a failed copy leaves the target empty.
///
/// Errors: [`StoreError::WrongKey`] if the master key does not open
/// `from`'s sealed secrets (the copy would be unreadable);
/// [`StoreError::Schema`] if `to` is not empty; any read or write error.
pub async fn copy(from: &Store, to: &Store) -> Result<CopyReport, StoreError> {
    from.check_master_key().await?;
    let records = from.export_records().await?;
    let secrets = from.export_secrets().await?;
    let last = from.last_audit_sequence();
    let mut events = Vec::new();
    let mut next = 1;
    while next <= last {
        let chunk = from.audit_forward(next, last, AUDIT_CHUNK).await?;
        let Some(end) = chunk.last().map(|e| e.sequence) else {
            break;
        };
        events.extend(chunk);
        next = end + 1;
    }
    let report = CopyReport {
        records: records.len(),
        secrets: secrets.len(),
        audit_events: events.len(),
    };
    to.import(records, secrets, events).await?;
    to.check_master_key().await?;
    Ok(report)
}
