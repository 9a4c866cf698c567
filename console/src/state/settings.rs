//! The settings screen: require tool approval, the default classification
//! of new tools, the MCP traffic kill switch (turning traffic off asks for
//! confirmation), and sign-in: the identity provider (a form whose client
//! secret is typed masked and never shown) and the registration policy;
//! and governance: whether users see the tools they could request, the
//! audit log's verbosity, and (one form) how long access requests and held
//! calls wait and which calls a person must approve one by one.

use toolgate_proto::v1;

use super::{App, Confirm, Field, Form, FormKind, Overlay, Purpose};
use crate::action::Command;
use crate::keymap::Intent;

/// Rows on the settings screen.
pub const ROWS: usize = 11;

/// The row of the identity provider.
const PROVIDER_ROW: usize = 5;
/// The row of the registration policy.
const POLICY_ROW: usize = 6;
/// The row of "show requestable tools".
const REQUESTABLE_ROW: usize = 7;
/// The row of the audit verbosity.
const VERBOSITY_ROW: usize = 8;
/// The first row of the governance form (expiry, then per-call approval).
const GOVERNANCE_ROWS: [usize; 2] = [9, 10];

/// The audit verbosity in words.
fn verbosity_name(v: i32) -> &'static str {
    match v1::AuditVerbosity::try_from(v) {
        Ok(v1::AuditVerbosity::Minimal) => "MINIMAL (who, what, outcome, latency)",
        Ok(v1::AuditVerbosity::Full) => "FULL (redacted arguments and result sizes too)",
        _ => "STANDARD (argument summary and hook outcomes too)",
    }
}

/// The per-call approval rule in words.
fn describe_rule(rule: Option<&v1::CallApprovalRule>) -> String {
    let Some(rule) = rule.filter(|r| !r.tools.is_empty() || !r.classifications.is_empty()) else {
        return "off (no call is held)".into();
    };
    let mut parts = Vec::new();
    if !rule.tools.is_empty() {
        parts.push(format!("tools {}", rule.tools.join(", ")));
    }
    if !rule.classifications.is_empty() {
        let tags: Vec<&str> = rule
            .classifications
            .iter()
            .map(|t| super::hooks::tag_name(*t))
            .collect();
        parts.push(format!("every {} tool", tags.join(" or ")));
    }
    parts.join("; ")
}

/// The governance form (expiry times and the per-call approval rule),
/// filled from `g`.
fn governance_form(g: &v1::GovernanceSettings) -> Form {
    let rule = g.call_approval.clone().unwrap_or_default();
    Form::new(
        FormKind::Governance,
        "Access requests and per-call approval",
        vec![
            Field::text(
                "request_ttl",
                "Requests expire after",
                &super::describe_duration(g.access_request_ttl_secs).replace(' ', ""),
                "a pending access request nobody decides expires: 60s to 1 year (7d, 12h …)",
            ),
            Field::text(
                "held_ttl",
                "Held calls expire after",
                &super::describe_duration(g.held_call_ttl_secs).replace(' ', ""),
                "undecided, or approved and not retried: 60s to 1 week (1h, 30m …)",
            ),
            Field::text(
                "approval_tools",
                "Approve calls of tools",
                &rule.tools.join(", "),
                "exposed names or globs (salesforce_delete_record, salesforce_*); comma-separated",
            ),
            Field::text(
                "approval_classes",
                "Approve calls of classes",
                &rule
                    .classifications
                    .iter()
                    .map(|t| super::hooks::tag_name(*t))
                    .collect::<Vec<_>>()
                    .join(", "),
                "read, write, delete, sensitive, dangerous; e.g. delete, dangerous",
            ),
        ],
    )
    .with_intro(vec![
        "A matching call waits for a person on the Held calls screen (0).".into(),
    ])
}

/// A duration field that may hold several units run together (`1h30m`).
fn form_duration(field: &str, text: &str) -> Result<Option<u64>, String> {
    let mut total = 0u64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Ok(None);
    }
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| c.is_ascii_alphabetic())
            .map_or(rest.len(), |i| i + 1);
        let (part, tail) = rest.split_at(end);
        total += super::parse_duration(field, part)?.unwrap_or(0);
        rest = tail.trim_start();
    }
    Ok(Some(total))
}

/// The governance form as a request (the other governance settings kept
/// from `current`: the request replaces them as a whole).
pub(super) fn submit_governance_with(
    form: &mut Form,
    current: &v1::GovernanceSettings,
) -> Option<Command> {
    let parsed = (|| {
        let request_ttl = form_duration("requests expire after", &form.text("request_ttl"))?
            .ok_or("requests expire after: required (e.g. 7d)")?;
        let held_ttl = form_duration("held calls expire after", &form.text("held_ttl"))?
            .ok_or("held calls expire after: required (e.g. 1h)")?;
        let classifications =
            super::hooks::parse_tags("approve calls of classes", &form.text("approval_classes"))?;
        Ok::<_, String>((request_ttl, held_ttl, classifications))
    })();
    let (request_ttl, held_ttl, classifications) = match parsed {
        Ok(values) => values,
        Err(message) => {
            form.fail(message);
            return None;
        }
    };
    Some(Command::UpdateSettings(Box::new(
        v1::UpdateSettingsRequest {
            governance: Some(v1::GovernanceSettings {
                access_request_ttl_secs: request_ttl,
                held_call_ttl_secs: held_ttl,
                call_approval: Some(v1::CallApprovalRule {
                    tools: super::hooks::split(&form.text("approval_tools")),
                    classifications,
                }),
                ..current.clone()
            }),
            ..Default::default()
        },
    )))
}

/// Client types as (label, proto value name) for forms.
const TYPES: [(&str, v1::ClientType); 4] = [
    ("personal", v1::ClientType::Personal),
    ("shared", v1::ClientType::Shared),
    ("service", v1::ClientType::Service),
    ("ephemeral", v1::ClientType::Ephemeral),
];

/// The identity provider in words.
fn describe_provider(p: Option<&v1::IdentityProvider>) -> String {
    match p {
        None => "none (one-time sign-in links only)".into(),
        Some(p) => format!(
            "{} (client {}, secret {})",
            p.issuer_url,
            p.client_id,
            if p.client_secret_set {
                format!("set, {}", p.client_secret_fingerprint)
            } else {
                "none".into()
            }
        ),
    }
}

/// The registration policy in words.
fn describe_policy(p: &v1::RegistrationPolicy) -> String {
    let types: Vec<&str> = p
        .allowed_types
        .iter()
        .map(|t| super::client_type_name(*t))
        .collect();
    format!(
        "{} (new: {}); DCR {}; ephemeral idle {}",
        types.join(", "),
        super::client_type_name(p.default_type),
        if p.dynamic_registration_enabled {
            "on"
        } else {
            "off"
        },
        p.ephemeral_close_after_days
            .map_or("never closed".to_owned(), |d| format!("{d}d"))
    )
}

fn split_list(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The identity provider form, filled from `current`.
fn provider_form(current: Option<&v1::IdentityProvider>) -> Form {
    let d = current.cloned().unwrap_or_default();
    let secret_help = if d.client_secret_set {
        format!(
            "stored (fingerprint {}); leave empty to keep it",
            d.client_secret_fingerprint
        )
    } else {
        "none stored; leave empty for a public client".into()
    };
    Form::new(
        FormKind::IdentityProvider,
        "Identity provider (OpenID Connect)",
        vec![
            Field::text(
                "issuer_url",
                "Issuer URL",
                &d.issuer_url,
                "https://login.example.com (http only on loopback)",
            ),
            Field::text(
                "client_id",
                "Client id",
                &d.client_id,
                "toolgate's client id at the provider",
            ),
            Field::secret("client_secret", "Client secret", &secret_help),
            Field::toggle(
                "no_secret",
                "Remove the secret",
                false,
                "on: forget the stored secret (a public client)",
            ),
            Field::text(
                "scopes",
                "Scopes",
                &d.scopes.join(" "),
                "besides openid; empty: email profile",
            ),
            Field::text("email_claim", "Email claim", &d.email_claim, "empty: email"),
            Field::text(
                "groups_claim",
                "Groups claim",
                &d.groups_claim,
                "e.g. groups; needed for allowed groups",
            ),
            Field::text(
                "allowed_email_domains",
                "Email domains",
                &d.allowed_email_domains.join(", "),
                "lowercase, comma-separated; empty: any",
            ),
            Field::text(
                "allowed_groups",
                "Groups",
                &d.allowed_groups.join(", "),
                "comma-separated; empty: any",
            ),
            Field::choice(
                "unknown_users",
                "Unknown users",
                vec![
                    ("refuse".into(), "refuse".into()),
                    ("create on first sign-in".into(), "create".into()),
                ],
                if d.unknown_users == v1::UnknownUsers::Create as i32 {
                    "create"
                } else {
                    "refuse"
                },
                "a verified email no toolgate user has",
            ),
            Field::toggle(
                "accept_unverified_email",
                "Unverified emails",
                d.accept_unverified_email,
                "on: accept an email without email_verified (only if the provider administers it)",
            ),
        ],
    )
    .with_intro(vec![
        "Register toolgate at the provider with redirect URI <public URL>/signin/oidc/callback."
            .into(),
    ])
}

/// The registration policy form, filled from `current`.
fn policy_form(current: &v1::RegistrationPolicy) -> Form {
    let allowed: Vec<&str> = current
        .allowed_types
        .iter()
        .map(|t| super::client_type_name(*t))
        .collect();
    Form::new(
        FormKind::Registration,
        "Registration policy",
        vec![
            Field::text(
                "allowed_types",
                "Allowed types",
                &allowed.join(", "),
                "personal, shared, service, ephemeral",
            ),
            Field::choice(
                "default_type",
                "New clients are",
                TYPES
                    .iter()
                    .map(|(label, _)| ((*label).to_owned(), (*label).to_owned()))
                    .collect(),
                super::client_type_name(current.default_type),
                "must be an allowed type",
            ),
            Field::toggle(
                "dcr",
                "Dynamic registration",
                current.dynamic_registration_enabled,
                "RFC 7591 /oauth/register; metadata documents always work",
            ),
            Field::text(
                "private_hosts",
                "Private CIMD hosts",
                &current.metadata_document_private_hosts.join(", "),
                "host or host:port allowed on private addresses",
            ),
            Field::text(
                "ephemeral_days",
                "Close ephemeral after",
                &current
                    .ephemeral_close_after_days
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                "idle days; empty: never",
            ),
        ],
    )
}

/// The identity provider form as a request.
pub(super) fn submit_identity_provider(form: &mut Form) -> Option<Command> {
    let issuer_url = form.text("issuer_url");
    let client_id = form.text("client_id");
    if issuer_url.is_empty() || client_id.is_empty() {
        form.fail("issuer URL and client id are required");
        return None;
    }
    let secret = form.take_secret("client_secret");
    let client_secret = if form.toggle("no_secret") {
        Some(String::new())
    } else if secret.is_empty() {
        None
    } else {
        Some(secret.as_str().to_owned())
    };
    Some(Command::UpdateSettings(Box::new(
        v1::UpdateSettingsRequest {
            identity_provider: Some(v1::IdentityProviderInput {
                issuer_url,
                client_id,
                client_secret,
                scopes: split_list(&form.text("scopes")),
                email_claim: form.text("email_claim"),
                groups_claim: form.text("groups_claim"),
                allowed_email_domains: split_list(&form.text("allowed_email_domains")),
                allowed_groups: form
                    .text("allowed_groups")
                    .split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect(),
                unknown_users: if form.choice("unknown_users") == "create" {
                    v1::UnknownUsers::Create
                } else {
                    v1::UnknownUsers::Refuse
                }
                .into(),
                accept_unverified_email: form.toggle("accept_unverified_email"),
            }),
            ..Default::default()
        },
    )))
}

/// The registration policy form as a request.
pub(super) fn submit_registration(form: &mut Form) -> Option<Command> {
    let type_of = |name: &str| {
        TYPES
            .iter()
            .find(|(label, _)| label.eq_ignore_ascii_case(name))
            .map(|(_, t)| i32::from(*t))
    };
    let mut allowed_types = Vec::new();
    for name in split_list(&form.text("allowed_types")) {
        match type_of(&name) {
            Some(t) => allowed_types.push(t),
            None => {
                form.fail(format!(
                    "allowed types: {name:?} is not personal, shared, service or ephemeral"
                ));
                return None;
            }
        }
    }
    let days = form.text("ephemeral_days");
    let ephemeral_close_after_days = if days.is_empty() {
        None
    } else {
        match days.parse::<u32>() {
            Ok(d) => Some(d),
            Err(_) => {
                form.fail("close ephemeral after: a number of days, or empty for never");
                return None;
            }
        }
    };
    Some(Command::UpdateSettings(Box::new(
        v1::UpdateSettingsRequest {
            registration: Some(v1::RegistrationPolicy {
                allowed_types,
                default_type: type_of(&form.choice("default_type")).unwrap_or_default(),
                dynamic_registration_enabled: form.toggle("dcr"),
                metadata_document_private_hosts: split_list(&form.text("private_hosts")),
                ephemeral_close_after_days,
            }),
            ..Default::default()
        },
    )))
}

/// The settings rows: (label, value in words, what it means).
pub fn rows(settings: &v1::Settings) -> [(&'static str, String, &'static str); ROWS] {
    let class = settings.default_classification.unwrap_or_default();
    let governance = settings.governance.clone().unwrap_or_default();
    let on_off = |b: bool| if b { "on" } else { "off" }.to_owned();
    [
        (
            "MCP traffic",
            if settings.mcp_traffic_enabled {
                "on (tools can be listed and called)".into()
            } else {
                "OFF (kill switch: every tools/list and tools/call is refused)".into()
            },
            "The kill switch for all MCP traffic. Turning it off refuses every tool call at once.",
        ),
        (
            "Require tool approval",
            on_off(settings.require_tool_approval),
            "When on, newly discovered tools start Pending review (servers may override).",
        ),
        (
            "Default action",
            super::tools::action_name(class.action).to_owned(),
            "Classification given to new tools whose catalog entry names none: read, write or delete.",
        ),
        (
            "Default: sensitive",
            on_off(class.sensitive),
            "Risk flag given to new tools: they touch sensitive data.",
        ),
        (
            "Default: dangerous",
            on_off(class.dangerous),
            "Risk flag given to new tools: misuse can do serious harm.",
        ),
        (
            "Identity provider",
            describe_provider(
                settings
                    .sign_in
                    .as_ref()
                    .and_then(|s| s.identity_provider.as_ref()),
            ),
            "The company's OpenID Connect provider users sign in through. Space edits it (the secret is typed masked and never shown); D removes it.",
        ),
        (
            "Registration policy",
            settings
                .sign_in
                .as_ref()
                .and_then(|s| s.registration.as_ref())
                .map_or_else(|| "default".into(), describe_policy),
            "Which AI client types may sign in, the type new clients get, Dynamic Client Registration, and when idle ephemeral clients close. Space edits it.",
        ),
        (
            "Show requestable tools",
            on_off(governance.show_requestable_tools),
            "When on, tools/list also offers the tools a user could request from requestable access profiles (marked in their description and _meta); calling one opens an access request (Requests, 9).",
        ),
        (
            "Audit verbosity",
            verbosity_name(governance.audit_verbosity).into(),
            "What tool-call audit events keep: MINIMAL, STANDARD or FULL. Space cycles.",
        ),
        (
            "Request / held expiry",
            format!(
                "requests {}, held calls {}",
                super::describe_duration(governance.access_request_ttl_secs),
                super::describe_duration(governance.held_call_ttl_secs)
            ),
            "How long a pending access request, and a held call, wait for a decision before they expire. Space edits them.",
        ),
        (
            "Per-call approval",
            describe_rule(governance.call_approval.as_ref()),
            "Which tool calls a person must approve one by one (tool names or globs, and classifications such as delete or dangerous); they wait on the Held calls screen (0). Space edits it.",
        ),
    ]
}

impl App {
    pub(super) fn settings_intent(&mut self, intent: Intent) {
        if self.navigate(intent, ROWS) {
            return;
        }
        if intent != Intent::Toggle && intent != Intent::Delete {
            return;
        }
        let Some(settings) = self.settings.ready().cloned() else {
            self.info("settings are not loaded yet (r to retry)");
            return;
        };
        let sign_in = settings.sign_in.clone().unwrap_or_default();
        if intent == Intent::Delete {
            if sign_in.identity_provider.is_none() {
                self.info("no identity provider is set");
                return;
            }
            self.overlay = Some(Overlay::Confirm(Confirm {
                title: "Remove the identity provider".into(),
                lines: vec![
                    "Users can then sign in only with one-time sign-in links; the stored".into(),
                    "client secret is deleted. Clients already signed in keep working.".into(),
                ],
                command: Command::UpdateSettings(Box::new(v1::UpdateSettingsRequest {
                    clear_identity_provider: true,
                    ..Default::default()
                })),
            }));
            return;
        }
        match self.settings_cursor.selected {
            PROVIDER_ROW => {
                let form = provider_form(sign_in.identity_provider.as_ref());
                self.overlay = Some(Overlay::Form(form));
                return;
            }
            POLICY_ROW => {
                let form = policy_form(&sign_in.registration.unwrap_or_default());
                self.overlay = Some(Overlay::Form(form));
                return;
            }
            row if GOVERNANCE_ROWS.contains(&row) => {
                let form = governance_form(&settings.governance.clone().unwrap_or_default());
                self.overlay = Some(Overlay::Form(form));
                return;
            }
            REQUESTABLE_ROW | VERBOSITY_ROW => {
                let mut governance = settings.governance.clone().unwrap_or_default();
                if self.settings_cursor.selected == REQUESTABLE_ROW {
                    governance.show_requestable_tools = !governance.show_requestable_tools;
                } else {
                    governance.audit_verbosity =
                        match v1::AuditVerbosity::try_from(governance.audit_verbosity) {
                            Ok(v1::AuditVerbosity::Minimal) => v1::AuditVerbosity::Standard,
                            Ok(v1::AuditVerbosity::Full) => v1::AuditVerbosity::Minimal,
                            _ => v1::AuditVerbosity::Full,
                        }
                        .into();
                }
                let mut shown = settings;
                shown.governance = Some(governance.clone());
                self.settings = super::Loadable::Ready(shown);
                self.send(
                    Command::UpdateSettings(Box::new(v1::UpdateSettingsRequest {
                        governance: Some(governance),
                        ..Default::default()
                    })),
                    Purpose::Change,
                );
                return;
            }
            _ => {}
        }
        let mut class = settings.default_classification.unwrap_or_default();
        let mut request = v1::UpdateSettingsRequest::default();
        match self.settings_cursor.selected {
            0 => {
                request.mcp_traffic_enabled = Some(!settings.mcp_traffic_enabled);
                if settings.mcp_traffic_enabled {
                    self.overlay = Some(Overlay::Confirm(Confirm {
                        title: "Turn MCP traffic off".into(),
                        lines: vec![
                            "Every AI client is refused at once: tools/list is empty and tools/call".into(),
                            "fails until you turn traffic back on. Admin access is not affected.".into(),
                        ],
                        command: Command::UpdateSettings(Box::new(request)),
                    }));
                    return;
                }
            }
            1 => request.require_tool_approval = Some(!settings.require_tool_approval),
            2 => {
                class.action = match v1::ToolAction::try_from(class.action).unwrap_or_default() {
                    v1::ToolAction::Read => v1::ToolAction::Write,
                    v1::ToolAction::Write => v1::ToolAction::Delete,
                    _ => v1::ToolAction::Read,
                } as i32;
                request.default_classification = Some(class);
            }
            3 => {
                class.sensitive = !class.sensitive;
                request.default_classification = Some(class);
            }
            _ => {
                class.dangerous = !class.dangerous;
                request.default_classification = Some(class);
            }
        }
        // Show the new value at once, so a second press works from it (the
        // reload after the change confirms it; a failure reloads too).
        let mut shown = settings;
        if let Some(v) = request.mcp_traffic_enabled {
            shown.mcp_traffic_enabled = v;
        }
        if let Some(v) = request.require_tool_approval {
            shown.require_tool_approval = v;
        }
        if let Some(v) = request.default_classification {
            shown.default_classification = Some(v);
        }
        self.settings = super::Loadable::Ready(shown);
        self.send(Command::UpdateSettings(Box::new(request)), Purpose::Change);
    }
}
