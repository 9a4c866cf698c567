//! The users screen: create users, see their tokens, Salesforce connections
//! and callable tools, issue an MCP token (shown once with a ready client
//! configuration line), revoke tokens, grant a profile, disable or enable.

use toolgate_proto::v1;

use super::picker::{PickItem, Picker, PickerKind};
use super::{App, Confirm, Field, Form, FormKind, Loadable, Overlay, Purpose, Screen};
use crate::action::Command;
use crate::keymap::Intent;

/// Whether a user is active.
pub fn is_active(user: &v1::User) -> bool {
    user.status != v1::UserStatus::Disabled as i32
}

impl App {
    /// The users shown (after the `/` filter).
    pub fn users_shown(&self) -> Vec<&v1::User> {
        let needle = self.filter_text(Screen::Users);
        self.users
            .ready()
            .map(|all| {
                all.iter()
                    .filter(|u| {
                        needle.is_empty()
                            || u.email.to_lowercase().contains(&needle)
                            || u.display_name.to_lowercase().contains(&needle)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The selected user.
    pub fn selected_user(&self) -> Option<&v1::User> {
        self.users_shown().get(self.users_cursor.selected).copied()
    }

    /// The access profiles granted to a user: (profile name, expiry).
    pub fn user_grants(&self, user_id: &str) -> Vec<(String, Option<prost_types::Timestamp>)> {
        self.profiles
            .ready()
            .map(|all| {
                all.iter()
                    .filter_map(|p| {
                        p.grants
                            .iter()
                            .find(|g| g.user_id == user_id)
                            .map(|g| (p.name.clone(), g.expires_at))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn load_user_detail(&mut self, user_id: &str) {
        let keep = matches!(&self.user_detail, Some((id, Loadable::Ready(_))) if id == user_id);
        if !keep {
            self.user_detail = Some((user_id.to_owned(), Loadable::Loading));
        }
        self.send(
            Command::LoadUserDetail {
                user_id: user_id.to_owned(),
            },
            Purpose::UserDetail(user_id.to_owned()),
        );
    }

    /// Loads the detail of the selected user when it changed.
    pub(super) fn select_user_detail(&mut self) {
        let Some(id) = self.selected_user().map(|u| u.id.clone()) else {
            self.user_detail = None;
            return;
        };
        if self.user_detail.as_ref().map(|(u, _)| u) != Some(&id) {
            self.load_user_detail(&id);
        }
    }

    pub(super) fn users_intent(&mut self, intent: Intent, rows: usize) {
        if self.navigate(intent, rows) {
            return;
        }
        let selected = self.selected_user().cloned();
        match (intent, selected) {
            (Intent::New, _) => {
                self.overlay = Some(Overlay::Form(
                    Form::new(
                        FormKind::NewUser,
                        "New user",
                        vec![
                            Field::text(
                                "email",
                                "Email",
                                "",
                                "unique; how the audit log names them",
                            ),
                            Field::text("display_name", "Display name", "", "optional"),
                        ],
                    )
                    .with_intro(vec![
                        "Then: u grants an access profile, i issues their MCP token.".into(),
                    ]),
                ));
            }
            (_, None) => self.info("no user selected: press n to create one"),
            (Intent::IssueToken, Some(user)) => {
                self.overlay = Some(Overlay::Form(
                    Form::new(
                        FormKind::IssueToken {
                            user_id: user.id.clone(),
                        },
                        &format!("Issue an MCP token for {}", user.email),
                        vec![
                            Field::text(
                                "name",
                                "Token name",
                                "laptop",
                                "e.g. the device or client",
                            ),
                            Field::text(
                                "expires",
                                "Expires",
                                "90d",
                                "empty: never; 30d, 12h, 2w, or a date 2027-01-31",
                            ),
                        ],
                    )
                    .with_intro(vec![
                        "The token is shown once, with the line to paste into the client.".into(),
                    ]),
                ));
            }
            (Intent::Grant, Some(user)) => self.open_grant_form(None, Some(&user.id)),
            (Intent::RevokeToken, Some(user)) => {
                if !self.detail_ready(&user.id) {
                    return;
                }
                let tokens = self.detail_of(&user.id).map(|d| d.tokens.clone());
                let items: Vec<PickItem> = tokens
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|t| t.revoked_at.is_none())
                    .map(|t| PickItem {
                        label: format!(
                            "{} ({}…, created {})",
                            t.name,
                            t.prefix,
                            crate::ui::when(t.created_at.as_ref(), "-")
                        ),
                        id: t.id,
                        checked: false,
                        original: false,
                    })
                    .collect();
                if items.is_empty() {
                    self.info(format!("{} has no live tokens", user.email));
                    return;
                }
                self.open_picker(Picker::new(
                    PickerKind::RevokeToken {
                        user_id: user.id.clone(),
                    },
                    &format!("Revoke a token of {}", user.email),
                    items,
                    false,
                ));
            }
            (Intent::Disconnect, Some(user)) => {
                if !self.detail_ready(&user.id) {
                    return;
                }
                let connections = self.detail_of(&user.id).map(|d| d.connections.clone());
                let items: Vec<PickItem> = connections
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| PickItem {
                        label: format!(
                            "{} as {} ({})",
                            self.server_name(&c.server_id),
                            if c.salesforce_username.is_empty() {
                                &c.salesforce_user_id
                            } else {
                                &c.salesforce_username
                            },
                            c.instance_url
                        ),
                        id: c.id,
                        checked: false,
                        original: false,
                    })
                    .collect();
                if items.is_empty() {
                    self.info(format!("{} has no Salesforce connections", user.email));
                    return;
                }
                self.open_picker(Picker::new(
                    PickerKind::Disconnect {
                        user_id: user.id.clone(),
                    },
                    &format!("Salesforce connections of {}", user.email),
                    items,
                    false,
                ));
            }
            (Intent::IssueSignInLink, Some(user)) => {
                if is_active(&user) {
                    self.send(
                        Command::IssueSignInLink {
                            user_id: user.id.clone(),
                            email: user.email.clone(),
                        },
                        Purpose::Change,
                    );
                } else {
                    self.info(format!(
                        "{} is disabled: enable them (t) before issuing a sign-in link",
                        user.email
                    ));
                }
            }
            (Intent::ToggleDisabled, Some(user)) => {
                let command = Command::SetUserEnabled {
                    id: user.id.clone(),
                    enabled: !is_active(&user),
                };
                if is_active(&user) {
                    self.overlay = Some(Overlay::Confirm(Confirm {
                        title: format!("Disable {}", user.email),
                        lines: vec![
                            "Every token of this user is refused until you enable them again."
                                .into(),
                        ],
                        command,
                    }));
                } else {
                    self.send(command, Purpose::Change);
                }
            }
            _ => {}
        }
    }

    /// Whether the user's detail is loaded; says why not on the status
    /// line otherwise.
    fn detail_ready(&mut self, user_id: &str) -> bool {
        match &self.user_detail {
            Some((id, Loadable::Ready(_))) if id == user_id => true,
            Some((id, Loadable::Failed(e))) if id == user_id => {
                let message =
                    format!("the user's tokens and connections did not load: {e} (r retries)");
                self.error(message);
                false
            }
            _ => {
                self.info("the user's tokens and connections are still loading");
                false
            }
        }
    }

    fn detail_of(&self, user_id: &str) -> Option<&crate::action::UserDetail> {
        match &self.user_detail {
            Some((id, Loadable::Ready(detail))) if id == user_id => Some(detail),
            _ => None,
        }
    }
}
