//! The toolsets and access profiles screens: create and edit them, choose a
//! custom toolset's tools, bind toolsets to profiles, grant users a profile
//! (with an optional expiry) and revoke grants.

use toolgate_proto::v1;

use super::picker::{PickItem, Picker, PickerKind};
use super::{App, Confirm, Field, Form, FormKind, Overlay, Screen};
use crate::action::Command;
use crate::keymap::Intent;

/// A toolset kind in words.
pub fn toolset_kind(kind: i32) -> &'static str {
    match v1::ToolsetKind::try_from(kind).unwrap_or_default() {
        v1::ToolsetKind::Custom => "custom",
        v1::ToolsetKind::AllApproved => "all approved (maintained)",
        v1::ToolsetKind::ReadOnly => "read only (maintained)",
        v1::ToolsetKind::Unspecified => "-",
    }
}

/// How a profile is obtained, in words.
pub fn obtain_name(obtain: i32) -> &'static str {
    match v1::ProfileObtain::try_from(obtain).unwrap_or_default() {
        v1::ProfileObtain::RequestWithApproval => "requestable (an admin approves)",
        v1::ProfileObtain::RequestAutoApprove => "requestable (approved at once)",
        _ => "admin grant only",
    }
}

/// The fields of a profile form after name and description: how it is
/// obtained and the longest requested grant.
fn obtain_fields(obtain: i32, max: Option<u64>) -> [Field; 2] {
    let value = match v1::ProfileObtain::try_from(obtain).unwrap_or_default() {
        v1::ProfileObtain::RequestWithApproval => "approval",
        v1::ProfileObtain::RequestAutoApprove => "auto",
        _ => "admin",
    };
    [
        Field::choice(
            "obtain",
            "Obtained by",
            vec![
                ("admin grant only".into(), "admin".into()),
                ("request, an admin approves".into(), "approval".into()),
                ("request, approved at once".into(), "auto".into()),
            ],
            value,
            "requestable: users ask for it (calling a tool it gives opens a request)",
        ),
        Field::text(
            "max_duration",
            "Longest grant",
            &max.map(|s| super::describe_duration(s).replace(' ', ""))
                .unwrap_or_default(),
            "for requests: 12h, 7d, 1w (just in time: the grant then ends by itself); empty: no end",
        ),
    ]
}

fn is_custom(toolset: &v1::Toolset) -> bool {
    toolset.kind == v1::ToolsetKind::Custom as i32
}

impl App {
    /// The toolsets shown (after the `/` filter).
    pub fn toolsets_shown(&self) -> Vec<&v1::Toolset> {
        let needle = self.filter_text(Screen::Toolsets);
        self.toolsets
            .ready()
            .map(|all| {
                all.iter()
                    .filter(|t| needle.is_empty() || t.name.to_lowercase().contains(&needle))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The selected toolset.
    pub fn selected_toolset(&self) -> Option<&v1::Toolset> {
        self.toolsets_shown()
            .get(self.toolsets_cursor.selected)
            .copied()
    }

    /// The access profiles shown (after the `/` filter).
    pub fn profiles_shown(&self) -> Vec<&v1::AccessProfile> {
        let needle = self.filter_text(Screen::Profiles);
        self.profiles
            .ready()
            .map(|all| {
                all.iter()
                    .filter(|p| needle.is_empty() || p.name.to_lowercase().contains(&needle))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The selected access profile.
    pub fn selected_profile(&self) -> Option<&v1::AccessProfile> {
        self.profiles_shown()
            .get(self.profiles_cursor.selected)
            .copied()
    }

    /// A server's name by id ("-" when unknown or empty).
    pub fn server_name(&self, id: &str) -> String {
        self.servers
            .ready()
            .and_then(|all| all.iter().find(|s| s.id == id))
            .map(|s| s.name.clone())
            .unwrap_or_else(|| "-".into())
    }

    /// A toolset's name by id (the id when unknown).
    pub fn toolset_name(&self, id: &str) -> String {
        self.toolsets
            .ready()
            .and_then(|all| all.iter().find(|t| t.id == id))
            .map(|t| t.name.clone())
            .unwrap_or_else(|| id.to_owned())
    }

    /// A user's email by id (the id when unknown).
    pub fn user_email(&self, id: &str) -> String {
        self.users
            .ready()
            .and_then(|all| all.iter().find(|u| u.id == id))
            .map(|u| u.email.clone())
            .unwrap_or_else(|| id.to_owned())
    }

    /// A tool's exposed name by id (the id when unknown).
    pub fn tool_name(&self, id: &str) -> String {
        self.tools
            .all
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| id.to_owned())
    }

    pub(super) fn toolsets_intent(&mut self, intent: Intent, rows: usize) {
        if self.navigate(intent, rows) {
            return;
        }
        let selected = self.selected_toolset().cloned();
        match (intent, selected) {
            (Intent::New, _) => {
                self.overlay = Some(Overlay::Form(
                    Form::new(
                        FormKind::NewToolset,
                        "New toolset",
                        vec![
                            Field::text("name", "Name", "", "unique, e.g. Sales read-only"),
                            Field::text("description", "Description", "", "optional"),
                        ],
                    )
                    .with_intro(vec![
                        "After creating it, press m to choose its tools.".into(),
                    ]),
                ));
            }
            (_, None) => self.info("no toolset selected: press n to create one"),
            (Intent::Edit, Some(t)) if !is_custom(&t) => self.maintained(&t),
            (Intent::Members, Some(t)) if !is_custom(&t) => self.maintained(&t),
            (Intent::Edit, Some(t)) => {
                self.overlay = Some(Overlay::Form(Form::new(
                    FormKind::EditToolset { id: t.id.clone() },
                    &format!("Edit {}", t.name),
                    vec![
                        Field::text("name", "Name", &t.name, "unique"),
                        Field::text("description", "Description", &t.description, ""),
                    ],
                )));
            }
            (Intent::Members, Some(t)) => {
                // Only approved tools can be added; members stay listed
                // whatever their state, so they can be removed.
                let approved = v1::ToolState::Approved as i32;
                let items = self
                    .tools
                    .all
                    .iter()
                    .filter(|tool| tool.state == approved || t.tool_ids.contains(&tool.id))
                    .map(|tool| {
                        let member = t.tool_ids.contains(&tool.id);
                        PickItem {
                            id: tool.id.clone(),
                            label: format!(
                                "{}  [{}]",
                                tool.name,
                                super::tools::state_name(tool.state)
                            ),
                            checked: member,
                            original: member,
                        }
                    })
                    .collect();
                self.open_picker(Picker::new(
                    PickerKind::ToolsetMembers {
                        toolset_id: t.id.clone(),
                    },
                    &format!("Tools of {} (approved tools and current members)", t.name),
                    items,
                    true,
                ));
            }
            (Intent::Delete, Some(t)) => {
                let bound = self
                    .profiles
                    .ready()
                    .map(|ps| ps.iter().filter(|p| p.toolset_ids.contains(&t.id)).count())
                    .unwrap_or(0);
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: format!("Delete toolset {}", t.name),
                    lines: vec![
                        format!("It is bound to {bound} access profile(s); they lose its tools."),
                        "This cannot be undone.".into(),
                    ],
                    command: Command::DeleteToolset { id: t.id },
                }));
            }
            _ => {}
        }
    }

    fn maintained(&mut self, t: &v1::Toolset) {
        self.error(format!(
            "{} is maintained by the gateway ({}); create a custom toolset (n) to choose tools by hand",
            t.name,
            toolset_kind(t.kind)
        ));
    }

    pub(super) fn open_picker(&mut self, mut picker: Picker) {
        picker.rows = super::picker_rows(self.size);
        self.overlay = Some(Overlay::Picker(picker));
    }

    pub(super) fn profiles_intent(&mut self, intent: Intent, rows: usize) {
        if self.navigate(intent, rows) {
            return;
        }
        let selected = self.selected_profile().cloned();
        match (intent, selected) {
            (Intent::New, _) => {
                self.overlay = Some(Overlay::Form(
                    Form::new(FormKind::NewProfile, "New access profile", {
                        let mut fields = vec![
                            Field::text("name", "Name", "", "unique, e.g. Sales read-only"),
                            Field::text("description", "Description", "", "optional"),
                        ];
                        fields.extend(obtain_fields(0, None));
                        fields
                    })
                    .with_intro(vec!["Then: b binds toolsets, u grants users.".into()]),
                ));
            }
            (_, None) => self.info("no access profile selected: press n to create one"),
            (Intent::Edit, Some(p)) => {
                self.overlay = Some(Overlay::Form(Form::new(
                    FormKind::EditProfile { id: p.id.clone() },
                    &format!("Edit {}", p.name),
                    {
                        let mut fields = vec![
                            Field::text("name", "Name", &p.name, "unique"),
                            Field::text("description", "Description", &p.description, ""),
                        ];
                        fields.extend(obtain_fields(p.obtain, p.max_request_duration_secs));
                        fields
                    },
                )));
            }
            (Intent::Bind, Some(p)) => {
                let items = self
                    .toolsets
                    .ready()
                    .map(|all| {
                        all.iter()
                            .map(|t| {
                                let bound = p.toolset_ids.contains(&t.id);
                                PickItem {
                                    id: t.id.clone(),
                                    label: format!("{}  ({})", t.name, toolset_kind(t.kind)),
                                    checked: bound,
                                    original: bound,
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.open_picker(Picker::new(
                    PickerKind::Bindings {
                        profile_id: p.id.clone(),
                    },
                    &format!("Toolsets bound to {}", p.name),
                    items,
                    true,
                ));
            }
            (Intent::Grant, Some(p)) => self.open_grant_form(Some(&p.id), None),
            (Intent::Revoke, Some(p)) => {
                if p.grants.is_empty() {
                    self.info(format!("{} has no grants", p.name));
                    return;
                }
                let items = p
                    .grants
                    .iter()
                    .map(|g| PickItem {
                        id: g.user_id.clone(),
                        label: format!(
                            "{}  (expires {})",
                            self.user_email(&g.user_id),
                            crate::ui::when(g.expires_at.as_ref(), "never")
                        ),
                        checked: false,
                        original: false,
                    })
                    .collect();
                self.open_picker(Picker::new(
                    PickerKind::RevokeGrant {
                        profile_id: p.id.clone(),
                    },
                    &format!("Revoke a grant of {}", p.name),
                    items,
                    false,
                ));
            }
            (Intent::Delete, Some(p)) => {
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: format!("Delete access profile {}", p.name),
                    lines: vec![
                        format!(
                            "Its {} grant(s) end: those users lose the tools it gave them.",
                            p.grants.len()
                        ),
                        "This cannot be undone.".into(),
                    ],
                    command: Command::DeleteProfile { id: p.id },
                }));
            }
            _ => {}
        }
    }

    /// Opens the grant form with the profile and/or user fixed.
    pub(super) fn open_grant_form(&mut self, profile_id: Option<&str>, user_id: Option<&str>) {
        let profiles: Vec<(String, String)> = self
            .profiles
            .ready()
            .map(|all| {
                all.iter()
                    .filter(|p| profile_id.is_none_or(|id| p.id == id))
                    .map(|p| (p.name.clone(), p.id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let users: Vec<(String, String)> = self
            .users
            .ready()
            .map(|all| {
                all.iter()
                    .filter(|u| user_id.is_none_or(|id| u.id == id))
                    .map(|u| (u.email.clone(), u.id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if profiles.is_empty() || users.is_empty() {
            self.error("granting needs a user (Users: n) and an access profile (Profiles: n)");
            return;
        }
        self.overlay = Some(Overlay::Form(Form::new(
            FormKind::Grant,
            "Grant access",
            vec![
                Field::choice("profile", "Access profile", profiles, "", "←/→"),
                Field::choice("user", "User", users, "", "←/→"),
                Field::text(
                    "expires",
                    "Expires",
                    "",
                    "empty: never; 30d, 12h, 2w, or a date 2027-01-31",
                ),
            ],
        )));
    }

    /// "Add: a, b" / "Remove: c" lines of a picker's changes, ids named by
    /// `name`, then a blank line before the access preview.
    fn change_lines(
        &self,
        add: &[String],
        remove: &[String],
        name: impl Fn(&Self, &str) -> String,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        for (verb, ids) in [("Add", add), ("Remove", remove)] {
            if !ids.is_empty() {
                let names: Vec<String> = ids.iter().map(|id| name(self, id)).collect();
                lines.push(format!("{verb}: {}", names.join(", ")));
            }
        }
        lines.push(String::new());
        lines
    }

    /// A picker finished with Enter.
    pub(super) fn picked(&mut self, picker: Picker) {
        match picker.kind.clone() {
            PickerKind::ToolsetMembers { toolset_id } => {
                let (add, remove) = picker.changes();
                if add.is_empty() && remove.is_empty() {
                    self.info("no change");
                    return;
                }
                let name = self.toolset_name(&toolset_id);
                let lines = self.change_lines(&add, &remove, |app, id| app.tool_name(id));
                self.confirm_access(
                    Confirm {
                        title: format!("Change the tools of {name}"),
                        lines,
                        command: Command::EditToolsetTools {
                            toolset_id,
                            add,
                            remove,
                        },
                    },
                    false,
                );
            }
            PickerKind::Bindings { profile_id } => {
                let (bind, unbind) = picker.changes();
                if bind.is_empty() && unbind.is_empty() {
                    self.info("no change");
                    return;
                }
                let name = self
                    .profiles
                    .ready()
                    .and_then(|all| all.iter().find(|p| p.id == profile_id))
                    .map_or_else(|| profile_id.clone(), |p| p.name.clone());
                let lines = self.change_lines(&bind, &unbind, |app, id| app.toolset_name(id));
                self.confirm_access(
                    Confirm {
                        title: format!("Change the toolsets bound to {name}"),
                        lines,
                        command: Command::EditBindings {
                            profile_id,
                            bind,
                            unbind,
                        },
                    },
                    false,
                );
            }
            PickerKind::RevokeGrant { profile_id } => {
                let Some(item) = picker.current().cloned() else {
                    return;
                };
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: "Revoke grant".into(),
                    lines: vec![format!(
                        "{} loses the tools of this profile at once (live sessions are told).",
                        item.label
                    )],
                    command: Command::Revoke(v1::RevokeUserRequest {
                        expected_revision: None,
                        profile_id,
                        user_id: item.id,
                    }),
                }));
            }
            PickerKind::RevokeToken { user_id } => {
                let Some(item) = picker.current().cloned() else {
                    return;
                };
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: "Revoke token".into(),
                    lines: vec![
                        format!("{} stops working at once.", item.label),
                        "Clients using it get 401 and need a new token.".into(),
                    ],
                    command: Command::RevokeToken {
                        id: item.id,
                        user_id,
                    },
                }));
            }
            PickerKind::Disconnect { user_id } => {
                let Some(item) = picker.current().cloned() else {
                    return;
                };
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: "Delete Salesforce connection".into(),
                    lines: vec![
                        format!(
                            "Deletes {} and revokes its tokens at Salesforce.",
                            item.label
                        ),
                        "The user is asked to connect again on their next tool call.".into(),
                    ],
                    command: Command::DeleteConnection {
                        id: item.id,
                        user_id,
                    },
                }));
            }
        }
    }
}
