//! `AccessProfileService.PreviewAccessChange`: proto conversion around
//! [`crate::governance::impact::preview`]. Each nested request is
//! validated by the same function its own RPC uses, so the preview refuses
//! what the write would refuse, with the field named as
//! `changes[i].<request>.<field>`.

use toolgate_proto::v1;
use v1::access_change::Change as Proto;

use super::Control;
use super::access_profiles::{grant_request, profile_toolsets, revoke_request};
use super::error::{ControlError, Result};
use super::tools::{batch_states, tool_edit};
use super::toolsets::toolset_tools;
use crate::governance::impact::{self, Change, Impact, Policy, ProfileImpact, ToolCount};
use crate::model::{Millis, now_ms};

/// At most this many changes per preview.
const MAX_CHANGES: usize = 1000;

/// One proto change to the domain change; `at` is its index.
fn change_from_proto(at: usize, change: &v1::AccessChange, now: Millis) -> Result<Change> {
    let field = |request: &str| format!("changes[{at}].{request}.");
    Ok(match &change.change {
        None => {
            return Err(ControlError::invalid(
                format!("changes[{at}]"),
                "sets no change (one of update_tool, batch_update_tools, add_toolset_tools, remove_toolset_tools, bind_toolsets, unbind_toolsets, grant_user, revoke_user)",
            ));
        }
        Some(Proto::UpdateTool(r)) => Change::UpdateTool(tool_edit(r, &field("update_tool"))?),
        Some(Proto::BatchUpdateTools(r)) => {
            let (ids, state) = batch_states(r, &field("batch_update_tools"))?;
            Change::SetToolStates { ids, state }
        }
        Some(Proto::AddToolsetTools(r)) => {
            let (toolset_id, tool_ids) =
                toolset_tools(&r.toolset_id, &r.tool_ids, &field("add_toolset_tools"))?;
            Change::AddToolsetTools {
                toolset_id,
                tool_ids,
            }
        }
        Some(Proto::RemoveToolsetTools(r)) => {
            let (toolset_id, tool_ids) =
                toolset_tools(&r.toolset_id, &r.tool_ids, &field("remove_toolset_tools"))?;
            Change::RemoveToolsetTools {
                toolset_id,
                tool_ids,
            }
        }
        Some(Proto::BindToolsets(r)) => {
            let (profile_id, toolset_ids) =
                profile_toolsets(&r.profile_id, &r.toolset_ids, &field("bind_toolsets"))?;
            Change::BindToolsets {
                profile_id,
                toolset_ids,
            }
        }
        Some(Proto::UnbindToolsets(r)) => {
            let (profile_id, toolset_ids) =
                profile_toolsets(&r.profile_id, &r.toolset_ids, &field("unbind_toolsets"))?;
            Change::UnbindToolsets {
                profile_id,
                toolset_ids,
            }
        }
        Some(Proto::GrantUser(r)) => {
            let (profile_id, user_id, expires_at) = grant_request(r, &field("grant_user"), now)?;
            Change::GrantUser {
                profile_id,
                user_id,
                expires_at,
            }
        }
        Some(Proto::RevokeUser(r)) => {
            let (profile_id, user_id) = revoke_request(r, &field("revoke_user"))?;
            Change::RevokeUser {
                profile_id,
                user_id,
            }
        }
    })
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn counts_to_proto(counts: &[ToolCount]) -> Vec<v1::ToolAccessCount> {
    counts
        .iter()
        .map(|c| v1::ToolAccessCount {
            tool_id: c.tool_id.clone(),
            tool_name: c.tool_name.clone(),
            users: count(c.users),
        })
        .collect()
}

fn profile_to_proto(p: &ProfileImpact) -> v1::ProfileAccessChange {
    v1::ProfileAccessChange {
        profile_id: p.profile_id.clone(),
        profile_name: p.profile_name.clone(),
        gained: counts_to_proto(&p.gained),
        lost: counts_to_proto(&p.lost),
        users_gaining: count(p.users_gaining),
        users_losing: count(p.users_losing),
    }
}

fn impact_to_proto(impact: &Impact) -> v1::PreviewAccessChangeResponse {
    v1::PreviewAccessChangeResponse {
        profiles: impact.profiles.iter().map(profile_to_proto).collect(),
        users_gaining: count(impact.users_gaining),
        users_losing: count(impact.users_losing),
    }
}

impl Control {
    /// A consistent read of the policy records: one snapshot
    /// ([`crate::store::Store::snapshot`]), so a change that lands
    /// mid-read, on any replica, is wholly in it or wholly not.
    async fn policy(&self) -> Result<Policy> {
        let snapshot = self.store.snapshot().await?;
        Ok(Policy {
            settings: snapshot.settings().await?,
            servers: snapshot.list().await?,
            tools: snapshot.list().await?,
            toolsets: snapshot.list().await?,
            profiles: snapshot.list().await?,
            users: snapshot.list().await?,
        })
    }

    /// Answers `PreviewAccessChange` for `actor` (recorded on the copy only).
    pub(super) async fn preview_access(
        &self,
        actor: &str,
        req: &v1::PreviewAccessChangeRequest,
    ) -> Result<v1::PreviewAccessChangeResponse> {
        if req.changes.is_empty() {
            return Err(ControlError::invalid(
                "changes",
                "must hold at least one change",
            ));
        }
        if req.changes.len() > MAX_CHANGES {
            return Err(ControlError::invalid(
                "changes",
                format!("at most {MAX_CHANGES} changes per preview"),
            ));
        }
        let now = now_ms();
        let changes = req
            .changes
            .iter()
            .enumerate()
            .map(|(at, c)| change_from_proto(at, c, now))
            .collect::<Result<Vec<_>>>()?;
        let impact = impact::preview(&self.policy().await?, &changes, actor, now)?;
        Ok(impact_to_proto(&impact))
    }
}
