//! The hooks screen: tool-call hooks in the order they run (phase, then
//! priority), created and edited with one form per kind (PII redaction,
//! card blocking, query scope, write window, webhook), enabled and
//! disabled with Space, deleted after a confirmation, and tried on a sample
//! call with a dry run (`HookService.TestHook`: nothing reaches Salesforce,
//! nothing is audited).
//!
//! Filters are typed by name (servers, profiles) and email (users) and sent
//! as the ids the contract wants; an unknown name is an error naming the
//! field, so a typo never widens or narrows a hook silently.

use toolgate_proto::v1;
use v1::hook::Config;

use super::{App, Confirm, Field, Form, FormKind, Loadable, Overlay, Purpose, Screen};
use crate::action::{Command, HookSecret};
use crate::keymap::Intent;

/// What a hook does, as the forms know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKindName {
    /// AFTER: redact PII in results.
    PiiRedaction,
    /// BEFORE: refuse card numbers in arguments.
    CardBlocking,
    /// BEFORE: limit what SOQL queries touch.
    QueryScope,
    /// BEFORE: writes and deletes only in a time window.
    WriteWindow,
    /// BEFORE or AFTER: ask an admin's HTTPS endpoint.
    Webhook,
}

impl HookKindName {
    /// Every kind, in the order the new-hook form offers them.
    pub const ALL: [HookKindName; 5] = [
        HookKindName::PiiRedaction,
        HookKindName::CardBlocking,
        HookKindName::QueryScope,
        HookKindName::WriteWindow,
        HookKindName::Webhook,
    ];

    /// The kind in words.
    pub fn label(self) -> &'static str {
        match self {
            HookKindName::PiiRedaction => "PII redaction",
            HookKindName::CardBlocking => "card blocking",
            HookKindName::QueryScope => "query scope",
            HookKindName::WriteWindow => "write window",
            HookKindName::Webhook => "webhook",
        }
    }

    /// The phase the kind runs in, when it has only one.
    pub fn fixed_phase(self) -> Option<v1::HookPhase> {
        match self {
            HookKindName::PiiRedaction => Some(v1::HookPhase::After),
            HookKindName::Webhook => None,
            _ => Some(v1::HookPhase::Before),
        }
    }
}

/// The kind of a hook's config (None when it has none).
pub fn hook_kind(hook: &v1::Hook) -> Option<HookKindName> {
    Some(match hook.config.as_ref()? {
        Config::PiiRedaction(_) => HookKindName::PiiRedaction,
        Config::CardBlocking(_) => HookKindName::CardBlocking,
        Config::QueryScope(_) => HookKindName::QueryScope,
        Config::WriteWindow(_) => HookKindName::WriteWindow,
        Config::Webhook(_) => HookKindName::Webhook,
    })
}

/// A hook phase in words.
pub fn phase_name(phase: i32) -> &'static str {
    match v1::HookPhase::try_from(phase) {
        Ok(v1::HookPhase::Before) => "before",
        Ok(v1::HookPhase::After) => "after",
        _ => "?",
    }
}

/// A hook outcome as the audit log writes it.
pub fn outcome_name(outcome: i32) -> &'static str {
    match v1::HookOutcome::try_from(outcome) {
        Ok(v1::HookOutcome::Allowed) => "ALLOWED",
        Ok(v1::HookOutcome::Mutated) => "MUTATED",
        Ok(v1::HookOutcome::Denied) => "DENIED",
        Ok(v1::HookOutcome::Error) => "ERROR",
        Ok(v1::HookOutcome::Timeout) => "TIMEOUT",
        _ => "?",
    }
}

/// Classification tags as (name typed and shown, tag).
const TAGS: [(&str, v1::ClassificationTag); 5] = [
    ("read", v1::ClassificationTag::Read),
    ("write", v1::ClassificationTag::Write),
    ("delete", v1::ClassificationTag::Delete),
    ("sensitive", v1::ClassificationTag::Sensitive),
    ("dangerous", v1::ClassificationTag::Dangerous),
];

/// A classification tag in words.
pub(super) fn tag_name(tag: i32) -> &'static str {
    TAGS.iter()
        .find(|(_, t)| *t as i32 == tag)
        .map_or("?", |(name, _)| name)
}

/// Tags typed as a comma-separated list in `field`.
pub(super) fn parse_tags(field: &str, text: &str) -> Result<Vec<i32>, String> {
    split(text)
        .into_iter()
        .map(|name| {
            TAGS.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                .map(|(_, t)| *t as i32)
                .ok_or_else(|| {
                    format!("{field}: {name:?} is not read, write, delete, sensitive or dangerous")
                })
        })
        .collect()
}

const PATTERNS: [(&str, v1::PiiPattern); 4] = [
    ("email", v1::PiiPattern::Email),
    ("phone", v1::PiiPattern::Phone),
    ("national_id", v1::PiiPattern::NationalId),
    ("card_number", v1::PiiPattern::CardNumber),
];

const DAYS: [(&str, v1::Weekday); 7] = [
    ("mon", v1::Weekday::Mon),
    ("tue", v1::Weekday::Tue),
    ("wed", v1::Weekday::Wed),
    ("thu", v1::Weekday::Thu),
    ("fri", v1::Weekday::Fri),
    ("sat", v1::Weekday::Sat),
    ("sun", v1::Weekday::Sun),
];

/// Comma-separated items, trimmed, empty ones dropped.
pub(super) fn split(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Minutes after midnight as `HH:MM`.
fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// `HH:MM` (00:00 to 24:00) as minutes after midnight.
fn parse_hhmm(field: &str, text: &str) -> Result<u32, String> {
    let bad = || format!("{field}: {text:?} is not a time HH:MM (00:00 to 24:00)");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m > 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A config's values in words, one line each, for the detail pane.
pub fn describe_config(config: Option<&Config>) -> Vec<(String, String)> {
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    match config {
        None => vec![("Kind".into(), "none".into())],
        Some(Config::PiiRedaction(c)) => vec![
            ("Fields".into(), list(&c.fields)),
            (
                "Patterns".into(),
                list(
                    &c.patterns
                        .iter()
                        .map(|p| {
                            PATTERNS
                                .iter()
                                .find(|(_, q)| *q as i32 == *p)
                                .map_or("?", |(n, _)| n)
                                .to_owned()
                        })
                        .collect::<Vec<_>>(),
                ),
            ),
            (
                "Placeholder".into(),
                if c.placeholder.is_empty() {
                    "[REDACTED]".into()
                } else {
                    c.placeholder.clone()
                },
            ),
        ],
        Some(Config::CardBlocking(_)) => {
            vec![("Refuses".into(), "card numbers (Luhn) in arguments".into())]
        }
        Some(Config::QueryScope(c)) => vec![
            ("Allow objects".into(), list(&c.allow_objects)),
            ("Deny objects".into(), list(&c.deny_objects)),
            (
                "LIMIT".into(),
                c.max_limit
                    .map_or("not required".into(), |n| format!("required, at most {n}")),
            ),
            (
                "queryAll".into(),
                if c.deny_query_all {
                    "refused"
                } else {
                    "allowed"
                }
                .into(),
            ),
        ],
        Some(Config::WriteWindow(c)) => vec![
            (
                "Days".into(),
                if c.days.is_empty() {
                    "every day".into()
                } else {
                    c.days
                        .iter()
                        .map(|d| {
                            DAYS.iter()
                                .find(|(_, w)| *w as i32 == *d)
                                .map_or("?", |(n, _)| n)
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ),
            (
                "Hours".into(),
                format!("{}-{}", hhmm(c.start_minute), hhmm(c.end_minute)),
            ),
            ("Time zone".into(), c.time_zone.clone()),
        ],
        Some(Config::Webhook(c)) => vec![
            ("URL".into(), c.url.clone()),
            (
                "Secret".into(),
                if c.secret_fingerprint.is_empty() {
                    "none".into()
                } else {
                    format!(
                        "set {} (fingerprint {})",
                        crate::ui::when(c.secret_set_at.as_ref(), "-"),
                        c.secret_fingerprint
                    )
                },
            ),
        ],
    }
}

impl App {
    /// The hooks shown, in run order (after the `/` filter on name and
    /// kind).
    pub fn hooks_shown(&self) -> Vec<&v1::Hook> {
        let needle = self.filter_text(Screen::Hooks);
        self.hooks
            .ready()
            .map(|all| {
                all.iter()
                    .filter(|h| {
                        needle.is_empty()
                            || h.name.to_lowercase().contains(&needle)
                            || hook_kind(h).is_some_and(|k| k.label().contains(&needle))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The selected hook.
    pub fn selected_hook(&self) -> Option<&v1::Hook> {
        self.hooks_shown().get(self.hooks_cursor.selected).copied()
    }

    /// A hook's filter in one line, ids named: `tools salesforce_*;
    /// classes delete; users ana@example.com`, or `every call`.
    pub fn describe_filter(&self, filter: Option<&v1::HookFilter>) -> String {
        let Some(f) = filter else {
            return "every call".into();
        };
        let mut parts = Vec::new();
        if !f.tools.is_empty() {
            parts.push(format!("tools {}", f.tools.join(", ")));
        }
        if !f.classifications.is_empty() {
            let tags: Vec<&str> = f.classifications.iter().map(|t| tag_name(*t)).collect();
            parts.push(format!("classes {}", tags.join(", ")));
        }
        if !f.server_ids.is_empty() {
            let names: Vec<String> = f.server_ids.iter().map(|id| self.server_name(id)).collect();
            parts.push(format!("servers {}", names.join(", ")));
        }
        if !f.user_ids.is_empty() {
            let emails: Vec<String> = f.user_ids.iter().map(|id| self.user_email(id)).collect();
            parts.push(format!("users {}", emails.join(", ")));
        }
        if !f.profile_ids.is_empty() {
            let names: Vec<String> = f
                .profile_ids
                .iter()
                .map(|id| self.profile_name(id))
                .collect();
            parts.push(format!("profiles {}", names.join(", ")));
        }
        if parts.is_empty() {
            "every call".into()
        } else {
            parts.join("; ")
        }
    }

    /// A profile's name by id (the id when unknown).
    pub fn profile_name(&self, id: &str) -> String {
        self.profiles
            .ready()
            .and_then(|all| all.iter().find(|p| p.id == id))
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_owned())
    }

    pub(super) fn hooks_intent(&mut self, intent: Intent, rows: usize) {
        if self.navigate(intent, rows) {
            return;
        }
        if intent == Intent::New {
            self.overlay = Some(Overlay::Form(
                Form::new(
                    FormKind::NewHookKind,
                    "New hook",
                    vec![Field::choice(
                        "kind",
                        "Kind",
                        HookKindName::ALL
                            .iter()
                            .map(|k| (k.label().to_owned(), k.label().to_owned()))
                            .collect(),
                        "",
                        "←/→ to choose, Enter for its settings",
                    )],
                )
                .with_intro(vec![
                    "PII redaction rewrites results; card blocking, query scope and".into(),
                    "write window check calls; a webhook asks your endpoint.".into(),
                ]),
            ));
            return;
        }
        if !matches!(
            intent,
            Intent::Edit | Intent::Toggle | Intent::Delete | Intent::DryRun
        ) {
            return;
        }
        let Some(hook) = self.selected_hook().cloned() else {
            self.info("no hook selected: press n to create one");
            return;
        };
        match intent {
            Intent::Edit => {
                let Some(kind) = hook_kind(&hook) else {
                    self.error(format!("{} has no settings this console knows", hook.name));
                    return;
                };
                let form = self.hook_form(kind, Some(&hook));
                self.overlay = Some(Overlay::Form(form));
            }
            Intent::Toggle => {
                let mut changed = hook.clone();
                changed.enabled = !hook.enabled;
                let command = Command::UpdateHook {
                    hook: Box::new(changed.clone()),
                    secret: None,
                    expected_revision: Some(hook.revision),
                };
                // Show the new value at once (the reload confirms it; a
                // failure reloads too).
                if let Loadable::Ready(all) = &mut self.hooks
                    && let Some(shown) = all.iter_mut().find(|h| h.id == hook.id)
                {
                    shown.enabled = changed.enabled;
                }
                self.send(command, Purpose::Change);
            }
            Intent::Delete => {
                self.overlay = Some(Overlay::Confirm(Confirm {
                    title: format!("Delete hook {}", hook.name),
                    lines: vec![
                        format!(
                            "Calls it matches ({}) no longer run through it.",
                            self.describe_filter(hook.filter.as_ref())
                        ),
                        "A webhook's secret is deleted too. This cannot be undone.".into(),
                    ],
                    command: Command::DeleteHook { id: hook.id },
                }));
            }
            _ => {
                let after = hook.phase == v1::HookPhase::After as i32;
                let tool = hook
                    .filter
                    .as_ref()
                    .and_then(|f| f.tools.iter().find(|t| !t.contains(['*', '?'])))
                    .cloned()
                    .unwrap_or_else(|| "salesforce_query".into());
                let mut form = Form::new(
                    FormKind::TestHook {
                        id: hook.id.clone(),
                    },
                    &format!("Dry run of {}", hook.name),
                    vec![
                        Field::text(
                            "tool",
                            "Tool",
                            &tool,
                            "the exposed tool name of the sample call",
                        ),
                        Field::text("user", "User", "", "email, for the filter; empty: any user"),
                        Field::text(
                            "arguments",
                            "Arguments",
                            r#"{"soql": "SELECT Id FROM Account LIMIT 10"}"#,
                            "the call's arguments, a JSON object",
                        ),
                        Field::text(
                            "result",
                            "Result",
                            r#"{"records": [{"Email": "ana@example.com"}]}"#,
                            "the result's structured content, a JSON object",
                        ),
                    ],
                )
                .with_intro(vec![
                    "Nothing reaches Salesforce and nothing is audited; a webhook is called with"
                        .into(),
                    "\"dry_run\": true.".into(),
                ]);
                form.set_enabled("result", after);
                self.overlay = Some(Overlay::Form(form));
            }
        }
    }

    /// The kind chosen in the new-hook form opens that kind's form.
    pub(super) fn open_hook_form(&mut self, chooser: &Form) {
        let chosen = chooser.choice("kind");
        let kind = HookKindName::ALL
            .into_iter()
            .find(|k| k.label() == chosen)
            .unwrap_or(HookKindName::PiiRedaction);
        let form = self.hook_form(kind, None);
        self.overlay = Some(Overlay::Form(form));
    }

    /// The form of a hook of `kind`, filled from `current` (editing) or
    /// with defaults (new).
    fn hook_form(&self, kind: HookKindName, current: Option<&v1::Hook>) -> Form {
        let d = current.cloned().unwrap_or(v1::Hook {
            enabled: true,
            timeout_ms: 2000,
            ..Default::default()
        });
        let f = d.filter.clone().unwrap_or_default();
        let names = |ids: &[String], name: &dyn Fn(&str) -> String| {
            ids.iter().map(|id| name(id)).collect::<Vec<_>>().join(", ")
        };
        let mut fields = vec![Field::text(
            "name",
            "Name",
            &d.name,
            "unique; named in audit events",
        )];
        if kind.fixed_phase().is_none() {
            fields.push(Field::choice(
                "phase",
                "Phase",
                vec![
                    ("before the call".into(), "before".into()),
                    ("after the call (result)".into(), "after".into()),
                ],
                if d.phase == v1::HookPhase::After as i32 {
                    "after"
                } else {
                    "before"
                },
                "before: allow, deny or rewrite arguments; after: rewrite or block the result",
            ));
        }
        fields.extend([
            Field::text(
                "priority",
                "Priority",
                &d.priority.to_string(),
                "lower runs first (ties by name)",
            ),
            Field::text(
                "timeout",
                "Timeout (ms)",
                &d.timeout_ms.to_string(),
                "1 to 30000; a hook that runs out of time denies the call",
            ),
            Field::toggle(
                "enabled",
                "Enabled",
                d.enabled,
                "a disabled hook never runs",
            ),
            Field::text(
                "tools",
                "Tools",
                &f.tools.join(", "),
                "filter: exposed names or globs (salesforce_*), comma-separated; empty: any",
            ),
            Field::text(
                "classes",
                "Classifications",
                &f.classifications
                    .iter()
                    .map(|t| tag_name(*t))
                    .collect::<Vec<_>>()
                    .join(", "),
                "filter: read, write, delete, sensitive, dangerous; empty: any",
            ),
            Field::text(
                "servers",
                "Servers",
                &names(&f.server_ids, &|id| self.server_name(id)),
                "filter: server names, comma-separated; empty: any",
            ),
            Field::text(
                "users",
                "Users",
                &names(&f.user_ids, &|id| self.user_email(id)),
                "filter: user emails, comma-separated; empty: any",
            ),
            Field::text(
                "profiles",
                "Profiles",
                &names(&f.profile_ids, &|id| self.profile_name(id)),
                "filter: access profile names (the user holds one); empty: any",
            ),
        ]);
        match (kind, d.config.as_ref()) {
            (HookKindName::PiiRedaction, config) => {
                let c = match config {
                    Some(Config::PiiRedaction(c)) => c.clone(),
                    _ => v1::PiiRedactionConfig {
                        fields: vec!["Email".into(), "Phone".into()],
                        patterns: vec![v1::PiiPattern::Email as i32],
                        ..Default::default()
                    },
                };
                let patterns: Vec<&str> = c
                    .patterns
                    .iter()
                    .filter_map(|p| PATTERNS.iter().find(|(_, q)| *q as i32 == *p))
                    .map(|(n, _)| *n)
                    .collect();
                fields.extend([
                    Field::text(
                        "fields",
                        "Fields",
                        &c.fields.join(", "),
                        "field names replaced at any depth (Email, Phone, SSN__c), case-insensitive",
                    ),
                    Field::text(
                        "patterns",
                        "Patterns",
                        &patterns.join(", "),
                        "email, phone, national_id, card_number (Luhn-checked)",
                    ),
                    Field::text(
                        "placeholder",
                        "Placeholder",
                        &c.placeholder,
                        "the replacement; empty: [REDACTED]",
                    ),
                ]);
            }
            (HookKindName::CardBlocking, _) => {}
            (HookKindName::QueryScope, config) => {
                let c = match config {
                    Some(Config::QueryScope(c)) => c.clone(),
                    _ => v1::QueryScopeConfig::default(),
                };
                fields.extend([
                    Field::text(
                        "allow",
                        "Allow objects",
                        &c.allow_objects.join(", "),
                        "sObjects a query may touch (parsed from the SOQL); empty: any not denied",
                    ),
                    Field::text(
                        "deny",
                        "Deny objects",
                        &c.deny_objects.join(", "),
                        "sObjects a query may not touch, subqueries and relationships included",
                    ),
                    Field::text(
                        "max_limit",
                        "Max LIMIT",
                        &c.max_limit.map(|n| n.to_string()).unwrap_or_default(),
                        "1 to 50000: a query must have a LIMIT of at most this; empty: no LIMIT needed",
                    ),
                    Field::toggle(
                        "deny_query_all",
                        "Refuse queryAll",
                        c.deny_query_all,
                        "deleted and archived records stay out of reach",
                    ),
                ]);
            }
            (HookKindName::WriteWindow, config) => {
                let c = match config {
                    Some(Config::WriteWindow(c)) => c.clone(),
                    _ => v1::WriteWindowConfig {
                        days: (1..=5).collect(),
                        start_minute: 9 * 60,
                        end_minute: 18 * 60,
                        time_zone: "UTC".into(),
                    },
                };
                let days: Vec<&str> = c
                    .days
                    .iter()
                    .filter_map(|d| DAYS.iter().find(|(_, w)| *w as i32 == *d))
                    .map(|(n, _)| *n)
                    .collect();
                fields.extend([
                    Field::text(
                        "days",
                        "Days",
                        &days.join(", "),
                        "mon, tue, wed, thu, fri, sat, sun; empty: every day",
                    ),
                    Field::text("start", "Opens", &hhmm(c.start_minute), "HH:MM local time"),
                    Field::text(
                        "end",
                        "Closes",
                        &hhmm(c.end_minute),
                        "HH:MM local time (24:00 for midnight), after the opening",
                    ),
                    Field::text(
                        "time_zone",
                        "Time zone",
                        &c.time_zone,
                        "IANA name, e.g. Europe/Lisbon or America/New_York",
                    ),
                ]);
            }
            (HookKindName::Webhook, config) => {
                let c = match config {
                    Some(Config::Webhook(c)) => c.clone(),
                    _ => v1::WebhookConfig::default(),
                };
                let secret_help = if c.secret_fingerprint.is_empty() {
                    "16 to 256 characters, required; signs X-Toolgate-Signature (HMAC-SHA256)"
                        .to_owned()
                } else {
                    format!(
                        "stored (fingerprint {}); leave empty to keep it",
                        c.secret_fingerprint
                    )
                };
                fields.extend([
                    Field::text(
                        "url",
                        "URL",
                        &c.url,
                        "https://… (http only on a loopback host); answers {\"decision\": …}",
                    ),
                    Field::secret("secret", "Secret", &secret_help),
                ]);
            }
        }
        let (form_kind, title) = match current {
            Some(h) => (
                FormKind::EditHook {
                    id: h.id.clone(),
                    revision: h.revision,
                    kind,
                },
                format!("Edit hook {}", h.name),
            ),
            None => (
                FormKind::NewHook { kind },
                format!("New {} hook", kind.label()),
            ),
        };
        Form::new(form_kind, &title, fields)
    }

    /// Ids of the comma-separated names in `text` (or ids themselves),
    /// found by `find`; the error names the field and the unknown name.
    fn ids_of(
        text: &str,
        field: &str,
        what: &str,
        find: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, String> {
        split(text)
            .into_iter()
            .map(|name| find(&name).ok_or_else(|| format!("{field}: no {what} {name:?}")))
            .collect()
    }

    fn hook_from_form(&self, form: &Form, kind: HookKindName) -> Result<v1::Hook, String> {
        let name = form.text("name");
        if name.is_empty() {
            return Err("name: required".into());
        }
        let phase = match kind.fixed_phase() {
            Some(p) => p,
            None if form.choice("phase") == "after" => v1::HookPhase::After,
            None => v1::HookPhase::Before,
        };
        let priority: i32 = form
            .text("priority")
            .parse()
            .map_err(|_| "priority: a whole number (lower runs first)".to_owned())?;
        let timeout = form.text("timeout");
        let timeout_ms: u32 = if timeout.is_empty() {
            0
        } else {
            timeout
                .parse()
                .map_err(|_| "timeout: milliseconds, 1 to 30000".to_owned())?
        };
        let servers = Self::ids_of(&form.text("servers"), "servers", "server named", |n| {
            self.servers.ready().and_then(|all| {
                all.iter()
                    .find(|s| s.name.eq_ignore_ascii_case(n) || s.id == n)
                    .map(|s| s.id.clone())
            })
        })?;
        let users = Self::ids_of(&form.text("users"), "users", "user with email", |n| {
            self.users.ready().and_then(|all| {
                all.iter()
                    .find(|u| u.email.eq_ignore_ascii_case(n) || u.id == n)
                    .map(|u| u.id.clone())
            })
        })?;
        let profiles = Self::ids_of(
            &form.text("profiles"),
            "profiles",
            "access profile named",
            |n| {
                self.profiles.ready().and_then(|all| {
                    all.iter()
                        .find(|p| p.name.eq_ignore_ascii_case(n) || p.id == n)
                        .map(|p| p.id.clone())
                })
            },
        )?;
        let filter = v1::HookFilter {
            tools: split(&form.text("tools")),
            server_ids: servers,
            classifications: parse_tags("classifications", &form.text("classes"))?,
            user_ids: users,
            profile_ids: profiles,
        };
        let config = match kind {
            HookKindName::PiiRedaction => {
                let patterns = split(&form.text("patterns"))
                    .into_iter()
                    .map(|p| {
                        PATTERNS
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(&p))
                            .map(|(_, q)| *q as i32)
                            .ok_or_else(|| {
                                format!(
                                    "patterns: {p:?} is not email, phone, national_id or card_number"
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Config::PiiRedaction(v1::PiiRedactionConfig {
                    fields: split(&form.text("fields")),
                    patterns,
                    placeholder: form.text("placeholder"),
                })
            }
            HookKindName::CardBlocking => Config::CardBlocking(v1::CardBlockingConfig {}),
            HookKindName::QueryScope => {
                let max = form.text("max_limit");
                let max_limit = if max.is_empty() {
                    None
                } else {
                    Some(max.parse::<u32>().map_err(|_| {
                        "max LIMIT: a number 1 to 50000, or empty for none".to_owned()
                    })?)
                };
                Config::QueryScope(v1::QueryScopeConfig {
                    allow_objects: split(&form.text("allow")),
                    deny_objects: split(&form.text("deny")),
                    max_limit,
                    deny_query_all: form.toggle("deny_query_all"),
                })
            }
            HookKindName::WriteWindow => {
                let days = split(&form.text("days"))
                    .into_iter()
                    .map(|d| {
                        DAYS.iter()
                            .find(|(n, _)| d.to_lowercase().starts_with(n))
                            .map(|(_, w)| *w as i32)
                            .ok_or_else(|| format!("days: {d:?} is not mon, tue, … or sun"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let time_zone = form.text("time_zone");
                if time_zone.is_empty() {
                    return Err("time zone: required (an IANA name, e.g. Europe/Lisbon)".into());
                }
                Config::WriteWindow(v1::WriteWindowConfig {
                    days,
                    start_minute: parse_hhmm("opens", &form.text("start"))?,
                    end_minute: parse_hhmm("closes", &form.text("end"))?,
                    time_zone,
                })
            }
            HookKindName::Webhook => {
                let url = form.text("url");
                if url.is_empty() {
                    return Err("URL: required (https://…)".into());
                }
                Config::Webhook(v1::WebhookConfig {
                    url,
                    ..Default::default()
                })
            }
        };
        Ok(v1::Hook {
            name,
            phase: phase.into(),
            priority,
            enabled: form.toggle("enabled"),
            filter: Some(filter),
            timeout_ms,
            config: Some(config),
            ..Default::default()
        })
    }

    /// A submitted hook form as CreateHook or UpdateHook.
    pub(super) fn submit_hook(&mut self, form: &mut Form) -> Option<Command> {
        let (kind, edit) = match form.kind.clone() {
            FormKind::NewHook { kind } => (kind, None),
            FormKind::EditHook { id, revision, kind } => (kind, Some((id, revision))),
            _ => return None,
        };
        let mut hook = match self.hook_from_form(form, kind) {
            Ok(hook) => hook,
            Err(message) => {
                form.fail(message);
                return None;
            }
        };
        let typed = form.take_secret("secret");
        let secret = (!typed.is_empty()).then(|| HookSecret(typed));
        Some(match edit {
            Some((id, revision)) => {
                hook.id = id;
                Command::UpdateHook {
                    hook: Box::new(hook),
                    secret,
                    expected_revision: Some(revision),
                }
            }
            None => {
                if kind == HookKindName::Webhook && secret.is_none() {
                    form.fail("secret: required for a webhook (16 to 256 characters)");
                    return None;
                }
                Command::CreateHook {
                    hook: Box::new(hook),
                    secret,
                }
            }
        })
    }

    /// A submitted dry-run form as TestHook.
    pub(super) fn submit_hook_test(&mut self, form: &mut Form) -> Option<Command> {
        let FormKind::TestHook { id } = form.kind.clone() else {
            return None;
        };
        let tool = form.text("tool");
        if tool.is_empty() {
            form.fail("tool: required (an exposed tool name)");
            return None;
        }
        let email = form.text("user");
        let user_id = if email.is_empty() {
            String::new()
        } else {
            match self
                .users
                .ready()
                .and_then(|all| all.iter().find(|u| u.email.eq_ignore_ascii_case(&email)))
            {
                Some(u) => u.id.clone(),
                None => {
                    form.fail(format!("user: no user with email {email:?}"));
                    return None;
                }
            }
        };
        let object = |field: &str, key: &str, form: &Form| -> Result<String, String> {
            let text = form.text(key);
            if text.is_empty() {
                return Ok("{}".into());
            }
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(_)) => Ok(text),
                Ok(_) => Err(format!("{field}: must be a JSON object {{…}}")),
                Err(e) => Err(format!("{field}: not JSON ({e})")),
            }
        };
        let arguments_json = match object("arguments", "arguments", form) {
            Ok(json) => json,
            Err(message) => {
                form.fail(message);
                return None;
            }
        };
        let after = self
            .hooks
            .ready()
            .and_then(|all| all.iter().find(|h| h.id == id))
            .is_some_and(|h| h.phase == v1::HookPhase::After as i32);
        let result_json = if after {
            match object("result", "result", form) {
                Ok(json) => json,
                Err(message) => {
                    form.fail(message);
                    return None;
                }
            }
        } else {
            String::new()
        };
        self.hook_test = Some(Loadable::Loading);
        Some(Command::TestHook(Box::new(v1::TestHookRequest {
            id,
            hook: None,
            webhook_secret: None,
            tool,
            user_id,
            arguments_json,
            result_json,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_tags_parse_and_name_their_field() {
        assert_eq!(parse_hhmm("opens", "09:30"), Ok(570));
        assert_eq!(parse_hhmm("closes", "24:00"), Ok(1440));
        assert!(
            parse_hhmm("closes", "24:01")
                .unwrap_err()
                .starts_with("closes:")
        );
        assert!(parse_hhmm("opens", "9h").unwrap_err().starts_with("opens:"));
        assert_eq!(hhmm(570), "09:30");
        assert_eq!(
            parse_tags("classifications", "delete, Dangerous"),
            Ok(vec![
                v1::ClassificationTag::Delete as i32,
                v1::ClassificationTag::Dangerous as i32
            ])
        );
        let bad = parse_tags("classifications", "risky").unwrap_err();
        assert!(bad.starts_with("classifications: \"risky\""), "{bad}");
    }
}
