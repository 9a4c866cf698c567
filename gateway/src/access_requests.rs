//! Access requests, the writes: opening (or reusing) a user's request for
//! a requestable access profile, approving it into a just-in-time grant,
//! denying it, and the sweeper that expires requests nobody decided.
//!
//! Each change is one [`Store::write`] that re-reads what it decides on
//! (so two admins, or several replicas' sweepers, cannot both decide one
//! request), writes the request, the grant when there is one, and its
//! audit event (`access_request.create`, `.approve`, `.deny`, `.expire`;
//! target `access_request/<id>`) together. An approval changes the
//! profile, a policy record, so every replica's MCP sessions re-check
//! their lists and the requester hears `notifications/tools/list_changed`
//! ([`crate::mcp::notify`]). The pure rules (durations, what is
//! requestable) are in [`crate::governance::requests`]. Both the control
//! API and the MCP gateway call this module; it knows neither.
//!
//! Audit events name the user and profile; the user's reason is kept on
//! the request (admins read it over the API), not in the audit log, which
//! gets its length only.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::audit::Action;
use crate::governance::edit;
use crate::governance::requests::{
    self as rules, DurationError, granted_duration, holds_live_grant, is_open,
};
use crate::model::{
    AccessProfile, AccessRequest, AccessRequestState, AuditEvent, Grant, Millis, ProfileObtain,
    User, UserStatus, new_id, now_ms,
};
use crate::store::{Batch, Store, StoreError, Tx};

/// How often the daemon expires undecided requests (one minute: a request
/// lives at least a minute, `GovernanceSettings.access_request_ttl_secs`;
/// one past its expiry is refused everywhere before the sweep marks it).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The actor of automatic approvals and expiries.
pub const SYSTEM: &str = "system";

/// Why an access-request change was refused. The message is shown to the
/// admin (control API) or the user (MCP) as is.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A request field is malformed.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as the proto names it.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The user, profile or request does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// `user`, `access profile` or `access request`.
        kind: &'static str,
        /// The id given.
        id: String,
    },
    /// The state forbids it (not requestable, not pending, user disabled,
    /// grant already held).
    #[error("{0}")]
    Precondition(String),
    /// The request is no longer at the revision the caller read.
    #[error("{0}")]
    Aborted(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a user asks for.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    /// The requesting user's id.
    pub user_id: &'a str,
    /// The profile's id.
    pub profile_id: &'a str,
    /// Why (at most [`rules::MAX_REASON_CHARS`] characters; checked by the
    /// caller, which knows the field's name).
    pub reason: &'a str,
    /// Seconds asked for; `None`: as long as the profile allows.
    pub duration_secs: Option<u64>,
    /// The tool whose call opened it (exposed name), if any.
    pub tool: Option<&'a str>,
}

/// The answer to [`open`].
#[derive(Debug, Clone)]
pub struct Opened {
    /// The request (APPROVED already for an auto-approved profile).
    pub request: AccessRequest,
    /// False: the user's pending request for the profile was returned.
    pub created: bool,
}

/// Checks a duration field (1 to [`rules::MAX_DURATION_SECS`]).
///
/// Errors: [`RequestError::Invalid`] naming `field`.
pub fn check_duration(field: &'static str, secs: Option<u64>) -> Result<(), RequestError> {
    match secs {
        Some(s) if s == 0 || s > rules::MAX_DURATION_SECS => Err(RequestError::Invalid {
            field,
            message: format!("must be 1 to {} seconds", rules::MAX_DURATION_SECS),
        }),
        _ => Ok(()),
    }
}

/// Checks a reason (at most [`rules::MAX_REASON_CHARS`] characters;
/// `required`: not blank).
///
/// Errors: [`RequestError::Invalid`] naming `field`.
pub fn check_reason(field: &'static str, reason: &str, required: bool) -> Result<(), RequestError> {
    if required && reason.trim().is_empty() {
        return Err(RequestError::Invalid {
            field,
            message: "is required".into(),
        });
    }
    if reason.chars().count() > rules::MAX_REASON_CHARS {
        return Err(RequestError::Invalid {
            field,
            message: format!("must be at most {} characters", rules::MAX_REASON_CHARS),
        });
    }
    Ok(())
}

fn target(id: &str) -> String {
    format!("access_request/{id}")
}

async fn require<E: crate::store::Entity>(
    tx: &Tx<'_>,
    kind: &'static str,
    id: &str,
) -> Result<E, RequestError> {
    tx.get::<E>(id)
        .await?
        .ok_or_else(|| RequestError::NotFound {
            kind,
            id: id.to_owned(),
        })
}

/// Opens a request of `ask.user_id` for `ask.profile_id` as `actor`
/// (`user:<email>` over MCP, `admin:<name>` on a user's behalf), or returns
/// the user's open request for the profile. A request for an
/// auto-approved profile is approved at once (by `system`, bounded by the
/// profile's maximum) in the same write.
///
/// Errors: `NotFound` (user, profile), `Precondition` (the profile is not
/// requestable, the user is disabled or already holds a live grant),
/// `Invalid` (`duration_secs`), `Store`.
pub async fn open(store: &Store, actor: &str, ask: Ask<'_>) -> Result<Opened, RequestError> {
    check_duration("duration_secs", ask.duration_secs)?;
    store
        .write(|tx| async move {
            let now = now_ms();
            let user: User = require(&tx, "user", ask.user_id).await?;
            let mut profile: AccessProfile = require(&tx, "access profile", ask.profile_id).await?;
            if user.status != UserStatus::Active {
                return Err(RequestError::Precondition(format!(
                    "user {} is disabled",
                    user.email
                )));
            }
            if !profile.obtain.is_requestable() {
                return Err(RequestError::Precondition(format!(
                    "access profile {:?} is not requestable (an admin grants it)",
                    profile.name
                )));
            }
            if holds_live_grant(&profile, &user.id, now) {
                return Err(RequestError::Precondition(format!(
                    "user {} already holds access profile {:?}",
                    user.email, profile.name
                )));
            }
            let requests: Vec<AccessRequest> = tx.list().await?;
            if let Some(open) = requests
                .iter()
                .find(|r| r.user_id == user.id && r.profile_id == profile.id && is_open(r, now))
            {
                return Ok((
                    Batch::default(),
                    Opened {
                        request: open.clone(),
                        created: false,
                    },
                ));
            }
            let settings = tx.settings().await?;
            let mut request = AccessRequest {
                id: new_id(),
                user_id: user.id.clone(),
                profile_id: profile.id.clone(),
                reason: ask.reason.to_owned(),
                tool: ask.tool.map(str::to_owned),
                state: AccessRequestState::Pending,
                requested_duration_secs: ask.duration_secs,
                granted_duration_secs: None,
                created_at: now,
                expires_at: rules::request_expiry(now, settings.governance.access_request_ttl_secs),
                decided_at: None,
                decided_by: String::new(),
                decision_reason: String::new(),
                revision: 1,
            };
            let mut batch = Batch::default();
            batch.audit(
                AuditEvent::allowed(actor, Action::AccessRequestCreate, target(&request.id))
                    .with_reason(format!(
                        "{} requested access profile {:?}",
                        user.email, profile.name
                    ))
                    .with_details(json!({
                        "user_id": user.id,
                        "email": user.email,
                        "profile_id": profile.id,
                        "profile": profile.name,
                        "tool": request.tool,
                        "requested_duration_secs": request.requested_duration_secs,
                        "reason_chars": request.reason.chars().count(),
                    })),
            );
            if profile.obtain == ProfileObtain::RequestAutoApprove {
                // Within the profile's maximum by construction.
                let secs = granted_duration(
                    request.requested_duration_secs,
                    None,
                    profile.max_request_duration_secs,
                )
                .unwrap_or(profile.max_request_duration_secs);
                grant(
                    &mut batch,
                    &mut request,
                    &mut profile,
                    &user,
                    SYSTEM,
                    secs,
                    now,
                );
            } else {
                batch.put(&request);
            }
            Ok((
                batch,
                Opened {
                    request,
                    created: true,
                },
            ))
        })
        .await
}

/// Marks `request` approved by `actor` for `secs` and grants `profile` to
/// `user` until then, into `batch` with the audit event.
fn grant(
    batch: &mut Batch,
    request: &mut AccessRequest,
    profile: &mut AccessProfile,
    user: &User,
    actor: &str,
    secs: Option<u64>,
    now: Millis,
) {
    // A grant the user already holds that lasts longer (an admin's grant
    // without an end, or a later end) is kept: approving a request never
    // shortens access.
    let requested_end = rules::grant_end(now, secs);
    let held_end = profile
        .grants
        .iter()
        .find(|g| g.user_id == user.id && g.expires_at.is_none_or(|end| end > now))
        .map(|g| g.expires_at);
    let expires_at = match held_end {
        Some(None) => None,
        Some(Some(held)) => requested_end.map(|end| end.max(held)),
        None => requested_end,
    };
    edit::grant(
        profile,
        Grant {
            user_id: user.id.clone(),
            granted_at: now,
            expires_at,
            granted_by: actor.to_owned(),
        },
    );
    profile.updated_at = now;
    profile.revision += 1;
    request.state = AccessRequestState::Approved;
    request.granted_duration_secs = secs;
    request.decided_at = Some(now);
    request.decided_by = actor.to_owned();
    request.revision += 1;
    batch.put(&*profile);
    batch.put(&*request);
    let length = secs.map_or_else(|| "without an end".to_owned(), |s| format!("for {s} s"));
    batch.audit(
        AuditEvent::allowed(actor, Action::AccessRequestApprove, target(&request.id))
            .with_reason(format!(
                "granted {:?} to {} {length}",
                profile.name, user.email
            ))
            .with_details(json!({
                "user_id": user.id,
                "email": user.email,
                "profile_id": profile.id,
                "profile": profile.name,
                "tool": request.tool,
                "requested_duration_secs": request.requested_duration_secs,
                "granted_duration_secs": secs,
                "expires_at": expires_at,
            })),
    );
}

fn check_revision(request: &AccessRequest, expected: Option<u64>) -> Result<(), RequestError> {
    match expected {
        Some(expected) if expected != request.revision => Err(RequestError::Aborted(format!(
            "access request {} changed since you read it (revision {expected}, now {}); read it again and retry",
            request.id, request.revision
        ))),
        _ => Ok(()),
    }
}

fn check_open(request: &AccessRequest, now: Millis) -> Result<(), RequestError> {
    if request.state != AccessRequestState::Pending {
        return Err(RequestError::Precondition(format!(
            "access request {} is not pending (it is {:?})",
            request.id, request.state
        )));
    }
    if !is_open(request, now) {
        return Err(RequestError::Precondition(format!(
            "access request {} has expired undecided",
            request.id
        )));
    }
    Ok(())
}

/// Approves pending request `id` as `actor`: grants its profile for the
/// shortest of what was asked, `duration_secs` (the admin's, which may only
/// shorten) and the profile's maximum, in the same write.
///
/// Errors: `Invalid` (`duration_secs` out of range or longer than allowed),
/// `NotFound` (request), `Precondition` (not pending or expired, the
/// profile or user is gone, the profile is no longer requestable),
/// `Aborted` (revision mismatch), `Store`.
pub async fn approve(
    store: &Store,
    actor: &str,
    id: &str,
    duration_secs: Option<u64>,
    expected_revision: Option<u64>,
) -> Result<AccessRequest, RequestError> {
    check_duration("duration_secs", duration_secs)?;
    store
        .write(|tx| async move {
            let now = now_ms();
            let mut request: AccessRequest = require(&tx, "access request", id).await?;
            check_revision(&request, expected_revision)?;
            check_open(&request, now)?;
            let Some(mut profile) = tx.get::<AccessProfile>(&request.profile_id).await? else {
                return Err(RequestError::Precondition(format!(
                    "access profile {} no longer exists",
                    request.profile_id
                )));
            };
            if !profile.obtain.is_requestable() {
                return Err(RequestError::Precondition(format!(
                    "access profile {:?} is no longer requestable",
                    profile.name
                )));
            }
            let Some(user) = tx.get::<User>(&request.user_id).await? else {
                return Err(RequestError::Precondition(format!(
                    "user {} no longer exists",
                    request.user_id
                )));
            };
            if user.status != UserStatus::Active {
                return Err(RequestError::Precondition(format!(
                    "user {} is disabled; enable them first or deny the request",
                    user.email
                )));
            }
            let secs = granted_duration(
                request.requested_duration_secs,
                duration_secs,
                profile.max_request_duration_secs,
            )
            .map_err(|e: DurationError| RequestError::Invalid {
                field: "duration_secs",
                message: e.to_string(),
            })?;
            let mut batch = Batch::default();
            grant(
                &mut batch,
                &mut request,
                &mut profile,
                &user,
                actor,
                secs,
                now,
            );
            Ok((batch, request))
        })
        .await
}

/// Denies pending request `id` as `actor` with `reason` (shown to the
/// user; checked by [`check_reason`]).
///
/// Errors: `Invalid` (`reason`), `NotFound`, `Precondition` (not pending
/// or expired), `Aborted`, `Store`.
pub async fn deny(
    store: &Store,
    actor: &str,
    id: &str,
    reason: &str,
    expected_revision: Option<u64>,
) -> Result<AccessRequest, RequestError> {
    check_reason("reason", reason, true)?;
    let reason = reason.trim().to_owned();
    store
        .write(|tx| async move {
            let now = now_ms();
            let mut request: AccessRequest = require(&tx, "access request", id).await?;
            check_revision(&request, expected_revision)?;
            check_open(&request, now)?;
            let profile = tx.get::<AccessProfile>(&request.profile_id).await?;
            let profile_name = profile.map(|p| p.name).unwrap_or_default();
            request.state = AccessRequestState::Denied;
            request.decided_at = Some(now);
            request.decided_by = actor.to_owned();
            request.decision_reason = reason.clone();
            request.revision += 1;
            let mut batch = Batch::default();
            batch.put(&request);
            batch.audit(
                AuditEvent::allowed(actor, Action::AccessRequestDeny, target(&request.id))
                    .with_reason(format!("denied access profile {profile_name:?}: {reason}"))
                    .with_details(json!({
                        "user_id": request.user_id,
                        "profile_id": request.profile_id,
                        "profile": profile_name,
                        "tool": request.tool,
                    })),
            );
            Ok((batch, request))
        })
        .await
}

/// One sweep at `now`: every pending request past its expiry becomes
/// EXPIRED (decided by `system`), each with an `access_request.expire`
/// audit event, all in one write that re-reads the requests (safe on every
/// replica at once). Returns the ids expired.
///
/// Errors: [`StoreError`] when the store cannot be read or written.
pub async fn sweep(store: &Store, now: Millis) -> Result<Vec<String>, StoreError> {
    store
        .write(|tx| async move {
            let mut batch = Batch::default();
            let mut expired = Vec::new();
            for mut request in tx.list::<AccessRequest>().await? {
                if request.state != AccessRequestState::Pending || request.expires_at > now {
                    continue;
                }
                request.state = AccessRequestState::Expired;
                request.decided_at = Some(now);
                request.decided_by = SYSTEM.to_owned();
                request.revision += 1;
                batch.put(&request);
                batch.audit(
                    AuditEvent::allowed(SYSTEM, Action::AccessRequestExpire, target(&request.id))
                        .with_reason("access request expired undecided")
                        .with_details(json!({
                            "user_id": request.user_id,
                            "profile_id": request.profile_id,
                            "tool": request.tool,
                            "created_at": request.created_at,
                            "expires_at": request.expires_at,
                        })),
                );
                expired.push(request.id);
            }
            Ok::<_, StoreError>((batch, expired))
        })
        .await
}

/// Sweeps every `every` (the first at once) until `stop` is cancelled. A
/// failed sweep is logged and retried at the next tick.
pub async fn run_sweeper(store: Arc<Store>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => match sweep(&store, now_ms()).await {
                Ok(expired) if !expired.is_empty() => {
                    tracing::info!(count = expired.len(), "expired undecided access requests");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "cannot expire access requests"),
            },
        }
    }
}
