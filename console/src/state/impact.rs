//! Access previews in confirmations: before a change that can widen or
//! narrow who may call what (a tool's approval or classification, a
//! toolset's tools, a profile's bound toolsets) is sent, the daemon is asked
//! what it would do (`AccessProfileService.PreviewAccessChange`, which
//! writes nothing) and the confirmation says which profiles' users gain or
//! lose which tools. The daemon answers by its own policy, so the console
//! never works out access itself.
//!
//! The preview request is made from the very command `y` sends, so what is
//! previewed is what is changed.

use std::collections::BTreeMap;

use toolgate_proto::v1;
use v1::access_change::Change;

use super::{App, Confirm, Loadable, Overlay, Purpose};
use crate::action::Command;

/// Profiles named in a confirmation before the rest are summed up.
const MAX_PROFILE_LINES: usize = 8;
/// Tool names in one line before the rest are counted.
const MAX_TOOL_NAMES: usize = 4;

/// The access preview of the open confirmation.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessPreview {
    /// The preview request's id.
    pub request: u64,
    /// What the daemon answered, as lines for the confirmation; while
    /// loading, `y` waits; a failure is shown and `y` still works (the
    /// write checks everything again).
    pub lines: Loadable<Vec<String>>,
    /// Send the change without asking when it changes no one's access
    /// (single approval of a read tool).
    quiet: bool,
}

/// The preview request for `command`, when it can change who may call
/// what; the same calls, in the same order, as the worker makes for it.
pub fn preview_request(command: &Command) -> Option<v1::PreviewAccessChangeRequest> {
    let changes = match command {
        Command::SetToolState { ids, state } if ids.len() == 1 => {
            vec![Change::UpdateTool(v1::UpdateToolRequest {
                id: ids[0].clone(),
                state: Some(*state as i32),
                classification: None,
            })]
        }
        Command::SetToolState { ids, state } => {
            vec![Change::BatchUpdateTools(v1::BatchUpdateToolsRequest {
                ids: ids.clone(),
                state: *state as i32,
            })]
        }
        Command::SetClassification {
            ids,
            classification,
        } => ids
            .iter()
            .map(|id| {
                Change::UpdateTool(v1::UpdateToolRequest {
                    id: id.clone(),
                    state: None,
                    classification: Some(*classification),
                })
            })
            .collect(),
        Command::EditToolsetTools {
            toolset_id,
            add,
            remove,
        } => {
            let mut changes = Vec::new();
            if !add.is_empty() {
                changes.push(Change::AddToolsetTools(v1::AddToolsetToolsRequest {
                    expected_revision: None,
                    toolset_id: toolset_id.clone(),
                    tool_ids: add.clone(),
                }));
            }
            if !remove.is_empty() {
                changes.push(Change::RemoveToolsetTools(v1::RemoveToolsetToolsRequest {
                    expected_revision: None,
                    toolset_id: toolset_id.clone(),
                    tool_ids: remove.clone(),
                }));
            }
            changes
        }
        Command::EditBindings {
            profile_id,
            bind,
            unbind,
        } => {
            let mut changes = Vec::new();
            if !bind.is_empty() {
                changes.push(Change::BindToolsets(v1::BindToolsetsRequest {
                    expected_revision: None,
                    profile_id: profile_id.clone(),
                    toolset_ids: bind.clone(),
                }));
            }
            if !unbind.is_empty() {
                changes.push(Change::UnbindToolsets(v1::UnbindToolsetsRequest {
                    expected_revision: None,
                    profile_id: profile_id.clone(),
                    toolset_ids: unbind.clone(),
                }));
            }
            changes
        }
        Command::Grant(request) => vec![Change::GrantUser(request.clone())],
        _ => return None,
    };
    (!changes.is_empty()).then(|| v1::PreviewAccessChangeRequest {
        changes: changes
            .into_iter()
            .map(|c| v1::AccessChange { change: Some(c) })
            .collect(),
    })
}

/// `names` joined, the ones past [`MAX_TOOL_NAMES`] counted.
fn tool_names(names: &[&str]) -> String {
    if names.len() <= MAX_TOOL_NAMES {
        return names.join(", ");
    }
    format!(
        "{} and {} more",
        names[..MAX_TOOL_NAMES].join(", "),
        names.len() - MAX_TOOL_NAMES
    )
}

/// "1 user gains" / "12 users gain" (or lose).
fn users_verb(users: u32, gain: bool) -> String {
    match (users, gain) {
        (1, true) => "1 user gains".into(),
        (1, false) => "1 user loses".into(),
        (n, true) => format!("{n} users gain"),
        (n, false) => format!("{n} users lose"),
    }
}

/// One line per profile and user count: "Profile Sales read-only: 12
/// users gain salesforce_update_record".
fn profile_lines(profile: &v1::ProfileAccessChange, gain: bool) -> Vec<String> {
    let counts = if gain { &profile.gained } else { &profile.lost };
    // Tools reaching the same number of users share a line, most first.
    let mut by_users: BTreeMap<std::cmp::Reverse<u32>, Vec<&str>> = BTreeMap::new();
    for c in counts {
        by_users
            .entry(std::cmp::Reverse(c.users))
            .or_default()
            .push(&c.tool_name);
    }
    by_users
        .into_iter()
        .map(|(std::cmp::Reverse(users), names)| {
            format!(
                "Profile {}: {} {}",
                profile.profile_name,
                users_verb(users, gain),
                tool_names(&names)
            )
        })
        .collect()
}

/// The confirmation's lines for a preview: who gains, then who loses.
pub fn describe(preview: &v1::PreviewAccessChangeResponse) -> Vec<String> {
    let mut lines = Vec::new();
    for gain in [true, false] {
        let all: Vec<String> = preview
            .profiles
            .iter()
            .flat_map(|p| profile_lines(p, gain))
            .collect();
        let total = if gain {
            preview.users_gaining
        } else {
            preview.users_losing
        };
        if all.is_empty() {
            if gain {
                lines.push("No one gains access.".into());
            }
            continue;
        }
        let shown = all.len().min(MAX_PROFILE_LINES);
        lines.extend(all.iter().take(shown).cloned());
        if all.len() > shown {
            lines.push(format!("… and {} more lines", all.len() - shown));
        }
        if all.len() > 1 {
            let who = if total == 1 { "user" } else { "users" };
            let verb = if gain { "gain" } else { "lose" };
            lines.push(format!("In all {total} {who} {verb} access."));
        }
    }
    lines
}

impl App {
    /// Opens `confirm`; when its command can change access, asks the
    /// daemon first and shows the answer in it. `quiet`: send at once,
    /// without asking, if the answer is that no one gains or loses.
    pub(super) fn confirm_access(&mut self, confirm: Confirm, quiet: bool) {
        self.preview = None;
        if let Some(request) = preview_request(&confirm.command) {
            let id = self.send(Command::PreviewAccess(request), Purpose::Preview);
            self.preview = Some(AccessPreview {
                request: id,
                lines: Loadable::Loading,
                quiet,
            });
        }
        self.overlay = Some(Overlay::Confirm(confirm));
    }

    /// The answer to preview request `id`.
    pub(super) fn preview_arrived(&mut self, id: u64, preview: v1::PreviewAccessChangeResponse) {
        let Some(slot) = self.preview.as_mut().filter(|p| p.request == id) else {
            return;
        };
        if slot.quiet && preview.profiles.is_empty() {
            self.preview = None;
            if let Some(Overlay::Confirm(confirm)) = self.overlay.take() {
                self.info(format!("{} (no one gains or loses access)…", confirm.title));
                self.send(confirm.command, Purpose::Change);
            }
            return;
        }
        slot.lines = Loadable::Ready(describe(&preview));
    }

    /// Preview request `id` failed: said in the confirmation, which still
    /// takes `y`.
    pub(super) fn preview_failed(&mut self, id: u64, message: String) {
        if let Some(slot) = self.preview.as_mut().filter(|p| p.request == id) {
            slot.quiet = false;
            slot.lines = Loadable::Failed(format!("Could not preview who gains access: {message}"));
        }
    }

    /// Whether `y` must wait for the preview.
    pub(super) fn preview_pending(&self) -> bool {
        matches!(
            &self.preview,
            Some(AccessPreview {
                lines: Loadable::Loading,
                ..
            })
        )
    }
}
