//! `HeldCallService`: tool calls held for a person's approval, one call at
//! a time (see [`crate::mcp::held_calls`] for how a call is held and how
//! its retry runs): list, read with the arguments exactly as they will be
//! sent, approve (the client's next retry with the same arguments runs
//! once) and deny with a reason. Each decision is one write with one audit
//! event on `held_call/<id>`.

use std::collections::HashMap;

use serde_json::json;
use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::held_call_service_server::HeldCallService;

use super::Control;
use super::auth::actor;
use super::clients::{decode_page_token, encode_page_token};
use super::convert::{opt_timestamp, timestamp};
use super::error::{ControlError, Result, require};
use super::validate;
use crate::audit::Action;
use crate::model::{AiClient, AuditEvent, HeldCall, HeldCallState, User, now_ms};
use crate::store::{Batch, Tx};

/// The longest denial reason, in characters.
const MAX_REASON_CHARS: usize = 500;

fn state_to_proto(s: HeldCallState) -> v1::HeldCallState {
    match s {
        HeldCallState::Pending => v1::HeldCallState::Pending,
        HeldCallState::Approved => v1::HeldCallState::Approved,
        HeldCallState::Denied => v1::HeldCallState::Denied,
        HeldCallState::Expired => v1::HeldCallState::Expired,
        HeldCallState::Used => v1::HeldCallState::Used,
    }
}

/// A filter state: `None` for unspecified; unknown values are
/// `INVALID_ARGUMENT` naming `field`.
fn state_filter(value: i32, field: &str) -> Result<Option<HeldCallState>> {
    match v1::HeldCallState::try_from(value) {
        Ok(v1::HeldCallState::Unspecified) => Ok(None),
        Ok(v1::HeldCallState::Pending) => Ok(Some(HeldCallState::Pending)),
        Ok(v1::HeldCallState::Approved) => Ok(Some(HeldCallState::Approved)),
        Ok(v1::HeldCallState::Denied) => Ok(Some(HeldCallState::Denied)),
        Ok(v1::HeldCallState::Expired) => Ok(Some(HeldCallState::Expired)),
        Ok(v1::HeldCallState::Used) => Ok(Some(HeldCallState::Used)),
        Err(_) => Err(ControlError::invalid(
            field,
            "must be a HELD_CALL_STATE_* value (or unspecified for all)",
        )),
    }
}

fn state_name(s: HeldCallState) -> &'static str {
    match s {
        HeldCallState::Pending => "PENDING",
        HeldCallState::Approved => "APPROVED",
        HeldCallState::Denied => "DENIED",
        HeldCallState::Expired => "EXPIRED",
        HeldCallState::Used => "USED",
    }
}

/// What a held call's proto form needs besides the record: user emails
/// and client names.
#[derive(Debug, Default)]
struct Names {
    emails: HashMap<String, String>,
    clients: HashMap<String, String>,
}

impl Names {
    async fn read(tx: &Tx<'_>, calls: &[HeldCall]) -> Result<Self> {
        let mut names = Self::default();
        if calls.is_empty() {
            return Ok(names);
        }
        names.emails = tx
            .list::<User>()
            .await?
            .into_iter()
            .map(|u| (u.id, u.email))
            .collect();
        for call in calls {
            if !names.clients.contains_key(&call.ai_client_id)
                && let Some(client) = tx.get::<AiClient>(&call.ai_client_id).await?
            {
                names.clients.insert(client.id, client.name);
            }
        }
        Ok(names)
    }

    fn to_proto(&self, c: &HeldCall, arguments_json: String) -> v1::HeldCall {
        v1::HeldCall {
            id: c.id.clone(),
            user_id: c.user_id.clone(),
            user_email: self.emails.get(&c.user_id).cloned().unwrap_or_default(),
            client_id: c.ai_client_id.clone(),
            client_name: self
                .clients
                .get(&c.ai_client_id)
                .cloned()
                .unwrap_or_default(),
            tool: c.tool.clone(),
            server_id: c.server_id.clone(),
            arguments_json,
            arguments_digest: c.arguments_digest.clone(),
            state: state_to_proto(c.state).into(),
            created_at: Some(timestamp(c.created_at)),
            expires_at: Some(timestamp(c.expires_at)),
            decided_at: opt_timestamp(c.decided_at),
            decided_by: c.decided_by.clone(),
            decision_reason: c.decision_reason.clone(),
            used_at: opt_timestamp(c.used_at),
            revision: c.revision,
        }
    }
}

/// The sealed arguments of `id` as JSON text; empty once they were dropped
/// (the call is done).
async fn arguments(tx: &Tx<'_>, id: &str) -> Result<String> {
    Ok(tx
        .secret(&HeldCall::arguments_key(id))
        .await?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default())
}

/// A decision on one held call.
#[derive(Debug)]
enum Decision {
    Approve,
    Deny(String),
}

impl Control {
    /// Applies `decision` to pending held call `id` in one write with one
    /// audit event; answers the call after it with its arguments.
    async fn decide(
        &self,
        actor: &str,
        id: &str,
        decision: Decision,
        expected_revision: Option<u64>,
    ) -> Result<v1::HeldCall> {
        let decision = &decision;
        self.store
            .write(|tx| async move {
                let now = now_ms();
                let before = require::<HeldCall>(&tx, id).await?;
                if let Some(expected) = expected_revision
                    && expected != before.revision
                {
                    return Err(ControlError::Aborted(format!(
                        "held call {id} changed since you read it (revision {expected}, now {}); read it again and retry",
                        before.revision
                    )));
                }
                if before.state != HeldCallState::Pending {
                    return Err(ControlError::FailedPrecondition(format!(
                        "held call {id} is {}, not PENDING; only a pending call can be decided",
                        state_name(before.state)
                    )));
                }
                if before.expires_at <= now {
                    return Err(ControlError::FailedPrecondition(format!(
                        "held call {id} has expired; the client must call the tool again to hold it anew"
                    )));
                }
                let args = arguments(&tx, id).await?;
                let mut after = before.clone();
                after.decided_at = Some(now);
                after.decided_by = actor.to_owned();
                after.revision += 1;
                let mut batch = Batch::default();
                let event = match decision {
                    Decision::Approve => {
                        let ttl = tx.settings().await?.governance.held_call_ttl_secs;
                        let ttl_ms = i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX);
                        after.state = HeldCallState::Approved;
                        after.expires_at = now.saturating_add(ttl_ms);
                        AuditEvent::allowed(actor, Action::HeldCallApprove, format!("held_call/{id}"))
                            .with_reason(format!(
                                "call of {} approved; the retry with the same arguments runs once",
                                after.tool
                            ))
                    }
                    Decision::Deny(reason) => {
                        after.state = HeldCallState::Denied;
                        after.decision_reason.clone_from(reason);
                        batch.delete_secret(&HeldCall::arguments_key(id));
                        AuditEvent::allowed(actor, Action::HeldCallDeny, format!("held_call/{id}"))
                            .with_reason(format!("call of {} denied: {reason}", after.tool))
                    }
                };
                batch.put(&after);
                batch.audit(event.with_details(json!({
                    "user_id": after.user_id,
                    "tool": after.tool,
                    "server_id": after.server_id,
                    "client_id": after.ai_client_id,
                    "arguments_digest": after.arguments_digest,
                    "state": after.state,
                    "expires_at": after.expires_at,
                })));
                let names = Names::read(&tx, std::slice::from_ref(&after)).await?;
                Ok::<_, ControlError>((batch, names.to_proto(&after, args)))
            })
            .await
    }
}

#[tonic::async_trait]
impl HeldCallService for Control {
    async fn list_held_calls(
        &self,
        request: Request<v1::ListHeldCallsRequest>,
    ) -> std::result::Result<Response<v1::ListHeldCallsResponse>, Status> {
        let req = request.into_inner();
        let page_size = validate::page_size("page_size", req.page_size, 100, 1000)?;
        let state = state_filter(req.state, "state")?;
        let user = req.user_id.trim();
        let after = if req.page_token.is_empty() {
            None
        } else {
            Some(decode_page_token(&req.page_token)?)
        };
        let tx = self.store.reader();
        let all = tx.list::<HeldCall>().await.map_err(ControlError::from)?;
        let now = now_ms();
        let pending_count = all
            .iter()
            .filter(|c| c.state == HeldCallState::Pending && c.expires_at > now)
            .count();
        let mut matching: Vec<HeldCall> = all
            .into_iter()
            .filter(|c| user.is_empty() || c.user_id == user)
            .filter(|c| state.is_none_or(|s| c.state == s))
            .collect();
        // Ids are UUID v7 (time-ordered): descending id is newest first.
        matching.sort_by(|a, b| b.id.cmp(&a.id));
        let start = match &after {
            Some(last) => matching.partition_point(|c| c.id.as_str() >= last.as_str()),
            None => 0,
        };
        let page: Vec<HeldCall> = matching.into_iter().skip(start).collect();
        let more = page.len() > page_size;
        let page: Vec<HeldCall> = page.into_iter().take(page_size).collect();
        let next_page_token = match page.last() {
            Some(last) if more => encode_page_token(&last.id),
            _ => String::new(),
        };
        let names = Names::read(&tx, &page).await?;
        Ok(Response::new(v1::ListHeldCallsResponse {
            held_calls: page
                .iter()
                .map(|c| names.to_proto(c, String::new()))
                .collect(),
            next_page_token,
            pending_count: u32::try_from(pending_count).unwrap_or(u32::MAX),
        }))
    }

    async fn get_held_call(
        &self,
        request: Request<v1::GetHeldCallRequest>,
    ) -> std::result::Result<Response<v1::GetHeldCallResponse>, Status> {
        let id = validate::id("id", &request.get_ref().id)?;
        let tx = self.store.reader();
        let call = require::<HeldCall>(&tx, id).await?;
        let args = arguments(&tx, id).await?;
        let names = Names::read(&tx, std::slice::from_ref(&call)).await?;
        Ok(Response::new(v1::GetHeldCallResponse {
            held_call: Some(names.to_proto(&call, args)),
        }))
    }

    async fn approve_held_call(
        &self,
        request: Request<v1::ApproveHeldCallRequest>,
    ) -> std::result::Result<Response<v1::ApproveHeldCallResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let id = validate::id("id", &req.id)?;
        let held = self
            .decide(&actor, id, Decision::Approve, req.expected_revision)
            .await?;
        Ok(Response::new(v1::ApproveHeldCallResponse {
            held_call: Some(held),
        }))
    }

    async fn deny_held_call(
        &self,
        request: Request<v1::DenyHeldCallRequest>,
    ) -> std::result::Result<Response<v1::DenyHeldCallResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let id = validate::id("id", &req.id)?;
        let reason = req.reason.trim();
        if reason.is_empty() {
            return Err(
                ControlError::invalid("reason", "is required: say why the call is denied").into(),
            );
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(ControlError::invalid(
                "reason",
                format!("must be at most {MAX_REASON_CHARS} characters"),
            )
            .into());
        }
        let held = self
            .decide(
                &actor,
                id,
                Decision::Deny(reason.to_owned()),
                req.expected_revision,
            )
            .await?;
        Ok(Response::new(v1::DenyHeldCallResponse {
            held_call: Some(held),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map_both_ways_and_unknown_filters_are_refused() {
        for s in [
            HeldCallState::Pending,
            HeldCallState::Approved,
            HeldCallState::Denied,
            HeldCallState::Expired,
            HeldCallState::Used,
        ] {
            assert_eq!(
                state_filter(state_to_proto(s).into(), "state").unwrap(),
                Some(s)
            );
        }
        assert_eq!(state_filter(0, "state").unwrap(), None);
        let err = state_filter(42, "state").unwrap_err();
        assert!(err.to_string().starts_with("state:"), "{err}");
    }
}
