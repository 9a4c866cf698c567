//! The AI clients screen: every OAuth sign-in and personal access token as
//! a governed client: change its type and state, flip its kill switch,
//! revoke its credentials (closing it), delete it for good. Closing,
//! revoking and deleting ask first: they end the client's tokens.

use toolgate_proto::v1;

use super::{App, Confirm, Load, Overlay, Purpose, Screen};
use crate::action::Command;
use crate::keymap::Intent;

/// A client type as the screen writes it.
pub fn client_type_name(t: i32) -> &'static str {
    match v1::ClientType::try_from(t) {
        Ok(v1::ClientType::Personal) => "personal",
        Ok(v1::ClientType::Shared) => "shared",
        Ok(v1::ClientType::Service) => "service",
        Ok(v1::ClientType::Ephemeral) => "ephemeral",
        _ => "?",
    }
}

/// A client state as the screen writes it.
pub fn client_state_name(s: i32) -> &'static str {
    match v1::ClientState::try_from(s) {
        Ok(v1::ClientState::Active) => "active",
        Ok(v1::ClientState::Hidden) => "hidden",
        Ok(v1::ClientState::Closed) => "CLOSED",
        Ok(v1::ClientState::Deleted) => "DELETED",
        _ => "?",
    }
}

/// The type after `t` when `t` cycles.
fn next_type(t: i32) -> v1::ClientType {
    match v1::ClientType::try_from(t) {
        Ok(v1::ClientType::Personal) => v1::ClientType::Shared,
        Ok(v1::ClientType::Shared) => v1::ClientType::Service,
        Ok(v1::ClientType::Service) => v1::ClientType::Ephemeral,
        _ => v1::ClientType::Personal,
    }
}

impl App {
    /// The AI clients shown (after the `/` filter on name, owner and type).
    pub fn clients_shown(&self) -> Vec<&v1::AiClient> {
        let needle = self.filter_text(Screen::Clients);
        self.clients
            .ready()
            .map(|all| {
                all.iter()
                    .filter(|c| {
                        needle.is_empty()
                            || c.name.to_lowercase().contains(&needle)
                            || c.owner_email.contains(&needle)
                            || client_type_name(c.client_type).contains(&needle)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The selected AI client.
    pub fn selected_client(&self) -> Option<&v1::AiClient> {
        self.clients_shown()
            .get(self.clients_cursor.selected)
            .copied()
    }

    pub(super) fn clients_intent(&mut self, intent: Intent, rows: usize) {
        if self.navigate(intent, rows) {
            return;
        }
        if intent == Intent::ToggleView {
            self.clients_all = !self.clients_all;
            self.info(if self.clients_all {
                "showing every AI client, hidden and deleted ones too"
            } else {
                "showing active and closed AI clients"
            });
            self.load(Load::Clients);
            return;
        }
        let Some(client) = self.selected_client().cloned() else {
            if matches!(
                intent,
                Intent::ClientType
                    | Intent::ClientState
                    | Intent::Toggle
                    | Intent::Revoke
                    | Intent::Delete
            ) {
                self.info("no AI client selected: clients appear when they sign in or get a token");
            }
            return;
        };
        if client.state == v1::ClientState::Deleted as i32
            && intent != Intent::Open
            && intent != Intent::Back
        {
            self.info(format!("{} is deleted and cannot change", client.name));
            return;
        }
        let update = |f: &dyn Fn(&mut v1::UpdateClientRequest)| {
            let mut request = v1::UpdateClientRequest {
                id: client.id.clone(),
                expected_revision: Some(client.revision),
                ..Default::default()
            };
            f(&mut request);
            Command::UpdateClient(request)
        };
        match intent {
            Intent::ClientType => {
                let next = next_type(client.client_type);
                self.send(
                    update(&|r| r.client_type = Some(next.into())),
                    Purpose::Change,
                );
            }
            Intent::Toggle => {
                let on = !client.traffic_enabled;
                let command = update(&|r| r.traffic_enabled = Some(on));
                if on {
                    self.send(command, Purpose::Change);
                } else {
                    self.overlay = Some(Overlay::Confirm(Confirm {
                        title: format!("Turn tool calls of {} off", client.name),
                        lines: vec![
                            format!(
                                "Every tool call of {} ({}) is refused",
                                client.name, client.owner_email
                            ),
                            "until you turn it back on; it can still sign in and list tools."
                                .into(),
                        ],
                        command,
                    }));
                }
            }
            Intent::ClientState => {
                let next = match v1::ClientState::try_from(client.state) {
                    Ok(v1::ClientState::Active) => v1::ClientState::Hidden,
                    Ok(v1::ClientState::Hidden) => v1::ClientState::Closed,
                    _ => v1::ClientState::Active,
                };
                let command = update(&|r| r.state = Some(next.into()));
                if next == v1::ClientState::Closed {
                    self.overlay = Some(Overlay::Confirm(Confirm {
                        title: format!("Close {}", client.name),
                        lines: vec![
                            "Its sign-ins (or its token) are revoked at once and it is refused"
                                .into(),
                            "until you reopen it; an OAuth client then signs in again.".into(),
                        ],
                        command,
                    }));
                } else {
                    self.send(command, Purpose::Change);
                }
            }
            Intent::Revoke => {
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: format!("Revoke {}", client.name),
                    lines: vec![
                        format!(
                            "Every token of {} ({}) stops at once and the client is closed.",
                            client.name, client.owner_email
                        ),
                        "Reopen it with s; a token client needs a new token.".into(),
                    ],
                    command: Command::RevokeClient(v1::RevokeClientRequest {
                        id: client.id.clone(),
                        state: None,
                        expected_revision: Some(client.revision),
                    }),
                }));
            }
            Intent::Delete => {
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: format!("Delete {} for good", client.name),
                    lines: vec![
                        "Its tokens are revoked and it can never be used or changed again;".into(),
                        "it stays in the list (h) for the audit trail.".into(),
                    ],
                    command: update(&|r| r.state = Some(v1::ClientState::Deleted.into())),
                }));
            }
            _ => {}
        }
    }
}
