//! The admin edits that change who may call what, as pure changes of
//! records: a tool's state and classification, a custom toolset's tools, a
//! profile's bound toolsets and grants.
//!
//! The control API's writes apply these to the records they store, and the
//! access preview ([`super::impact`]) applies the very same functions to an
//! in-memory copy, so a preview cannot drift from what the write does. No
//! I/O, no clock (callers pass `now`), no auditing (the writes audit).

use crate::model::{
    AccessProfile, Classification, Grant, Millis, Tool, ToolAction, ToolState, Toolset, ToolsetKind,
};

/// Why an edit is refused. The control API maps `NotFound` to NOT_FOUND and
/// `Refused` to FAILED_PRECONDITION; the message is shown to the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// A referenced record does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// `tool`, `toolset`, `access profile`, `user`, `grant for user`.
        kind: &'static str,
        /// The id given.
        id: String,
    },
    /// The record's state forbids the edit.
    #[error("{0}")]
    Refused(String),
}

impl EditError {
    /// A `NotFound` for an object of `kind` with `id`.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            id: id.into(),
        }
    }
}

/// A change of one tool by `UpdateTool`: its state and/or classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolEdit {
    /// Tool id.
    pub id: String,
    /// New state (never REMOVED); `None` keeps it.
    pub state: Option<ToolState>,
    /// New classification; `None` keeps it.
    pub classification: Option<ClassificationEdit>,
}

/// A classification as `UpdateTool` takes it: the action may be left out
/// to keep the tool's current one; the risk flags are set as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassificationEdit {
    /// New action; `None` keeps the current one.
    pub action: Option<ToolAction>,
    /// Risk flag: touches sensitive data.
    pub sensitive: bool,
    /// Risk flag: misuse can do serious harm.
    pub dangerous: bool,
}

/// Sets `tool`'s state, enforcing that REMOVED tools stay removed; approving
/// records the approved definition and clears drift. Returns whether
/// anything changed.
///
/// Errors: [`EditError::Refused`] for a REMOVED tool.
pub fn set_state(
    tool: &mut Tool,
    state: ToolState,
    actor: &str,
    now: Millis,
) -> Result<bool, EditError> {
    if tool.state == ToolState::Removed {
        return Err(EditError::Refused(format!(
            "tool {} was removed by its server and cannot be set to {}",
            tool.name,
            state.as_str()
        )));
    }
    if tool.state == state {
        return Ok(false);
    }
    tool.state = state;
    if state == ToolState::Approved {
        tool.approved_hash = Some(tool.definition_hash.clone());
        tool.approved_definition = Some(tool.definition.clone());
        tool.drift.clear();
    }
    tool.updated_at = now;
    tool.updated_by = actor.to_owned();
    Ok(true)
}

/// Sets `tool`'s classification. Returns the previous one when it changed.
///
/// The action decides membership of the "Read only" maintained toolsets,
/// so reclassifying an approved tool can change who may call it.
pub fn classify(
    tool: &mut Tool,
    edit: ClassificationEdit,
    actor: &str,
    now: Millis,
) -> Option<Classification> {
    let to = Classification {
        action: edit.action.unwrap_or(tool.classification.action),
        sensitive: edit.sensitive,
        dangerous: edit.dangerous,
    };
    if to == tool.classification {
        return None;
    }
    let from = tool.classification;
    tool.classification = to;
    tool.updated_at = now;
    tool.updated_by = actor.to_owned();
    Some(from)
}

/// Refuses a maintained toolset (they follow their server and cannot be
/// edited).
///
/// Errors: [`EditError::Refused`].
pub fn require_custom(toolset: &Toolset) -> Result<(), EditError> {
    if toolset.kind != ToolsetKind::Custom {
        return Err(EditError::Refused(format!(
            "toolset {:?} is maintained by toolgate and cannot be edited; create a custom toolset instead",
            toolset.name
        )));
    }
    Ok(())
}

/// Refuses a tool that may not be added to a toolset (only APPROVED ones
/// may).
///
/// Errors: [`EditError::Refused`].
pub fn require_addable(tool: &Tool) -> Result<(), EditError> {
    if tool.state != ToolState::Approved {
        return Err(EditError::Refused(format!(
            "tool {} is {}; only APPROVED tools can be added to a toolset",
            tool.name,
            tool.state.as_str()
        )));
    }
    Ok(())
}

/// Adds `tools` (each checked by [`require_addable`]) to a custom toolset,
/// keeping each once. Returns the exposed names of the tools added.
pub fn add_tools<'t>(
    toolset: &mut Toolset,
    tools: impl IntoIterator<Item = &'t Tool>,
) -> Vec<String> {
    let mut added = Vec::new();
    for tool in tools {
        if !toolset.tool_ids.contains(&tool.id) {
            toolset.tool_ids.push(tool.id.clone());
            added.push(tool.name.clone());
        }
    }
    added
}

/// Removes tool ids from a custom toolset (ids not in it are ignored).
pub fn remove_tools(toolset: &mut Toolset, tool_ids: &[String]) {
    toolset.tool_ids.retain(|t| !tool_ids.contains(t));
}

/// Binds toolsets to a profile (bound ones are kept once), ids sorted.
pub fn bind_toolsets(profile: &mut AccessProfile, toolset_ids: &[String]) {
    for id in toolset_ids {
        if !profile.toolset_ids.contains(id) {
            profile.toolset_ids.push(id.clone());
        }
    }
    profile.toolset_ids.sort();
}

/// Unbinds toolsets from a profile (unbound ones are ignored).
pub fn unbind_toolsets(profile: &mut AccessProfile, toolset_ids: &[String]) {
    profile.toolset_ids.retain(|t| !toolset_ids.contains(t));
}

/// Grants the profile to a user, replacing an earlier grant of it (and so
/// its expiry); grants stay ordered by user id.
pub fn grant(profile: &mut AccessProfile, grant: Grant) {
    profile.grants.retain(|g| g.user_id != grant.user_id);
    profile.grants.push(grant);
    profile.grants.sort_by(|a, b| a.user_id.cmp(&b.user_id));
}

/// Ends a user's grant of the profile.
///
/// Errors: [`EditError::NotFound`] (`grant for user`) when they hold none.
pub fn revoke(profile: &mut AccessProfile, user_id: &str) -> Result<(), EditError> {
    let before = profile.grants.len();
    profile.grants.retain(|g| g.user_id != user_id);
    if profile.grants.len() == before {
        return Err(EditError::not_found("grant for user", user_id));
    }
    Ok(())
}
