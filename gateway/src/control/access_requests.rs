//! `AccessRequestService`: admins list, read, open (on a user's behalf),
//! approve and deny access requests. Proto conversion only; the rules and
//! writes are in [`crate::access_requests`].

use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::access_request_service_server::AccessRequestService;

use super::Control;
use super::auth::actor;
use super::clients::{decode_page_token, encode_page_token};
use super::convert::{opt_timestamp, timestamp};
use super::error::{ControlError, Result};
use super::validate;
use crate::access_requests::{self as requests, Ask, RequestError};
use crate::model::{AccessProfile, AccessRequest, AccessRequestState, User};
use crate::store::Tx;

impl From<RequestError> for ControlError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::Invalid { field, message } => ControlError::invalid(field, message),
            RequestError::NotFound { kind, id } => ControlError::not_found(kind, id),
            RequestError::Precondition(message) => ControlError::FailedPrecondition(message),
            RequestError::Aborted(message) => ControlError::Aborted(message),
            RequestError::Store(err) => ControlError::Store(err),
        }
    }
}

fn state_to_proto(state: AccessRequestState) -> v1::AccessRequestState {
    match state {
        AccessRequestState::Pending => v1::AccessRequestState::Pending,
        AccessRequestState::Approved => v1::AccessRequestState::Approved,
        AccessRequestState::Denied => v1::AccessRequestState::Denied,
        AccessRequestState::Expired => v1::AccessRequestState::Expired,
    }
}

/// A state filter: unspecified is `None` (any).
///
/// Errors: `INVALID_ARGUMENT` naming `state` for an unknown value.
fn state_filter(value: i32) -> Result<Option<AccessRequestState>> {
    match v1::AccessRequestState::try_from(value) {
        Ok(v1::AccessRequestState::Unspecified) => Ok(None),
        Ok(v1::AccessRequestState::Pending) => Ok(Some(AccessRequestState::Pending)),
        Ok(v1::AccessRequestState::Approved) => Ok(Some(AccessRequestState::Approved)),
        Ok(v1::AccessRequestState::Denied) => Ok(Some(AccessRequestState::Denied)),
        Ok(v1::AccessRequestState::Expired) => Ok(Some(AccessRequestState::Expired)),
        Err(_) => Err(ControlError::invalid(
            "state",
            format!("unknown access request state {value}"),
        )),
    }
}

/// The proto view of `r`, with the user's email and the profile's name
/// (empty when they are gone).
async fn to_proto(tx: &Tx<'_>, r: &AccessRequest) -> Result<v1::AccessRequest> {
    let email = tx
        .get::<User>(&r.user_id)
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    let profile = tx
        .get::<AccessProfile>(&r.profile_id)
        .await?
        .map(|p| p.name)
        .unwrap_or_default();
    Ok(v1::AccessRequest {
        id: r.id.clone(),
        user_id: r.user_id.clone(),
        user_email: email,
        profile_id: r.profile_id.clone(),
        profile_name: profile,
        reason: r.reason.clone(),
        tool: r.tool.clone().unwrap_or_default(),
        state: state_to_proto(r.state).into(),
        requested_duration_secs: r.requested_duration_secs,
        granted_duration_secs: r.granted_duration_secs,
        created_at: Some(timestamp(r.created_at)),
        expires_at: Some(timestamp(r.expires_at)),
        decided_at: opt_timestamp(r.decided_at),
        decided_by: r.decided_by.clone(),
        decision_reason: r.decision_reason.clone(),
        revision: r.revision,
    })
}

impl Control {
    async fn request_view(&self, r: &AccessRequest) -> Result<v1::AccessRequest> {
        to_proto(&self.store.reader(), r).await
    }
}

#[tonic::async_trait]
impl AccessRequestService for Control {
    async fn list_access_requests(
        &self,
        request: Request<v1::ListAccessRequestsRequest>,
    ) -> Result<Response<v1::ListAccessRequestsResponse>, Status> {
        let req = request.into_inner();
        let page_size = validate::page_size("page_size", req.page_size, 100, 1000)?;
        let state = state_filter(req.state)?;
        let before = if req.page_token.is_empty() {
            None
        } else {
            Some(decode_page_token(&req.page_token)?)
        };
        let user_id = req.user_id.trim();
        let profile_id = req.profile_id.trim();
        let tx = self.store.reader();
        let all: Vec<AccessRequest> = tx.list().await.map_err(ControlError::from)?;
        let pending_count = all
            .iter()
            .filter(|r| r.state == AccessRequestState::Pending)
            .count();
        let mut matching: Vec<AccessRequest> = all
            .into_iter()
            .filter(|r| state.is_none_or(|s| r.state == s))
            .filter(|r| user_id.is_empty() || r.user_id == user_id)
            .filter(|r| profile_id.is_empty() || r.profile_id == profile_id)
            .collect();
        // Ids are UUID v7 (time-ordered): descending id is newest first.
        matching.sort_by(|a, b| b.id.cmp(&a.id));
        let start = match &before {
            Some(last) => matching.partition_point(|r| r.id.as_str() >= last.as_str()),
            None => 0,
        };
        let rest = matching.len().saturating_sub(start);
        let page: Vec<AccessRequest> = matching.into_iter().skip(start).take(page_size).collect();
        let next_page_token = match page.last() {
            Some(last) if rest > page_size => encode_page_token(&last.id),
            _ => String::new(),
        };
        let mut requests = Vec::with_capacity(page.len());
        for r in &page {
            requests.push(to_proto(&tx, r).await?);
        }
        Ok(Response::new(v1::ListAccessRequestsResponse {
            requests,
            next_page_token,
            pending_count: u32::try_from(pending_count).unwrap_or(u32::MAX),
        }))
    }

    async fn get_access_request(
        &self,
        request: Request<v1::GetAccessRequestRequest>,
    ) -> Result<Response<v1::GetAccessRequestResponse>, Status> {
        let id = validate::id("id", &request.get_ref().id)?;
        let tx = self.store.reader();
        let found = tx
            .get::<AccessRequest>(id)
            .await
            .map_err(ControlError::from)?
            .ok_or_else(|| ControlError::not_found("access request", id))?;
        Ok(Response::new(v1::GetAccessRequestResponse {
            request: Some(to_proto(&tx, &found).await?),
        }))
    }

    async fn create_access_request(
        &self,
        request: Request<v1::CreateAccessRequestRequest>,
    ) -> Result<Response<v1::CreateAccessRequestResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let user_id = validate::id("user_id", &req.user_id)?;
        let profile_id = validate::id("profile_id", &req.profile_id)?;
        requests::check_reason("reason", &req.reason, false).map_err(ControlError::from)?;
        let opened = requests::open(
            &self.store,
            &actor,
            Ask {
                user_id,
                profile_id,
                reason: req.reason.trim(),
                duration_secs: req.duration_secs,
                tool: None,
            },
        )
        .await
        .map_err(ControlError::from)?;
        Ok(Response::new(v1::CreateAccessRequestResponse {
            request: Some(self.request_view(&opened.request).await?),
            created: opened.created,
        }))
    }

    async fn approve_access_request(
        &self,
        request: Request<v1::ApproveAccessRequestRequest>,
    ) -> Result<Response<v1::ApproveAccessRequestResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let id = validate::id("id", &req.id)?;
        let approved = requests::approve(
            &self.store,
            &actor,
            id,
            req.duration_secs,
            req.expected_revision,
        )
        .await
        .map_err(ControlError::from)?;
        Ok(Response::new(v1::ApproveAccessRequestResponse {
            request: Some(self.request_view(&approved).await?),
        }))
    }

    async fn deny_access_request(
        &self,
        request: Request<v1::DenyAccessRequestRequest>,
    ) -> Result<Response<v1::DenyAccessRequestResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let id = validate::id("id", &req.id)?;
        let denied = requests::deny(&self.store, &actor, id, &req.reason, req.expected_revision)
            .await
            .map_err(ControlError::from)?;
        Ok(Response::new(v1::DenyAccessRequestResponse {
            request: Some(self.request_view(&denied).await?),
        }))
    }
}
