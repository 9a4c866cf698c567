//! The read-modify-write of one record shared by the toolset and access
//! profile services: load it inside an admin change, let the edit decide,
//! and write and audit it only when it changed.

use std::future::Future;

use serde_json::Value;

use super::error::{ControlError, Result, require};
use crate::audit::Action;
use crate::model::{AccessProfile, AuditEvent, Millis, Toolset, now_ms};
use crate::store::{Batch, Entity, Store, Tx};

/// A record an admin edits as a whole, stamped when it changes.
pub(super) trait Edited: Entity + Clone + PartialEq {
    /// Records the time of a change.
    fn touch(&mut self, now: Millis);
}

impl Edited for Toolset {
    fn touch(&mut self, now: Millis) {
        self.updated_at = now;
    }
}

impl Edited for AccessProfile {
    fn touch(&mut self, now: Millis) {
        self.updated_at = now;
    }
}

/// What an edit did: the record after it, the audit reason and details.
pub(super) type Edit<E> = (E, String, Value);

/// Loads record `id` of type `E` inside one admin change, refuses it with
/// `check` (e.g. a maintained toolset), applies `edit`, and when the record
/// changed writes it with an audit event `action` on `<table prefix><id>`.
/// Answers the record as it is afterwards.
///
/// Errors: `NOT_FOUND` naming the kind when there is no such record, and
/// whatever `check` or `edit` refuse with (nothing is written then).
pub(super) async fn edit_record<'s, E, F, Fut>(
    store: &'s Store,
    actor: &str,
    id: &str,
    action: Action,
    check: fn(&E) -> Result<()>,
    edit: F,
) -> Result<E>
where
    E: Edited,
    F: FnOnce(Tx<'s>, E) -> Fut,
    Fut: Future<Output = Result<Edit<E>>>,
{
    store
        .write(|tx| async move {
            let before = require::<E>(&tx, id).await?;
            check(&before)?;
            let (mut record, reason, details) = edit(tx, before.clone()).await?;
            let mut batch = Batch::default();
            if record != before {
                record.touch(now_ms());
                batch.put(&record);
                batch.audit(
                    AuditEvent::allowed(actor, action, format!("{}{id}", E::TABLE.prefix()))
                        .with_reason(reason)
                        .with_details(details),
                );
            }
            Ok::<_, ControlError>((batch, record))
        })
        .await
}
