//! A set of record writes applied atomically, whatever the backend: one
//! sled batch on the embedded store, one transaction on PostgreSQL.

use zeroize::Zeroizing;

use super::{Entity, StoreError, Table, encode};
use crate::crypto::MasterKey;
use crate::model::{AuditEvent, Settings};

/// The id under which the settings record is stored.
pub(super) const SETTINGS_ID: &str = "settings";

/// One write of a batch, as the backends apply it. Record bodies are JSON
/// (without the embedded store's version byte); secrets are already sealed.
pub(crate) enum Op {
    /// Inserts or replaces the record `id` of `table`.
    Put {
        /// The table.
        table: Table,
        /// The record id.
        id: String,
        /// The record as JSON.
        body: Vec<u8>,
    },
    /// Deletes the record `id` of `table` (no error if absent).
    Delete {
        /// The table.
        table: Table,
        /// The record id.
        id: String,
    },
    /// Writes a secret sealed under `key` ([`MasterKey::seal`] with the key
    /// as associated data).
    PutSecret {
        /// The record key the secret belongs to, e.g. `server/<id>/client_secret`.
        key: String,
        /// The sealed bytes.
        sealed: Vec<u8>,
    },
    /// Deletes the secret under `key`.
    DeleteSecret {
        /// The record key.
        key: String,
    },
}

impl Op {
    /// Whether applying it changes what policy decisions read.
    pub(crate) fn writes_policy(&self) -> bool {
        match self {
            Op::Put { table, .. } | Op::Delete { table, .. } => table.is_policy(),
            Op::PutSecret { .. } | Op::DeleteSecret { .. } => false,
        }
    }
}

enum Pending {
    Op(Op),
    /// Sealed when the batch is applied, so the plaintext never waits in a
    /// stored form.
    Secret(String, Zeroizing<Vec<u8>>),
}

/// Writes collected by an admin change, applied together by
/// [`super::Store::write`]: all of them land, or (on error or crash) none.
#[derive(Default)]
pub struct Batch {
    ops: Vec<Pending>,
    events: Vec<AuditEvent>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("ops", &self.ops.len())
            .field("events", &self.events.len())
            .finish()
    }
}

impl Batch {
    /// Writes (inserts or replaces) a record.
    pub fn put<E: Entity>(&mut self, record: &E) {
        self.ops.push(Pending::Op(Op::Put {
            table: E::TABLE,
            id: record.id().to_owned(),
            body: encode(record),
        }));
    }

    /// Deletes a record by id (no error if absent).
    pub fn delete<E: Entity>(&mut self, id: &str) {
        self.ops.push(Pending::Op(Op::Delete {
            table: E::TABLE,
            id: id.to_owned(),
        }));
    }

    /// Writes the settings.
    pub fn put_settings(&mut self, settings: &Settings) {
        self.ops.push(Pending::Op(Op::Put {
            table: Table::Settings,
            id: SETTINGS_ID.to_owned(),
            body: encode(settings),
        }));
    }

    /// Maps a token hash to its token id.
    pub fn put_token_hash(&mut self, hash: &str, token_id: &str) {
        self.ops.push(Pending::Op(Op::Put {
            table: Table::TokenHash,
            id: hash.to_owned(),
            body: encode(&token_id),
        }));
    }

    /// Removes a token hash mapping.
    pub fn delete_token_hash(&mut self, hash: &str) {
        self.ops.push(Pending::Op(Op::Delete {
            table: Table::TokenHash,
            id: hash.to_owned(),
        }));
    }

    /// Seals `plaintext` under `record_key` and writes it. The plaintext is
    /// sealed when the batch is applied and never stored as is.
    pub fn put_secret(&mut self, record_key: &str, plaintext: &[u8]) {
        self.ops.push(Pending::Secret(
            record_key.to_owned(),
            Zeroizing::new(plaintext.to_vec()),
        ));
    }

    /// Deletes a sealed secret.
    pub fn delete_secret(&mut self, record_key: &str) {
        self.ops.push(Pending::Op(Op::DeleteSecret {
            key: record_key.to_owned(),
        }));
    }

    /// Writes a metadata value.
    pub fn put_meta(&mut self, name: &str, value: &str) {
        self.ops.push(Pending::Op(Op::Put {
            table: Table::Meta,
            id: name.to_owned(),
            body: encode(&value),
        }));
    }

    /// Appends an audit event; its sequence number and time are assigned
    /// when the batch is applied.
    pub fn audit(&mut self, event: AuditEvent) {
        self.events.push(event);
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.events.is_empty()
    }

    /// The writes with every secret sealed, and the audit events.
    ///
    /// Errors: [`StoreError::Crypto`] if sealing fails.
    pub(super) fn seal(self, key: &MasterKey) -> Result<(Vec<Op>, Vec<AuditEvent>), StoreError> {
        let mut ops = Vec::with_capacity(self.ops.len());
        for op in self.ops {
            ops.push(match op {
                Pending::Op(op) => op,
                Pending::Secret(record_key, plaintext) => Op::PutSecret {
                    sealed: key.seal(record_key.as_bytes(), &plaintext)?,
                    key: record_key,
                },
            });
        }
        Ok((ops, self.events))
    }
}
