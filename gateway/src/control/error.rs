//! The control API's error type and its one conversion to `tonic::Status`.

use tonic::Status;

use crate::governance::edit::EditError;
use crate::store::StoreError;

/// Why a control request failed. The message is shown to the admin as is.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    /// A request field is missing or malformed.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The field, as named in the proto (e.g. `login_host.url`).
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A referenced object does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// `server`, `tool`, `toolset`, `access profile`, `user`, `token`, ...
        kind: &'static str,
        /// The id given.
        id: String,
    },
    /// A unique name is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The object is in a state that forbids the change.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The record changed since the caller read it (its `expected_revision`
    /// is stale): read again and retry.
    #[error("{0}")]
    Aborted(String),
    /// Storage failed; details go to the daemon log only.
    #[error("storage error")]
    Store(#[from] StoreError),
    /// Something else inside the daemon failed; details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ControlError {
    /// An `InvalidArgument` for `field`.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A `NotFound` for an object of `kind` with `id`.
    pub(crate) fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            id: id.into(),
        }
    }
}

impl From<EditError> for ControlError {
    fn from(err: EditError) -> Self {
        match err {
            EditError::NotFound { kind, id } => Self::NotFound { kind, id },
            EditError::Refused(message) => Self::FailedPrecondition(message),
        }
    }
}

impl From<ControlError> for Status {
    fn from(err: ControlError) -> Self {
        match err {
            ControlError::InvalidArgument { .. } => Status::invalid_argument(err.to_string()),
            ControlError::NotFound { .. } => Status::not_found(err.to_string()),
            ControlError::AlreadyExists(msg) => Status::already_exists(msg),
            ControlError::FailedPrecondition(msg) => Status::failed_precondition(msg),
            ControlError::Aborted(msg) => Status::aborted(msg),
            ControlError::Store(StoreError::Unavailable(reason)) => {
                tracing::error!(%reason, "control request refused: the database is unavailable");
                Status::unavailable(
                    "the database is unavailable; nothing was changed, try again shortly",
                )
            }
            ControlError::Store(source) => {
                tracing::error!(error = %source, "control request failed in storage");
                Status::internal("internal storage error; see the toolgated log")
            }
            ControlError::Internal(detail) => {
                tracing::error!(%detail, "control request failed");
                Status::internal("internal error; see the toolgated log")
            }
        }
    }
}

/// The record of type `E` with `id`, or `NOT_FOUND` naming its kind.
pub(crate) async fn require<E: crate::store::Entity>(
    store: &crate::store::Tx<'_>,
    id: &str,
) -> Result<E> {
    store
        .get::<E>(id)
        .await?
        .ok_or_else(|| ControlError::not_found(E::KIND, id))
}

/// Fails with ALREADY_EXISTS if a record of type `E` other than `id` is
/// named `name` (case-insensitive); `name_of` reads a record's name.
pub(crate) async fn require_name_free<E: crate::store::Entity>(
    store: &crate::store::Tx<'_>,
    id: &str,
    name: &str,
    name_of: impl Fn(&E) -> &str,
) -> Result<()> {
    let taken = store
        .list::<E>()
        .await?
        .iter()
        .any(|e| e.id() != id && name_of(e).eq_ignore_ascii_case(name));
    if taken {
        let article = if E::KIND.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        return Err(ControlError::AlreadyExists(format!(
            "{article} {} named {name:?} already exists",
            E::KIND
        )));
    }
    Ok(())
}

/// Shorthand for control handlers.
pub(crate) type Result<T, E = ControlError> = std::result::Result<T, E>;
