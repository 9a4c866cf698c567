//! `AccessProfileService`: toolsets bound to profiles, profiles granted to
//! users.

use serde_json::json;
use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::access_profile_service_server::AccessProfileService;

use super::Control;
use super::auth::actor;
use super::convert::{millis, opt_timestamp, timestamp};
use super::error::{ControlError, Result, require, require_name_free};
use super::records::{Edit, Target, edit_record};
use super::validate;
use crate::audit::Action;
use crate::governance::edit;
use crate::model::{
    AccessProfile, AuditEvent, Grant, Millis, ProfileObtain, Toolset, User, new_id, now_ms,
};
use crate::store::{Batch, Tx};

fn to_proto(p: &AccessProfile) -> v1::AccessProfile {
    v1::AccessProfile {
        revision: p.revision,
        id: p.id.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        toolset_ids: p.toolset_ids.clone(),
        grants: p
            .grants
            .iter()
            .map(|g| v1::Grant {
                user_id: g.user_id.clone(),
                granted_at: Some(timestamp(g.granted_at)),
                expires_at: opt_timestamp(g.expires_at),
                granted_by: g.granted_by.clone(),
            })
            .collect(),
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
        obtain: match p.obtain {
            ProfileObtain::AdminGrant => v1::ProfileObtain::AdminGrant,
            ProfileObtain::RequestWithApproval => v1::ProfileObtain::RequestWithApproval,
            ProfileObtain::RequestAutoApprove => v1::ProfileObtain::RequestAutoApprove,
        }
        .into(),
        max_request_duration_secs: p.max_request_duration_secs,
    }
}

/// How a profile is obtained, from the proto: `None` for UNSPECIFIED
/// (leave as is, or the default on create).
///
/// Errors: `INVALID_ARGUMENT` naming `obtain` for an unknown value.
fn obtain_from_proto(value: i32) -> Result<Option<ProfileObtain>> {
    match v1::ProfileObtain::try_from(value) {
        Ok(v1::ProfileObtain::Unspecified) => Ok(None),
        Ok(v1::ProfileObtain::AdminGrant) => Ok(Some(ProfileObtain::AdminGrant)),
        Ok(v1::ProfileObtain::RequestWithApproval) => Ok(Some(ProfileObtain::RequestWithApproval)),
        Ok(v1::ProfileObtain::RequestAutoApprove) => Ok(Some(ProfileObtain::RequestAutoApprove)),
        Err(_) => Err(ControlError::invalid(
            "obtain",
            format!(
                "unknown value {value}; use ADMIN_GRANT, REQUEST_WITH_APPROVAL or REQUEST_AUTO_APPROVE"
            ),
        )),
    }
}

/// A `max_request_duration_secs` field, checked (1 to 31536000).
///
/// Errors: `INVALID_ARGUMENT` naming the field.
fn max_duration(value: Option<u64>) -> Result<Option<u64>> {
    crate::access_requests::check_duration("max_request_duration_secs", value)
        .map_err(ControlError::from)?;
    Ok(value)
}

async fn check_name_free(store: &Tx<'_>, id: &str, name: &str) -> Result<()> {
    require_name_free::<AccessProfile>(store, id, name, |r| &r.name).await
}

async fn check_toolsets_exist(store: &Tx<'_>, ids: &[String]) -> Result<()> {
    for id in ids {
        if store.get::<Toolset>(id).await?.is_none() {
            return Err(ControlError::not_found("toolset", id));
        }
    }
    Ok(())
}

/// The profile id and toolset ids of a `BindToolsets` or `UnbindToolsets`
/// request, validated; `prefix` goes before field names in errors (the
/// preview names its nested requests).
pub(super) fn profile_toolsets(
    profile_id: &str,
    toolset_ids: &[String],
    prefix: &str,
) -> Result<(String, Vec<String>)> {
    let id = validate::id(&format!("{prefix}profile_id"), profile_id)?.to_owned();
    let ids = validate::ids(&format!("{prefix}toolset_ids"), toolset_ids, true, 1000)?;
    Ok((id, ids))
}

/// Profile id, user id and expiry of a `GrantUser` request, validated
/// against `now`; `prefix` as for [`profile_toolsets`].
pub(super) fn grant_request(
    req: &v1::GrantUserRequest,
    prefix: &str,
    now: Millis,
) -> Result<(String, String, Option<Millis>)> {
    let id = validate::id(&format!("{prefix}profile_id"), &req.profile_id)?.to_owned();
    let user_id = validate::id(&format!("{prefix}user_id"), &req.user_id)?.to_owned();
    let field = format!("{prefix}expires_at");
    let expires_at = req
        .expires_at
        .as_ref()
        .map(|ts| millis(ts, &field))
        .transpose()?;
    if expires_at.is_some_and(|end| end <= now) {
        return Err(ControlError::invalid(field, "must be in the future"));
    }
    Ok((id, user_id, expires_at))
}

/// Profile id and user id of a `RevokeUser` request, validated; `prefix` as
/// for [`profile_toolsets`].
pub(super) fn revoke_request(
    req: &v1::RevokeUserRequest,
    prefix: &str,
) -> Result<(String, String)> {
    let id = validate::id(&format!("{prefix}profile_id"), &req.profile_id)?.to_owned();
    let user_id = validate::id(&format!("{prefix}user_id"), &req.user_id)?.to_owned();
    Ok((id, user_id))
}

impl Control {
    /// Applies `edit` to a profile, audits it as `action` when it changed,
    /// and answers with the result.
    async fn edit_profile<'s, F, Fut>(
        &'s self,
        actor: String,
        target: Target<'_>,
        action: Action,
        edit: F,
    ) -> Result<v1::AccessProfile>
    where
        F: FnOnce(Tx<'s>, AccessProfile) -> Fut,
        Fut: std::future::Future<Output = Result<Edit<AccessProfile>>>,
    {
        let profile = edit_record(&self.store, &actor, target, action, |_| Ok(()), edit).await?;
        Ok(to_proto(&profile))
    }
}

#[tonic::async_trait]
impl AccessProfileService for Control {
    async fn create_access_profile(
        &self,
        request: Request<v1::CreateAccessProfileRequest>,
    ) -> Result<Response<v1::CreateAccessProfileResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let name = validate::name("name", &req.name)?;
        let description = validate::description("description", &req.description)?;
        let mut toolset_ids = validate::ids("toolset_ids", &req.toolset_ids, false, 1000)?;
        toolset_ids.sort();
        toolset_ids.dedup();
        let obtain = obtain_from_proto(req.obtain)?.unwrap_or_default();
        let max_request_duration_secs = max_duration(req.max_request_duration_secs)?;
        let profile = self
            .store
            .write(|store| async move {
                check_name_free(&store, "", &name).await?;
                check_toolsets_exist(&store, &toolset_ids).await?;
                let now = now_ms();
                let profile = AccessProfile {
                    revision: 1,
                    id: new_id(),
                    name: name.clone(),
                    description: description.clone(),
                    toolset_ids: toolset_ids.clone(),
                    grants: vec![],
                    created_at: now,
                    updated_at: now,
                    obtain,
                    max_request_duration_secs,
                };
                let mut batch = Batch::default();
                batch.put(&profile);
                batch.audit(
                    AuditEvent::allowed(
                        &actor,
                        Action::ProfileCreate,
                        format!("profile/{}", profile.id),
                    )
                    .with_reason(format!("created access profile {name:?}"))
                    .with_details(json!({
                        "name": name,
                        "toolset_ids": toolset_ids,
                        "obtain": obtain,
                        "max_request_duration_secs": max_request_duration_secs,
                    })),
                );
                Ok::<_, ControlError>((batch, profile))
            })
            .await?;
        Ok(Response::new(v1::CreateAccessProfileResponse {
            profile: Some(to_proto(&profile)),
        }))
    }

    async fn get_access_profile(
        &self,
        request: Request<v1::GetAccessProfileRequest>,
    ) -> Result<Response<v1::GetAccessProfileResponse>, Status> {
        let id = validate::id("id", &request.get_ref().id)?;
        let profile = require::<AccessProfile>(&self.store.reader(), id).await?;
        Ok(Response::new(v1::GetAccessProfileResponse {
            profile: Some(to_proto(&profile)),
        }))
    }

    async fn list_access_profiles(
        &self,
        request: Request<v1::ListAccessProfilesRequest>,
    ) -> Result<Response<v1::ListAccessProfilesResponse>, Status> {
        let user_id = request.into_inner().user_id;
        let mut profiles: Vec<AccessProfile> = self
            .store
            .list::<AccessProfile>()
            .await
            .map_err(ControlError::from)?
            .into_iter()
            .filter(|p| user_id.is_empty() || p.grants.iter().any(|g| g.user_id == user_id))
            .collect();
        profiles.sort_by_key(|a| a.name.to_lowercase());
        Ok(Response::new(v1::ListAccessProfilesResponse {
            profiles: profiles.iter().map(to_proto).collect(),
        }))
    }

    async fn update_access_profile(
        &self,
        request: Request<v1::UpdateAccessProfileRequest>,
    ) -> Result<Response<v1::UpdateAccessProfileResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let id = validate::id("id", &req.id)?.to_owned();
        let name = req
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?;
        let description = req
            .description
            .as_deref()
            .map(|d| validate::description("description", d))
            .transpose()?;
        let obtain = obtain_from_proto(req.obtain)?;
        let max_request_duration_secs = max_duration(req.max_request_duration_secs)?;
        if req.clear_max_request_duration && max_request_duration_secs.is_some() {
            return Err(ControlError::invalid(
                "clear_max_request_duration",
                "cannot be set together with max_request_duration_secs",
            )
            .into());
        }
        let profile = self
            .edit_profile(
                actor,
                Target {
                    id: &id,
                    expected_revision: req.expected_revision,
                },
                Action::ProfileUpdate,
                |store, mut profile| async move {
                    if let Some(name) = name {
                        check_name_free(&store, &profile.id, &name).await?;
                        profile.name = name;
                    }
                    if let Some(description) = description {
                        profile.description = description;
                    }
                    if let Some(obtain) = obtain {
                        profile.obtain = obtain;
                    }
                    if max_request_duration_secs.is_some() {
                        profile.max_request_duration_secs = max_request_duration_secs;
                    }
                    if req.clear_max_request_duration {
                        profile.max_request_duration_secs = None;
                    }
                    let details = json!({
                        "name": profile.name,
                        "obtain": profile.obtain,
                        "max_request_duration_secs": profile.max_request_duration_secs,
                    });
                    Ok((
                        profile,
                        "renamed, re-described or changed how it is obtained".into(),
                        details,
                    ))
                },
            )
            .await?;
        Ok(Response::new(v1::UpdateAccessProfileResponse {
            profile: Some(profile),
        }))
    }

    async fn delete_access_profile(
        &self,
        request: Request<v1::DeleteAccessProfileRequest>,
    ) -> Result<Response<v1::DeleteAccessProfileResponse>, Status> {
        let actor = actor(&request);
        let id = validate::id("id", &request.get_ref().id)?.to_owned();
        self.store
            .write(|store| async move {
                let profile = require::<AccessProfile>(&store, &id).await?;
                let mut batch = Batch::default();
                batch.delete::<AccessProfile>(&id);
                batch.audit(
                    AuditEvent::allowed(&actor, Action::ProfileDelete, format!("profile/{id}"))
                        .with_reason(format!(
                            "deleted access profile {:?} ({} grants ended)",
                            profile.name,
                            profile.grants.len()
                        ))
                        .with_details(json!({"name": profile.name, "grants": profile.grants})),
                );
                Ok::<_, ControlError>((batch, ()))
            })
            .await?;
        Ok(Response::new(v1::DeleteAccessProfileResponse {}))
    }

    async fn bind_toolsets(
        &self,
        request: Request<v1::BindToolsetsRequest>,
    ) -> Result<Response<v1::BindToolsetsResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let (id, ids) = profile_toolsets(&req.profile_id, &req.toolset_ids, "")?;
        let profile = self
            .edit_profile(
                actor,
                Target {
                    id: &id,
                    expected_revision: req.expected_revision,
                },
                Action::ProfileBindToolsets,
                |store, mut profile| async move {
                    check_toolsets_exist(&store, &ids).await?;
                    edit::bind_toolsets(&mut profile, &ids);
                    Ok((
                        profile,
                        format!("bound toolsets {}", ids.join(", ")),
                        json!({"toolset_ids": ids}),
                    ))
                },
            )
            .await?;
        Ok(Response::new(v1::BindToolsetsResponse {
            profile: Some(profile),
        }))
    }

    async fn unbind_toolsets(
        &self,
        request: Request<v1::UnbindToolsetsRequest>,
    ) -> Result<Response<v1::UnbindToolsetsResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let (id, ids) = profile_toolsets(&req.profile_id, &req.toolset_ids, "")?;
        let profile = self
            .edit_profile(
                actor,
                Target {
                    id: &id,
                    expected_revision: req.expected_revision,
                },
                Action::ProfileUnbindToolsets,
                |_, mut profile| async move {
                    edit::unbind_toolsets(&mut profile, &ids);
                    Ok((
                        profile,
                        format!("unbound toolsets {}", ids.join(", ")),
                        json!({"toolset_ids": ids}),
                    ))
                },
            )
            .await?;
        Ok(Response::new(v1::UnbindToolsetsResponse {
            profile: Some(profile),
        }))
    }

    async fn grant_user(
        &self,
        request: Request<v1::GrantUserRequest>,
    ) -> Result<Response<v1::GrantUserResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let now = now_ms();
        let (id, user_id, expires_at) = grant_request(&req, "", now)?;
        let granted_by = actor.clone();
        let profile = self
            .edit_profile(
                actor,
                Target {
                    id: &id,
                    expected_revision: req.expected_revision,
                },
                Action::ProfileGrant,
                |store, mut profile| async move {
                    let user = store
                        .get::<User>(&user_id)
                        .await?
                        .ok_or_else(|| ControlError::not_found("user", &user_id))?;
                    edit::grant(
                        &mut profile,
                        Grant {
                            user_id: user_id.clone(),
                            granted_at: now,
                            expires_at,
                            granted_by,
                        },
                    );
                    let reason = format!("granted {:?} to {}", profile.name, user.email);
                    Ok((
                        profile,
                        reason,
                        json!({"user_id": user_id, "email": user.email, "expires_at": expires_at}),
                    ))
                },
            )
            .await?;
        Ok(Response::new(v1::GrantUserResponse {
            profile: Some(profile),
        }))
    }

    async fn revoke_user(
        &self,
        request: Request<v1::RevokeUserRequest>,
    ) -> Result<Response<v1::RevokeUserResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let (id, user_id) = revoke_request(&req, "")?;
        let profile = self
            .edit_profile(
                actor,
                Target {
                    id: &id,
                    expected_revision: req.expected_revision,
                },
                Action::ProfileRevoke,
                |_, mut profile| async move {
                    edit::revoke(&mut profile, &user_id)?;
                    let reason = format!("revoked {:?} from user {user_id}", profile.name);
                    Ok((profile, reason, json!({"user_id": user_id})))
                },
            )
            .await?;
        Ok(Response::new(v1::RevokeUserResponse {
            profile: Some(profile),
        }))
    }

    async fn preview_access_change(
        &self,
        request: Request<v1::PreviewAccessChangeRequest>,
    ) -> Result<Response<v1::PreviewAccessChangeResponse>, Status> {
        let actor = actor(&request);
        let preview = self.preview_access(&actor, request.get_ref()).await?;
        Ok(Response::new(preview))
    }
}
