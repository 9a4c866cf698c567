//! The read-modify-write of one record shared by the toolset and access
//! profile services: load it inside an admin change, let the edit decide,
//! and write and audit it only when it changed.

use std::future::Future;

use serde_json::Value;

use super::error::{ControlError, Result, require};
use crate::audit::Action;
use crate::model::{AccessProfile, AiClient, AuditEvent, Millis, Toolset, now_ms};
use crate::store::{Batch, Entity, Store, Tx};

/// A record an admin edits as a whole, stamped when it changes.
pub(super) trait Edited: Entity + Clone + PartialEq {
    /// Records a change at `now`: the time, and the next revision.
    fn touch(&mut self, now: Millis);
    /// The revision last written.
    fn revision(&self) -> u64;
}

impl Edited for Toolset {
    fn touch(&mut self, now: Millis) {
        self.updated_at = now;
        self.revision += 1;
    }
    fn revision(&self) -> u64 {
        self.revision
    }
}

impl Edited for AccessProfile {
    fn touch(&mut self, now: Millis) {
        self.updated_at = now;
        self.revision += 1;
    }
    fn revision(&self) -> u64 {
        self.revision
    }
}

impl Edited for AiClient {
    fn touch(&mut self, now: Millis) {
        self.updated_at = now;
        self.revision += 1;
    }
    fn revision(&self) -> u64 {
        self.revision
    }
}

/// Refuses the edit with `ABORTED` when the caller read `record` at another
/// revision than it has now (another admin, on any replica, changed it
/// since): nothing is lost, the caller reads again and decides.
pub(super) fn check_revision<E: Edited>(record: &E, expected: Option<u64>) -> Result<()> {
    match expected {
        Some(expected) if expected != record.revision() => Err(ControlError::Aborted(format!(
            "{} {} changed since you read it (revision {expected}, now {}); read it again and retry",
            E::KIND,
            record.id(),
            record.revision()
        ))),
        _ => Ok(()),
    }
}

/// What an edit did: the record after it, the audit reason and details.
pub(super) type Edit<E> = (E, String, Value);

/// What an edit is of: the record's id and, when the caller pins it, the
/// revision it read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    /// The record id.
    pub(super) id: &'a str,
    /// `expected_revision` of the request.
    pub(super) expected_revision: Option<u64>,
}

/// Loads record `target.id` of type `E` inside one admin change, refuses
/// it with `check` (e.g. a maintained toolset) or when it is no longer at
/// `target.expected_revision`, applies `edit`, and when the record changed
/// writes it, one revision up, with an audit event `action` on
/// `<table prefix><id>`. Answers the record as it is afterwards. Changes
/// are serialised across replicas ([`Store::write`]), so two edits of one
/// record both land, each on top of the other; a pinned revision turns the
/// second into `ABORTED` instead.
///
/// Errors: `NOT_FOUND` naming the kind when there is no such record,
/// `ABORTED` on a revision mismatch, and whatever `check` or `edit` refuse
/// with (nothing is written then).
pub(super) async fn edit_record<'s, E, F, Fut>(
    store: &'s Store,
    actor: &str,
    target: Target<'_>,
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
            let before = require::<E>(&tx, target.id).await?;
            check(&before)?;
            check_revision(&before, target.expected_revision)?;
            let (mut record, reason, details) = edit(tx, before.clone()).await?;
            let mut batch = Batch::default();
            if record != before {
                record.touch(now_ms());
                batch.put(&record);
                batch.audit(
                    AuditEvent::allowed(
                        actor,
                        action,
                        format!("{}{}", E::TABLE.prefix(), target.id),
                    )
                    .with_reason(reason)
                    .with_details(details),
                );
            }
            Ok::<_, ControlError>((batch, record))
        })
        .await
}
