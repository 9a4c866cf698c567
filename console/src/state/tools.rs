//! The tools screen: the review queue (Pending review, newest first, with
//! what changed for a drifted tool), the full list with filters and `/`
//! search, the detail pane, approval and disabling of one or many tools
//! (bulk actions ask first), and classification.

use std::collections::HashSet;

use toolgate_proto::v1;

use super::{App, Confirm, Cursor, Field, Form, FormKind, Loadable, Overlay, Purpose, Screen};
use crate::action::Command;
use crate::keymap::Intent;

/// Which tools the list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ToolsView {
    /// Pending review, newest first.
    #[default]
    Queue,
    /// Every tool, by exposed name, filtered.
    All,
}

/// Filters of the tool list (empty / zero / None: any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolFilter {
    /// Only this server's tools.
    pub server_id: String,
    /// Only this state (`ToolState` as i32; ignored in the queue).
    pub state: i32,
    /// Only this action (`ToolAction` as i32).
    pub action: i32,
    /// Only tools with this sensitive flag.
    pub sensitive: Option<bool>,
    /// Only tools with this dangerous flag.
    pub dangerous: Option<bool>,
}

impl ToolFilter {
    fn keeps(&self, tool: &v1::Tool) -> bool {
        let class = tool.classification.unwrap_or_default();
        (self.server_id.is_empty() || tool.server_id == self.server_id)
            && (self.state == 0 || tool.state == self.state)
            && (self.action == 0 || class.action == self.action)
            && self.sensitive.is_none_or(|f| class.sensitive == f)
            && self.dangerous.is_none_or(|f| class.dangerous == f)
    }

    /// Whether any filter is set.
    pub fn is_set(&self) -> bool {
        *self != Self::default()
    }
}

/// The tools screen's state.
#[derive(Debug, Default)]
pub struct ToolsState {
    /// Every tool (without schemas), in daemon order (by exposed name).
    pub all: Vec<v1::Tool>,
    /// How many tools the daemon holds.
    pub total: usize,
    /// Set until the first complete load; pages show as they arrive.
    pub loading: bool,
    /// Set once a load completed.
    pub loaded: bool,
    /// Why the last load failed.
    pub error: Option<String>,
    /// The load in flight.
    pub load_id: Option<u64>,
    incoming: Vec<v1::Tool>,
    /// Queue or all.
    pub view: ToolsView,
    /// The filters of the full list.
    pub filter: ToolFilter,
    /// Indices into `all` of the rows shown, in display order.
    pub shown: Vec<usize>,
    /// Selection.
    pub cursor: Cursor,
    /// Ids of marked tools (multi-select).
    pub marked: HashSet<String>,
    /// The tool whose full definition (with schemas) was asked for.
    pub detail: Option<(String, Loadable<v1::Tool>)>,
}

impl ToolsState {
    /// The selected tool.
    pub fn selected(&self) -> Option<&v1::Tool> {
        self.shown
            .get(self.cursor.selected)
            .and_then(|i| self.all.get(*i))
    }

    /// How many tools wait for review.
    pub fn pending(&self) -> usize {
        self.all
            .iter()
            .filter(|t| t.state == v1::ToolState::PendingReview as i32)
            .count()
    }

    pub(super) fn detail_loaded(&mut self, tool: v1::Tool) {
        if let Some((id, slot)) = &mut self.detail
            && *id == tool.id
        {
            *slot = Loadable::Ready(tool);
        }
    }

    pub(super) fn detail_failed(&mut self, tool_id: &str, message: String) {
        if let Some((id, slot)) = &mut self.detail
            && id == tool_id
        {
            *slot = Loadable::Failed(message);
        }
    }

    pub(super) fn load_failed(&mut self, message: String) {
        self.loading = false;
        self.load_id = None;
        self.incoming.clear();
        self.error = Some(message);
    }

    /// Recomputes `shown` for the view, filters and search text, keeping
    /// the tool `keep` selected when it is still shown.
    fn refilter(&mut self, needle: &str, keep: Option<String>) {
        let pending = v1::ToolState::PendingReview as i32;
        let mut shown: Vec<usize> = self
            .all
            .iter()
            .enumerate()
            .filter(|(_, t)| match self.view {
                ToolsView::Queue => {
                    t.state == pending
                        && ToolFilter {
                            state: 0,
                            ..self.filter.clone()
                        }
                        .keeps(t)
                }
                ToolsView::All => self.filter.keeps(t),
            })
            .filter(|(_, t)| {
                needle.is_empty()
                    || t.name.to_lowercase().contains(needle)
                    || t.title.to_lowercase().contains(needle)
            })
            .map(|(i, _)| i)
            .collect();
        if self.view == ToolsView::Queue {
            // Newest first by when the tool entered review: a drifted tool
            // sent back to review sorts with the newest.
            let all = &self.all;
            let entered = |t: &v1::Tool| {
                t.updated_at
                    .or(t.discovered_at)
                    .map(|t| (t.seconds, t.nanos))
            };
            shown.sort_by(|a, b| {
                let (a, b) = (&all[*a], &all[*b]);
                entered(b)
                    .cmp(&entered(a))
                    .then_with(|| a.name.cmp(&b.name))
            });
        }
        self.shown = shown;
        if let Some(id) = keep
            && let Some(pos) = self.shown.iter().position(|i| self.all[*i].id == id)
        {
            self.cursor.selected = pos;
        }
    }
}

/// An action classification in words.
pub fn action_name(action: i32) -> &'static str {
    match v1::ToolAction::try_from(action).unwrap_or_default() {
        v1::ToolAction::Read => "read",
        v1::ToolAction::Write => "write",
        v1::ToolAction::Delete => "delete",
        v1::ToolAction::Unspecified => "-",
    }
}

/// A tool state in words (state is never shown by colour alone).
pub fn state_name(state: i32) -> &'static str {
    match v1::ToolState::try_from(state).unwrap_or_default() {
        v1::ToolState::PendingReview => "Pending review",
        v1::ToolState::Approved => "Approved",
        v1::ToolState::Disabled => "Disabled",
        v1::ToolState::Removed => "Removed",
        v1::ToolState::Unspecified => "-",
    }
}

fn tri(value: Option<bool>) -> &'static str {
    match value {
        None => "any",
        Some(true) => "yes",
        Some(false) => "no",
    }
}

fn tri_from(value: &str) -> Option<bool> {
    match value {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn tri_options() -> Vec<(String, String)> {
    ["any", "yes", "no"]
        .into_iter()
        .map(|v| (v.to_owned(), v.to_owned()))
        .collect()
}

/// Whether approving `tool` always asks first: it writes or deletes, or is
/// marked dangerous.
fn is_risky(tool: &v1::Tool) -> bool {
    let class = tool.classification.unwrap_or_default();
    class.dangerous
        || class.action == v1::ToolAction::Write as i32
        || class.action == v1::ToolAction::Delete as i32
}

/// A tool in a confirmation: name, state and classification.
fn describe_tool(t: &v1::Tool) -> String {
    let class = t.classification.unwrap_or_default();
    let mut words = vec![state_name(t.state), action_name(class.action)];
    if class.sensitive {
        words.push("sensitive");
    }
    if class.dangerous {
        words.push("DANGEROUS");
    }
    format!("  {}  ({})", t.name, words.join(", "))
}

/// The classification form's intro: what the action decides.
pub const CLASSIFY_INTRO: &str = "The action decides which tools the maintained \"Read only\" toolsets hold, so reclassifying an approved tool can change who may call it. You see who gains or loses access before it is saved.";

impl App {
    pub(super) fn load_tools(&mut self) {
        if let Some(old) = self.tools.load_id.take() {
            self.pending.remove(&old);
        }
        self.tools.incoming.clear();
        if !self.tools.loaded {
            // A first load that restarts (retry, reload) starts over.
            self.tools.all.clear();
        }
        self.tools.loading = true;
        let id = self.send(Command::LoadTools, Purpose::Tools);
        self.tools.load_id = Some(id);
    }

    /// One page of a tool load. The first load shows pages as they arrive
    /// (the first page is on screen at once); reloads swap the list when
    /// complete, so the rows do not flicker.
    pub(super) fn tools_page(&mut self, id: u64, last: bool, tools: Vec<v1::Tool>, total: usize) {
        if self.tools.load_id != Some(id) {
            return;
        }
        let keep = self.tools.selected().map(|t| t.id.clone());
        self.tools.total = total;
        if self.tools.loaded {
            self.tools.incoming.extend(tools);
            if last {
                self.tools.all = std::mem::take(&mut self.tools.incoming);
            }
        } else {
            self.tools.all.extend(tools);
        }
        if last {
            self.tools.loading = false;
            self.tools.loaded = true;
            self.tools.load_id = None;
            self.tools.error = None;
            let ids: HashSet<&str> = self.tools.all.iter().map(|t| t.id.as_str()).collect();
            self.tools.marked.retain(|id| ids.contains(id.as_str()));
        }
        if !self.tools.loaded || last {
            self.refilter_keeping(keep);
        }
        if last && self.tools.detail.take().is_some() && self.zoomed {
            // The definition may have changed (rediscovery): fetch it again.
            self.load_selected_tool();
        }
    }

    pub(super) fn tools_refilter(&mut self) {
        let keep = self.tools.selected().map(|t| t.id.clone());
        self.refilter_keeping(keep);
    }

    fn refilter_keeping(&mut self, keep: Option<String>) {
        let needle = self.filter_text(Screen::Tools);
        self.tools.refilter(&needle, keep);
        let rows = self.areas().list_rows();
        let len = self.tools.shown.len();
        self.tools.cursor.clamp(len, rows);
    }

    pub(super) fn load_selected_tool(&mut self) {
        let Some(id) = self.tools.selected().map(|t| t.id.clone()) else {
            return;
        };
        if matches!(&self.tools.detail, Some((d, Loadable::Ready(_))) if *d == id) {
            return;
        }
        self.tools.detail = Some((id.clone(), Loadable::Loading));
        self.send(Command::LoadTool { id: id.clone() }, Purpose::Tool(id));
    }

    /// The tools an action applies to: the marked ones, else the selected.
    fn tool_targets(&self) -> Vec<&v1::Tool> {
        if self.tools.marked.is_empty() {
            self.tools.selected().into_iter().collect()
        } else {
            self.tools
                .all
                .iter()
                .filter(|t| self.tools.marked.contains(&t.id))
                .collect()
        }
    }

    pub(super) fn tools_intent(&mut self, intent: Intent, rows: usize) {
        if self.navigate(intent, rows) {
            if self.zoomed {
                self.load_selected_tool();
            }
            return;
        }
        match intent {
            Intent::ToggleView => {
                self.tools.view = match self.tools.view {
                    ToolsView::Queue => ToolsView::All,
                    ToolsView::All => ToolsView::Queue,
                };
                self.tools.cursor = Cursor::default();
                self.tools_refilter();
            }
            Intent::Mark => {
                if let Some(id) = self.tools.selected().map(|t| t.id.clone()) {
                    if !self.tools.marked.remove(&id) {
                        self.tools.marked.insert(id);
                    }
                    self.navigate(Intent::Down, rows);
                }
            }
            Intent::MarkAll => {
                let shown: Vec<String> = self
                    .tools
                    .shown
                    .iter()
                    .map(|i| self.tools.all[*i].id.clone())
                    .collect();
                if shown.iter().all(|id| self.tools.marked.contains(id)) {
                    self.tools.marked.clear();
                } else {
                    self.tools.marked.extend(shown);
                }
            }
            Intent::Approve => self.set_tool_state(v1::ToolState::Approved),
            Intent::Disable => self.set_tool_state(v1::ToolState::Disabled),
            Intent::Pending => self.set_tool_state(v1::ToolState::PendingReview),
            Intent::Classify => self.open_classify_form(),
            Intent::Filter => self.open_tool_filter_form(),
            _ => {}
        }
    }

    fn set_tool_state(&mut self, state: v1::ToolState) {
        let targets = self.tool_targets();
        if targets.is_empty() {
            self.info("no tool selected");
            return;
        }
        let removed = v1::ToolState::Removed as i32;
        if let Some(gone) = targets.iter().find(|t| t.state == removed) {
            self.error(format!(
                "{} was removed by its server and cannot change state; unmark it first",
                gone.name
            ));
            return;
        }
        let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
        let verb = match state {
            v1::ToolState::Approved => "Approve",
            v1::ToolState::Disabled => "Disable",
            _ => "Send back to review",
        };
        let approving = state == v1::ToolState::Approved;
        if ids.len() == 1 {
            let tool = targets[0];
            let command = Command::SetToolState { ids, state };
            if !approving {
                self.info(format!("{verb}: {}…", tool.name));
                self.send(command, Purpose::Change);
                return;
            }
            // Approving reaches users at once (through "All approved" and,
            // for a read tool, "Read only"): a risky tool always asks; any
            // tool asks when someone would gain it.
            let risky = is_risky(tool);
            let mut lines = vec![describe_tool(tool)];
            if risky {
                lines.push(String::new());
                lines.push("It changes or deletes Salesforce data, or is marked dangerous.".into());
            }
            self.confirm_access(
                Confirm {
                    title: format!("{verb} {}", tool.name),
                    lines,
                    command,
                },
                !risky,
            );
            return;
        }
        let mut lines: Vec<String> = targets.iter().take(8).map(|t| describe_tool(t)).collect();
        if targets.len() > 8 {
            lines.push(format!("  … and {} more", targets.len() - 8));
        }
        let risky = |flag: fn(&v1::Classification) -> bool| {
            targets
                .iter()
                .filter(|t| flag(&t.classification.unwrap_or_default()))
                .count()
        };
        let (dangerous, deleting) = (
            risky(|c| c.dangerous),
            risky(|c| c.action == v1::ToolAction::Delete as i32),
        );
        lines.push(String::new());
        if dangerous + deleting > 0 && approving {
            lines.push(format!(
                "Among them: {dangerous} marked dangerous, {deleting} that delete data."
            ));
        }
        lines.push("All change together or none does.".into());
        self.confirm_access(
            Confirm {
                title: format!("{verb} {} tools", ids.len()),
                lines,
                command: Command::SetToolState { ids, state },
            },
            false,
        );
    }

    fn open_classify_form(&mut self) {
        let targets = self.tool_targets();
        let Some(first) = targets.first() else {
            self.info("no tool selected");
            return;
        };
        let class = first.classification.unwrap_or_default();
        let title = if targets.len() == 1 {
            format!("Classify {}", first.name)
        } else {
            format!("Classify {} tools", targets.len())
        };
        let ids = targets.iter().map(|t| t.id.clone()).collect();
        let actions = vec![
            ("read".to_owned(), (v1::ToolAction::Read as i32).to_string()),
            (
                "write".to_owned(),
                (v1::ToolAction::Write as i32).to_string(),
            ),
            (
                "delete".to_owned(),
                (v1::ToolAction::Delete as i32).to_string(),
            ),
        ];
        let form = Form::new(
            FormKind::Classify { ids },
            &title,
            vec![
                Field::choice(
                    "action",
                    "Action",
                    actions,
                    &class.action.to_string(),
                    "←/→: what the tool does to Salesforce data",
                ),
                Field::toggle(
                    "sensitive",
                    "Sensitive",
                    class.sensitive,
                    "Space: touches sensitive data",
                ),
                Field::toggle(
                    "dangerous",
                    "Dangerous",
                    class.dangerous,
                    "Space: misuse can do serious harm",
                ),
            ],
        )
        .with_intro(vec![CLASSIFY_INTRO.into()]);
        self.overlay = Some(Overlay::Form(form));
    }

    fn open_tool_filter_form(&mut self) {
        let mut servers = vec![("any".to_owned(), String::new())];
        if let Some(all) = self.servers.ready() {
            servers.extend(all.iter().map(|s| (s.name.clone(), s.id.clone())));
        }
        let states = [
            v1::ToolState::Unspecified,
            v1::ToolState::PendingReview,
            v1::ToolState::Approved,
            v1::ToolState::Disabled,
            v1::ToolState::Removed,
        ]
        .into_iter()
        .map(|s| {
            let label = if s == v1::ToolState::Unspecified {
                "any"
            } else {
                state_name(s as i32)
            };
            (label.to_owned(), (s as i32).to_string())
        })
        .collect();
        let actions = [
            v1::ToolAction::Unspecified,
            v1::ToolAction::Read,
            v1::ToolAction::Write,
            v1::ToolAction::Delete,
        ]
        .into_iter()
        .map(|a| {
            let label = if a == v1::ToolAction::Unspecified {
                "any"
            } else {
                action_name(a as i32)
            };
            (label.to_owned(), (a as i32).to_string())
        })
        .collect();
        let f = &self.tools.filter;
        let form = Form::new(
            FormKind::ToolFilter,
            "Filter tools",
            vec![
                Field::choice("server", "Server", servers, &f.server_id, "←/→"),
                Field::choice(
                    "state",
                    "State",
                    states,
                    &f.state.to_string(),
                    "←/→ (the review queue always shows Pending review)",
                ),
                Field::choice("action", "Action", actions, &f.action.to_string(), "←/→"),
                Field::choice(
                    "sensitive",
                    "Sensitive",
                    tri_options(),
                    tri(f.sensitive),
                    "←/→",
                ),
                Field::choice(
                    "dangerous",
                    "Dangerous",
                    tri_options(),
                    tri(f.dangerous),
                    "←/→",
                ),
            ],
        )
        .with_intro(vec![
            "Enter applies; / searches names. Esc in the list clears the search.".into(),
        ]);
        self.overlay = Some(Overlay::Form(form));
    }

    /// The classification form was submitted: close it and confirm with
    /// the access preview (the action can move a tool into or out of the
    /// "Read only" toolsets).
    pub(super) fn submit_classify(&mut self, form: &Form, ids: Vec<String>) {
        let action: i32 = form.choice("action").parse().unwrap_or(0);
        let classification = v1::Classification {
            action,
            sensitive: form.toggle("sensitive"),
            dangerous: form.toggle("dangerous"),
        };
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let names: Vec<String> = ids.iter().map(|id| self.tool_name(id)).collect();
        let title = match &names[..] {
            [one] => format!("Classify {one}"),
            _ => format!("Classify {} tools", names.len()),
        };
        let mut lines: Vec<String> = names.iter().take(8).map(|n| format!("  {n}")).collect();
        if names.len() > 8 {
            lines.push(format!("  … and {} more", names.len() - 8));
        }
        lines.push(format!(
            "Action {}, sensitive {}, dangerous {}.",
            action_name(action),
            yes_no(classification.sensitive),
            yes_no(classification.dangerous)
        ));
        lines.push(String::new());
        self.confirm_access(
            Confirm {
                title,
                lines,
                command: Command::SetClassification {
                    ids,
                    classification,
                },
            },
            false,
        );
    }

    pub(super) fn apply_tool_filter(&mut self, form: &Form) {
        self.tools.filter = ToolFilter {
            server_id: form.choice("server"),
            state: form.choice("state").parse().unwrap_or(0),
            action: form.choice("action").parse().unwrap_or(0),
            sensitive: tri_from(&form.choice("sensitive")),
            dangerous: tri_from(&form.choice("dangerous")),
        };
        if self.tools.filter.state != 0
            && self.tools.filter.state != v1::ToolState::PendingReview as i32
        {
            self.tools.view = ToolsView::All;
        }
        self.overlay = None;
        self.tools.cursor = Cursor::default();
        self.tools_refilter();
    }
}
