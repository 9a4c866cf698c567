//! The audit screen: a live tail of the audit log (`StreamEvents` after a
//! backlog from `ListEvents`), filters, and the event detail. Newest events
//! are at the top; while the top row is selected the view follows new
//! events, otherwise the selection stays on its event.

use std::collections::VecDeque;

use toolgate_proto::v1;

use super::{App, Cursor, Field, Form, FormKind, Overlay, Purpose, Screen};
use crate::action::{AuditFilter, Command};
use crate::keymap::Intent;

/// The action prefixes the filter form offers as examples. The daemon
/// keeps the events whose action starts with the prefix (gateway
/// `control/audit.rs`); actions are dotted (`tool.call` is an MCP tool
/// call, `tool.update` an admin's change to a tool, `server.register` ...),
/// and a test checks that each example finds events a real daemon wrote.
pub const ACTION_EXAMPLES: [&str; 3] = ["tool.call", "tool.", "server."];

/// The target prefix the filter form offers as an example: tool calls are
/// audited as `tool/<exposed name> on <server name>`.
pub const TARGET_EXAMPLE: &str = "tool/salesforce_query";

/// How many events the console keeps in memory.
pub const AUDIT_KEEP: usize = 5000;

/// The state of the live tail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Tail {
    /// Not started (the screen was never opened).
    #[default]
    Idle,
    /// Subscribing and loading the backlog.
    Connecting,
    /// Receiving events.
    Live,
    /// Ended; the message says why (r restarts it).
    Stopped(String),
}

/// The audit screen's state.
#[derive(Debug)]
pub struct AuditState {
    /// Events, newest first, at most [`AUDIT_KEEP`].
    pub events: VecDeque<v1::AuditEvent>,
    /// The tail.
    pub tail: Tail,
    /// The running tail request.
    pub tail_id: Option<u64>,
    /// The server-side filters.
    pub filter: AuditFilter,
    /// Selection.
    pub cursor: Cursor,
    /// Whether the selection follows the newest event.
    pub follow: bool,
}

impl Default for AuditState {
    fn default() -> Self {
        Self {
            events: VecDeque::new(),
            tail: Tail::Idle,
            tail_id: None,
            filter: AuditFilter::default(),
            cursor: Cursor::default(),
            follow: true,
        }
    }
}

/// Whether an event matches the `/` text (lowercase; empty matches all):
/// actor, action, target or reason contain it.
fn matches_text(e: &v1::AuditEvent, needle: &str) -> bool {
    needle.is_empty()
        || e.actor.to_lowercase().contains(needle)
        || e.action.to_lowercase().contains(needle)
        || e.target.to_lowercase().contains(needle)
        || e.reason.to_lowercase().contains(needle)
}

/// An outcome in words.
pub fn outcome_name(outcome: i32) -> &'static str {
    match v1::Outcome::try_from(outcome).unwrap_or_default() {
        v1::Outcome::Allowed => "allowed",
        v1::Outcome::Denied => "DENIED",
        v1::Outcome::Error => "error",
        v1::Outcome::Unspecified => "-",
    }
}

impl App {
    /// The events shown (after the `/` filter, which matches actor, action,
    /// target and reason).
    pub fn audit_shown(&self) -> Vec<&v1::AuditEvent> {
        let needle = self.filter_text(Screen::Audit);
        self.audit
            .events
            .iter()
            .filter(|e| matches_text(e, &needle))
            .collect()
    }

    /// The selected event.
    pub fn selected_event(&self) -> Option<&v1::AuditEvent> {
        self.audit_shown().get(self.audit.cursor.selected).copied()
    }

    pub(super) fn start_tail(&mut self) {
        if let Some(old) = self.audit.tail_id.take() {
            self.pending.remove(&old);
            // A cancel gets no reply, so it is not tracked as pending.
            let id = self.next_id;
            self.next_id += 1;
            self.requests.push(crate::action::Request {
                id,
                command: Command::Cancel { id: old },
            });
        }
        self.audit.events.clear();
        self.audit.cursor = Cursor::default();
        self.audit.follow = true;
        self.audit.tail = Tail::Connecting;
        let id = self.send(
            Command::TailAudit {
                filter: self.audit.filter.clone(),
            },
            Purpose::Tail,
        );
        self.audit.tail_id = Some(id);
    }

    pub(super) fn tail_failed(&mut self, id: u64, message: String) {
        if self.audit.tail_id == Some(id) {
            self.audit.tail_id = None;
            self.audit.tail = Tail::Stopped(message);
        }
    }

    pub(super) fn audit_backlog(&mut self, id: u64, events: Vec<v1::AuditEvent>) {
        if self.audit.tail_id != Some(id) {
            return;
        }
        self.audit.tail = Tail::Live;
        for event in events.into_iter().rev() {
            self.push_event(event);
        }
    }

    pub(super) fn audit_event(&mut self, id: u64, event: v1::AuditEvent) {
        if self.audit.tail_id != Some(id) {
            return;
        }
        self.audit.tail = Tail::Live;
        self.push_event(event);
    }

    /// Adds an event at the top unless it is already there (the backlog and
    /// the tail overlap by design).
    fn push_event(&mut self, event: v1::AuditEvent) {
        let newest = self.audit.events.front().map(|e| e.sequence);
        if newest.is_some_and(|n| event.sequence <= n) {
            return;
        }
        let shown = matches_text(&event, &self.filter_text(Screen::Audit));
        self.audit.events.push_front(event);
        if self.audit.events.len() > AUDIT_KEEP {
            self.audit.events.pop_back();
        }
        // Keep the selection on its event: a new row above it moves it down.
        if shown && !self.audit.follow {
            self.audit.cursor.selected += 1;
            self.audit.cursor.offset += 1;
        }
    }

    pub(super) fn audit_intent(&mut self, intent: Intent, rows: usize) {
        if self.navigate(intent, rows) {
            return;
        }
        match intent {
            Intent::Follow => {
                self.audit.follow = true;
                self.audit.cursor = Cursor::default();
            }
            Intent::Filter => {
                let f = &self.audit.filter;
                self.overlay = Some(Overlay::Form(
                    Form::new(
                        FormKind::AuditFilter,
                        "Filter the audit tail",
                        vec![
                            Field::text(
                                "actor",
                                "Actor",
                                &f.actor,
                                "exact, e.g. user:ana@example.com or admin",
                            ),
                            Field::text(
                                "action_prefix",
                                "Action starts with",
                                &f.action_prefix,
                                &format!(
                                    "e.g. {} (MCP tool calls), {} or {}",
                                    ACTION_EXAMPLES[0], ACTION_EXAMPLES[1], ACTION_EXAMPLES[2]
                                ),
                            ),
                            Field::text(
                                "target_prefix",
                                "Target starts with",
                                &f.target_prefix,
                                &format!("e.g. {TARGET_EXAMPLE} (every call of that tool)"),
                            ),
                        ],
                    )
                    .with_intro(vec![
                        "The daemon applies these; the tail restarts. / filters what is shown."
                            .into(),
                    ]),
                ));
            }
            _ => {}
        }
    }

    pub(super) fn apply_audit_filter(&mut self, form: &Form) {
        self.audit.filter = AuditFilter {
            actor: form.text("actor"),
            action_prefix: form.text("action_prefix"),
            target_prefix: form.text("target_prefix"),
        };
        self.overlay = None;
        self.start_tail();
    }
}
