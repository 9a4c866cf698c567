//! The access preview: what a proposed admin change would do to who may call
//! what, before it is made.
//!
//! [`preview`] applies the changes to an in-memory copy of the policy state
//! with the same edits the control API's writes use ([`super::edit`]), then
//! asks [`super::allowed_positions`] (the rule [`super::decide`] states)
//! for every user's tools before and after, and answers per access profile
//! which tools its users gain or lose and how many. Maintained toolsets
//! ("All approved", "Read only") need no special case: their members are
//! computed from the tools' state and classification by
//! [`super::toolset_contains`], before and after alike. Nothing here writes,
//! audits or reads a clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::edit::{self, EditError, ToolEdit};
use super::{Subject, ToolIndex, allowed_positions, toolset_contains};
use crate::model::{
    AccessProfile, Grant, Millis, Server, Settings, Tool, ToolState, Toolset, User,
};

/// The records policy depends on, owned so a change can be tried on a copy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Gateway settings.
    pub settings: Settings,
    /// Every server.
    pub servers: Vec<Server>,
    /// Every tool.
    pub tools: Vec<Tool>,
    /// Every toolset, custom and maintained.
    pub toolsets: Vec<Toolset>,
    /// Every access profile with its grants.
    pub profiles: Vec<AccessProfile>,
    /// Every user.
    pub users: Vec<User>,
}

/// One proposed change, as the matching control API write takes it (ids
/// and values already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `ToolService.UpdateTool`.
    UpdateTool(ToolEdit),
    /// `ToolService.BatchUpdateTools`: one state for every listed tool.
    SetToolStates {
        /// Tool ids.
        ids: Vec<String>,
        /// The new state (never REMOVED).
        state: ToolState,
    },
    /// `ToolsetService.AddToolsetTools`.
    AddToolsetTools {
        /// Custom toolset id.
        toolset_id: String,
        /// Tool ids, each APPROVED.
        tool_ids: Vec<String>,
    },
    /// `ToolsetService.RemoveToolsetTools`.
    RemoveToolsetTools {
        /// Custom toolset id.
        toolset_id: String,
        /// Tool ids.
        tool_ids: Vec<String>,
    },
    /// `AccessProfileService.BindToolsets`.
    BindToolsets {
        /// Profile id.
        profile_id: String,
        /// Toolset ids, each existing.
        toolset_ids: Vec<String>,
    },
    /// `AccessProfileService.UnbindToolsets`.
    UnbindToolsets {
        /// Profile id.
        profile_id: String,
        /// Toolset ids.
        toolset_ids: Vec<String>,
    },
    /// `AccessProfileService.GrantUser`.
    GrantUser {
        /// Profile id.
        profile_id: String,
        /// User id.
        user_id: String,
        /// End of the grant, Unix ms; `None`: never.
        expires_at: Option<Millis>,
    },
    /// `AccessProfileService.RevokeUser`.
    RevokeUser {
        /// Profile id.
        profile_id: String,
        /// User id.
        user_id: String,
    },
}

/// How many users of one profile gain or lose one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCount {
    /// Tool id.
    pub tool_id: String,
    /// Its exposed name.
    pub tool_name: String,
    /// How many users.
    pub users: usize,
}

/// What one access profile's users gain or lose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileImpact {
    /// Profile id.
    pub profile_id: String,
    /// Its name.
    pub profile_name: String,
    /// Tools its users gain through it, by exposed name.
    pub gained: Vec<ToolCount>,
    /// Tools its users lose that it gave them, by exposed name.
    pub lost: Vec<ToolCount>,
    /// Its users who gain at least one tool through it.
    pub users_gaining: usize,
    /// Its users who lose at least one tool it gave them.
    pub users_losing: usize,
}

/// What a change does to who may call what.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impact {
    /// Profiles through which someone gains or loses a tool, by name.
    pub profiles: Vec<ProfileImpact>,
    /// Users who gain at least one tool.
    pub users_gaining: usize,
    /// Users who lose at least one tool.
    pub users_losing: usize,
}

impl Policy {
    fn tool_mut(&mut self, id: &str) -> Result<&mut Tool, EditError> {
        self.tools
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| EditError::not_found("tool", id))
    }

    fn toolset_mut(&mut self, id: &str) -> Result<&mut Toolset, EditError> {
        self.toolsets
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| EditError::not_found("toolset", id))
    }

    fn profile_mut(&mut self, id: &str) -> Result<&mut AccessProfile, EditError> {
        self.profiles
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(|| EditError::not_found("access profile", id))
    }

    /// Applies `change` as its control API write would, with the same
    /// checks (in the same order) and the same errors.
    ///
    /// Errors: [`EditError::NotFound`] for an unknown tool, toolset,
    /// profile, user or grant; [`EditError::Refused`] for a REMOVED tool's
    /// state, a maintained toolset, or adding a tool that is not APPROVED.
    pub fn apply(&mut self, change: &Change, actor: &str, now: Millis) -> Result<(), EditError> {
        match change {
            Change::UpdateTool(e) => {
                let tool = self.tool_mut(&e.id)?;
                if let Some(state) = e.state {
                    edit::set_state(tool, state, actor, now)?;
                }
                if let Some(c) = e.classification {
                    edit::classify(tool, c, actor, now);
                }
            }
            Change::SetToolStates { ids, state } => {
                // Up to 10,000 ids: find each by index, not by a scan.
                let at: HashMap<String, usize> = self
                    .tools
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.id.clone(), i))
                    .collect();
                for id in ids {
                    let i = *at.get(id).ok_or_else(|| EditError::not_found("tool", id))?;
                    edit::set_state(&mut self.tools[i], *state, actor, now)?;
                }
            }
            Change::AddToolsetTools {
                toolset_id,
                tool_ids,
            } => {
                edit::require_custom(self.toolset_mut(toolset_id)?)?;
                let mut tools = Vec::with_capacity(tool_ids.len());
                for id in tool_ids {
                    let tool = self
                        .tools
                        .iter()
                        .find(|t| t.id == *id)
                        .ok_or_else(|| EditError::not_found("tool", id))?;
                    edit::require_addable(tool)?;
                    tools.push(tool.clone());
                }
                edit::add_tools(self.toolset_mut(toolset_id)?, &tools);
            }
            Change::RemoveToolsetTools {
                toolset_id,
                tool_ids,
            } => {
                let toolset = self.toolset_mut(toolset_id)?;
                edit::require_custom(toolset)?;
                edit::remove_tools(toolset, tool_ids);
            }
            Change::BindToolsets {
                profile_id,
                toolset_ids,
            } => {
                self.profile_mut(profile_id)?;
                if let Some(missing) = toolset_ids
                    .iter()
                    .find(|id| !self.toolsets.iter().any(|t| t.id == **id))
                {
                    return Err(EditError::not_found("toolset", missing));
                }
                edit::bind_toolsets(self.profile_mut(profile_id)?, toolset_ids);
            }
            Change::UnbindToolsets {
                profile_id,
                toolset_ids,
            } => edit::unbind_toolsets(self.profile_mut(profile_id)?, toolset_ids),
            Change::GrantUser {
                profile_id,
                user_id,
                expires_at,
            } => {
                self.profile_mut(profile_id)?;
                if !self.users.iter().any(|u| u.id == *user_id) {
                    return Err(EditError::not_found("user", user_id));
                }
                let grant = Grant {
                    user_id: user_id.clone(),
                    granted_at: now,
                    expires_at: *expires_at,
                    granted_by: actor.to_owned(),
                };
                edit::grant(self.profile_mut(profile_id)?, grant);
            }
            Change::RevokeUser {
                profile_id,
                user_id,
            } => edit::revoke(self.profile_mut(profile_id)?, user_id)?,
        }
        Ok(())
    }

    /// The ids of the tools each user may call at `now`, by user id.
    ///
    /// The MCP traffic kill switch is read as on: a preview says what a
    /// change grants, not what an emergency stop hides for the moment.
    ///
    /// Each user's subject holds only the profiles they hold a grant of,
    /// each with only their own grants: [`super::decide`] reads nothing
    /// else of the profiles (as [`allowed_positions`] itself narrows), and
    /// without it a profile granted to 1,000 users made every user's answer
    /// scan 1,000 grants per tool (the `counts_hold_at_scale` test took
    /// 14 s in a debug build; 2.3 s with this).
    fn allowed_by_user(&self, now: Millis) -> HashMap<&str, BTreeSet<&str>> {
        let settings = Settings {
            mcp_traffic_enabled: true,
            ..self.settings.clone()
        };
        let index = ToolIndex::new(&self.tools);
        let mut held: HashMap<&str, Vec<AccessProfile>> = HashMap::new();
        for profile in &self.profiles {
            for grant in &profile.grants {
                let own = held.entry(grant.user_id.as_str()).or_default();
                match own.last_mut() {
                    Some(last) if last.id == profile.id => last.grants.push(grant.clone()),
                    _ => own.push(AccessProfile {
                        grants: vec![grant.clone()],
                        ..without_grants(profile)
                    }),
                }
            }
        }
        self.users
            .iter()
            .map(|user| {
                let Some(profiles) = held.get(user.id.as_str()) else {
                    return (user.id.as_str(), BTreeSet::new());
                };
                let subject = Subject {
                    user,
                    token: None,
                    profiles,
                    toolsets: &self.toolsets,
                    now,
                };
                let allowed =
                    allowed_positions(&settings, &self.servers, &self.tools, &index, &subject)
                        .into_iter()
                        .map(|i| self.tools[i].id.as_str())
                        .collect();
                (user.id.as_str(), allowed)
            })
            .collect()
    }
}

/// `profile` with no grants (cheap to copy when it has many).
fn without_grants(profile: &AccessProfile) -> AccessProfile {
    AccessProfile {
        revision: profile.revision,
        id: profile.id.clone(),
        name: profile.name.clone(),
        description: String::new(),
        toolset_ids: profile.toolset_ids.clone(),
        grants: Vec::new(),
        created_at: profile.created_at,
        updated_at: profile.updated_at,
        obtain: profile.obtain,
        max_request_duration_secs: profile.max_request_duration_secs,
    }
}

/// Who gives whom what in one policy state: for a user's tool, the
/// profiles that give it to them (a live grant, and a bound toolset that
/// contains the tool), as [`super::decide`]'s grant check reads them.
/// Indexed once, so attributing N gained tools costs N lookups, not N scans
/// of every tool and profile.
struct Givers<'p> {
    tools: HashMap<&'p str, &'p Tool>,
    /// User id -> each profile they hold a live grant of, with its bound
    /// toolsets.
    held: HashMap<&'p str, Vec<(&'p AccessProfile, Vec<&'p Toolset>)>>,
}

impl<'p> Givers<'p> {
    fn new(policy: &'p Policy, now: Millis) -> Self {
        let toolsets: HashMap<&str, &Toolset> =
            policy.toolsets.iter().map(|t| (t.id.as_str(), t)).collect();
        let mut held: HashMap<&str, Vec<(&AccessProfile, Vec<&Toolset>)>> = HashMap::new();
        for profile in &policy.profiles {
            let bound: Vec<&Toolset> = profile
                .toolset_ids
                .iter()
                .filter_map(|id| toolsets.get(id.as_str()).copied())
                .collect();
            for grant in &profile.grants {
                if grant.expires_at.is_none_or(|end| end > now) {
                    held.entry(grant.user_id.as_str())
                        .or_default()
                        .push((profile, bound.clone()));
                }
            }
        }
        Self {
            tools: policy.tools.iter().map(|t| (t.id.as_str(), t)).collect(),
            held,
        }
    }

    /// The profiles that give `user_id` the tool `tool_id`.
    fn of(&self, user_id: &str, tool_id: &str) -> Vec<&'p AccessProfile> {
        let (Some(tool), Some(held)) = (self.tools.get(tool_id), self.held.get(user_id)) else {
            return Vec::new();
        };
        held.iter()
            .filter(|(_, bound)| bound.iter().any(|ts| toolset_contains(ts, tool)))
            .map(|(profile, _)| *profile)
            .collect()
    }
}

/// Per profile: tool id -> users, and the users who changed through it.
#[derive(Default)]
struct Tally<'a> {
    name: &'a str,
    tools: BTreeMap<&'a str, usize>,
    users: BTreeSet<&'a str>,
}

/// What applying `changes` in order to `policy` would do to each user's
/// tools at `now`, without writing anything. `actor` is recorded on the
/// copy only (it changes no access).
///
/// Errors: the first change that its write would refuse, with that
/// write's error (see [`Policy::apply`]); nothing is previewed then.
pub fn preview(
    policy: &Policy,
    changes: &[Change],
    actor: &str,
    now: Millis,
) -> Result<Impact, EditError> {
    let mut after = policy.clone();
    for change in changes {
        after.apply(change, actor, now)?;
    }
    let before_allowed = policy.allowed_by_user(now);
    let after_allowed = after.allowed_by_user(now);
    let empty = BTreeSet::new();
    let mut gains: BTreeMap<&str, Tally<'_>> = BTreeMap::new();
    let mut losses: BTreeMap<&str, Tally<'_>> = BTreeMap::new();
    let (givers_before, givers_after) = (Givers::new(policy, now), Givers::new(&after, now));
    let mut impact = Impact::default();
    for user in &policy.users {
        let id = user.id.as_str();
        let before = before_allowed.get(id).unwrap_or(&empty);
        let now_allowed = after_allowed.get(id).unwrap_or(&empty);
        let gained: Vec<&str> = now_allowed.difference(before).copied().collect();
        let lost: Vec<&str> = before.difference(now_allowed).copied().collect();
        impact.users_gaining += usize::from(!gained.is_empty());
        impact.users_losing += usize::from(!lost.is_empty());
        for (tools, givers, tallies) in [
            (&gained, &givers_after, &mut gains),
            (&lost, &givers_before, &mut losses),
        ] {
            for tool_id in tools {
                for profile in givers.of(id, tool_id) {
                    let tally = tallies.entry(profile.id.as_str()).or_default();
                    tally.name = &profile.name;
                    *tally.tools.entry(tool_id).or_default() += 1;
                    tally.users.insert(id);
                }
            }
        }
    }
    let name_of = |tool_id: &str| {
        givers_after
            .tools
            .get(tool_id)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    };
    let counts = |tally: Option<&Tally<'_>>| {
        let mut counts: Vec<ToolCount> = tally
            .map(|t| {
                t.tools
                    .iter()
                    .map(|(id, users)| ToolCount {
                        tool_id: (*id).to_owned(),
                        tool_name: name_of(id),
                        users: *users,
                    })
                    .collect()
            })
            .unwrap_or_default();
        counts.sort_by(|a, b| a.tool_name.cmp(&b.tool_name));
        counts
    };
    let ids: BTreeSet<&str> = gains.keys().chain(losses.keys()).copied().collect();
    for profile_id in ids {
        let (gain, loss) = (gains.get(profile_id), losses.get(profile_id));
        impact.profiles.push(ProfileImpact {
            profile_id: profile_id.to_owned(),
            profile_name: gain.or(loss).map(|t| t.name.to_owned()).unwrap_or_default(),
            gained: counts(gain),
            lost: counts(loss),
            users_gaining: gain.map_or(0, |t| t.users.len()),
            users_losing: loss.map_or(0, |t| t.users.len()),
        });
    }
    impact.profiles.sort_by(|a, b| {
        (a.profile_name.to_lowercase(), &a.profile_id)
            .cmp(&(b.profile_name.to_lowercase(), &b.profile_id))
    });
    Ok(impact)
}

#[cfg(test)]
mod tests;
