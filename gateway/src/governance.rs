//! Pure policy: who may see and call which tool.
//!
//! [`decide`] is the one function that answers "may this user call this
//! tool now?"; the MCP gateway uses it for both `tools/list` and
//! `tools/call`, and the control API for `ListUserTools`. It does no I/O and
//! reads no clock: callers pass everything in, including `now`.
//!
//! [`edit`] holds the admin edits that change access (shared by the control
//! API's writes and the preview); [`impact`] previews what a proposed change
//! would do to every user's tools.

use std::collections::{HashMap, HashSet};

pub mod edit;
pub mod impact;
pub mod requests;
use std::fmt;

use crate::model::{
    AccessProfile, Millis, Server, Settings, Token, Tool, ToolAction, ToolState, Toolset,
    ToolsetKind, User, UserStatus,
};

/// Everything a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The user.
    pub user: &'a User,
    /// The token the request came with; `None` when an admin asks what the
    /// user could call (no token involved).
    pub token: Option<&'a Token>,
    /// Every access profile (the user's grants are found in them).
    pub profiles: &'a [AccessProfile],
    /// Every toolset.
    pub toolsets: &'a [Toolset],
    /// The current time, Unix ms.
    pub now: Millis,
}

/// Why a call is refused. `Display` gives the message shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The MCP traffic kill switch is off.
    TrafficDisabled,
    /// The user is disabled.
    UserDisabled,
    /// The token was revoked.
    TokenRevoked,
    /// The token has expired.
    TokenExpired,
    /// The tool's server is disabled.
    ServerDisabled {
        /// The tool's exposed name.
        tool: String,
    },
    /// The tool is not approved.
    ToolNotApproved {
        /// The tool's exposed name.
        tool: String,
        /// Its state.
        state: ToolState,
    },
    /// No profile the user holds (unexpired) binds a toolset with the tool.
    NotGranted {
        /// The tool's exposed name.
        tool: String,
    },
    /// A grant would allow it, but every such grant has expired.
    GrantExpired {
        /// The tool's exposed name.
        tool: String,
    },
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TrafficDisabled => f.write_str(
                "MCP traffic is turned off on this gateway by an administrator; no tool can be called",
            ),
            Self::UserDisabled => f.write_str("your toolgate user is disabled"),
            Self::TokenRevoked => f.write_str("your access token was revoked"),
            Self::TokenExpired => f.write_str("your access token has expired"),
            Self::ServerDisabled { tool } => {
                write!(f, "tool {tool} is unavailable: its server is disabled")
            }
            Self::ToolNotApproved { tool, state } => write!(
                f,
                "tool {tool} is not in your tool list (it is {})",
                state.as_str()
            ),
            Self::NotGranted { tool } => write!(f, "tool {tool} is not in your tool list"),
            Self::GrantExpired { tool } => write!(
                f,
                "tool {tool} is not in your tool list: your access grant has expired"
            ),
        }
    }
}

/// Whether the exposed tool name `name` matches `pattern`: an exact name,
/// or a glob where `*` matches any run of characters and `?` one
/// (case-sensitive, as tool names are). Used by hook filters and the
/// per-call approval rule.
pub fn tool_name_matches(pattern: &str, name: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(name)
}

/// Whether `tool` needs a person's approval for each call under `rule`.
pub fn needs_call_approval(rule: &crate::model::CallApprovalRule, tool: &Tool) -> bool {
    rule.tools.iter().any(|p| tool_name_matches(p, &tool.name))
        || rule
            .classifications
            .iter()
            .any(|tag| tag.matches(&tool.classification))
}

/// Whether `toolset` contains `tool`. Maintained toolsets follow their
/// server: "All approved" holds its APPROVED tools, "Read only" those with
/// action READ.
pub fn toolset_contains(toolset: &Toolset, tool: &Tool) -> bool {
    let approved_on_server = || {
        toolset.server_id.as_deref() == Some(tool.server_id.as_str())
            && tool.state == ToolState::Approved
    };
    match toolset.kind {
        ToolsetKind::Custom => toolset.tool_ids.contains(&tool.id),
        ToolsetKind::AllApproved => approved_on_server(),
        ToolsetKind::ReadOnly => {
            approved_on_server() && tool.classification.action == ToolAction::Read
        }
    }
}

/// The ids of the tools in `toolset`, drawn from `tools`, in `tools` order
/// (for custom toolsets: as curated).
pub fn toolset_members(toolset: &Toolset, tools: &[Tool]) -> Vec<String> {
    match toolset.kind {
        ToolsetKind::Custom => toolset.tool_ids.clone(),
        _ => tools
            .iter()
            .filter(|tool| toolset_contains(toolset, tool))
            .map(|tool| tool.id.clone())
            .collect(),
    }
}

/// Decides whether `subject` may see and call `tool` of `server`.
///
/// Allowed only if: MCP traffic is on, the user is active, the token (if
/// any) is the user's and neither revoked nor expired, a profile granted to
/// the user with an unexpired grant binds a toolset that contains the tool,
/// the server is enabled, and the tool is APPROVED. Checks run in that
/// order and the first failure is the answer, so a user learns nothing
/// about a tool they were never granted beyond "not in your tool list".
pub fn decide(
    settings: &Settings,
    server: &Server,
    tool: &Tool,
    subject: &Subject<'_>,
) -> Result<(), Denial> {
    decide_with(settings, server, tool, subject, &toolset_contains)
}

/// [`decide`] with the toolset membership test passed in: `contains` must
/// answer exactly as [`toolset_contains`] (it may use an index).
fn decide_with(
    settings: &Settings,
    server: &Server,
    tool: &Tool,
    subject: &Subject<'_>,
    contains: &dyn Fn(&Toolset, &Tool) -> bool,
) -> Result<(), Denial> {
    if !settings.mcp_traffic_enabled {
        return Err(Denial::TrafficDisabled);
    }
    if subject.user.status != UserStatus::Active {
        return Err(Denial::UserDisabled);
    }
    if let Some(token) = subject.token {
        if token.revoked_at.is_some() || token.user_id != subject.user.id {
            return Err(Denial::TokenRevoked);
        }
        if token.expires_at.is_some_and(|end| end <= subject.now) {
            return Err(Denial::TokenExpired);
        }
    }
    let name = || tool.name.clone();
    if tool.server_id != server.id {
        return Err(Denial::NotGranted { tool: name() });
    }
    match grant_for(tool, subject, contains) {
        GrantCheck::Held => {}
        GrantCheck::Expired => return Err(Denial::GrantExpired { tool: name() }),
        GrantCheck::None => return Err(Denial::NotGranted { tool: name() }),
    }
    if server.disabled {
        return Err(Denial::ServerDisabled { tool: name() });
    }
    if tool.state != ToolState::Approved {
        return Err(Denial::ToolNotApproved {
            tool: name(),
            state: tool.state,
        });
    }
    Ok(())
}

enum GrantCheck {
    Held,
    Expired,
    None,
}

/// Whether a profile the user holds binds a toolset containing `tool`,
/// and whether that grant is still live.
fn grant_for(
    tool: &Tool,
    subject: &Subject<'_>,
    contains: &dyn Fn(&Toolset, &Tool) -> bool,
) -> GrantCheck {
    let mut expired = false;
    for profile in subject.profiles {
        let Some(grant) = profile.grants.iter().find(|g| g.user_id == subject.user.id) else {
            continue;
        };
        let binds_tool = subject
            .toolsets
            .iter()
            .filter(|ts| profile.toolset_ids.contains(&ts.id))
            .any(|ts| contains(ts, tool));
        if !binds_tool {
            continue;
        }
        if grant.expires_at.is_some_and(|end| end <= subject.now) {
            expired = true;
        } else {
            return GrantCheck::Held;
        }
    }
    if expired {
        GrantCheck::Expired
    } else {
        GrantCheck::None
    }
}

/// Where each tool sits in a tool list: by id, by server and by name.
/// Built once per list (the MCP gateway keeps one per policy-state read) so
/// [`allowed_positions`] looks up the tools a user's toolsets name
/// instead of testing every stored tool.
#[derive(Debug, Default)]
pub struct ToolIndex {
    /// Tool id -> position.
    by_id: HashMap<String, usize>,
    /// Server id -> positions of its tools, ascending.
    by_server: HashMap<String, Vec<usize>>,
    /// Exposed tool name -> positions (a removed tool may share its name
    /// with a live one), ascending.
    by_name: HashMap<String, Vec<usize>>,
}

impl ToolIndex {
    /// Indexes `tools`.
    pub fn new(tools: &[Tool]) -> Self {
        let mut index = Self::default();
        for (i, tool) in tools.iter().enumerate() {
            index.by_id.insert(tool.id.clone(), i);
            index
                .by_server
                .entry(tool.server_id.clone())
                .or_default()
                .push(i);
            index.by_name.entry(tool.name.clone()).or_default().push(i);
        }
        index
    }

    /// The positions of the tools exposed as `name`, ascending.
    pub fn named(&self, name: &str) -> &[usize] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }
}

/// The tools `subject` may call among `tools`, by [`decide`], in the order
/// of `tools`.
///
/// Same answers as calling [`decide`] per tool (tested as such). See
/// [`allowed_positions`], which this calls with a fresh index.
pub fn allowed_tools<'t>(
    settings: &Settings,
    servers: &[Server],
    tools: &'t [Tool],
    subject: &Subject<'_>,
) -> Vec<&'t Tool> {
    allowed_positions(settings, servers, tools, &ToolIndex::new(tools), subject)
        .into_iter()
        .map(|i| &tools[i])
        .collect()
}

/// The positions in `tools` (ascending) of the tools [`allowed_tools`]
/// answers, with `index` built from `tools` by [`ToolIndex::new`].
///
/// The work grows with the tools the user's toolsets hold, not with the
/// tools stored: the subject is narrowed once to the profiles the user
/// holds a grant in and the toolsets those bind (the only ones [`decide`]
/// consults); the candidates are the tools those toolsets name (custom) or
/// the tools of their server (maintained); custom membership is a hash
/// lookup. With 10,000 tools stored and 1,000 entitled this took tools/list
/// from 65 ms to well under 1 ms of policy work (BENCHMARKS.md).
pub fn allowed_positions(
    settings: &Settings,
    servers: &[Server],
    tools: &[Tool],
    index: &ToolIndex,
    subject: &Subject<'_>,
) -> Vec<usize> {
    let held: Vec<AccessProfile> = subject
        .profiles
        .iter()
        .filter(|p| p.grants.iter().any(|g| g.user_id == subject.user.id))
        .cloned()
        .collect();
    let bound: Vec<Toolset> = subject
        .toolsets
        .iter()
        .filter(|ts| held.iter().any(|p| p.toolset_ids.contains(&ts.id)))
        .cloned()
        .collect();
    let narrowed = Subject {
        profiles: &held,
        toolsets: &bound,
        ..*subject
    };
    let mut members: HashSet<(&str, &str)> = HashSet::new();
    let mut candidates: Vec<usize> = Vec::new();
    for toolset in &bound {
        match toolset.kind {
            ToolsetKind::Custom => {
                for id in &toolset.tool_ids {
                    members.insert((toolset.id.as_str(), id.as_str()));
                    candidates.extend(index.by_id.get(id.as_str()));
                }
            }
            ToolsetKind::AllApproved | ToolsetKind::ReadOnly => {
                if let Some(positions) = toolset
                    .server_id
                    .as_deref()
                    .and_then(|id| index.by_server.get(id))
                {
                    candidates.extend(positions);
                }
            }
        }
    }
    candidates.sort_unstable();
    candidates.dedup();
    debug_assert_eq!(
        index.by_id.len(),
        tools.len(),
        "index built from other tools"
    );
    let contains = |toolset: &Toolset, tool: &Tool| match toolset.kind {
        ToolsetKind::Custom => members.contains(&(toolset.id.as_str(), tool.id.as_str())),
        _ => toolset_contains(toolset, tool),
    };
    let by_id: HashMap<&str, &Server> = servers.iter().map(|s| (s.id.as_str(), s)).collect();
    candidates
        .into_iter()
        .filter(|&i| {
            tools.get(i).is_some_and(|tool| {
                by_id.get(tool.server_id.as_str()).is_some_and(|server| {
                    decide_with(settings, server, tool, &narrowed, &contains).is_ok()
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
