//! Tool-call hooks: admin-configured checks and rewrites on every matching
//! MCP tool call (DESIGN.md, "Hook"; `toolgate.v1.HookService`).
//!
//! Owns: selecting the hooks of a phase whose [`HookFilter`] matches a call
//! ([`matches`]), running them in order ([`run_phase`]) each within its
//! timeout, and the built-ins: [`pii`] redaction (AFTER), [`card`] number
//! blocking, [`query_scope`] and [`write_window`] (BEFORE), and
//! [`webhook`] (either).
//!
//! Rules: hooks run in priority order (lower first, ties by name). A
//! BEFORE hook may allow, deny with a reason, or rewrite the arguments
//! (later hooks see the rewrite); an AFTER hook may allow, rewrite or
//! block the result. The first denial stops the run. A hook that fails
//! (ERROR) or runs out of time (TIMEOUT) denies the call: fail closed.
//! Each run is reported as a [`HookRun`] for the audit event's
//! `details.hooks` (name, phase, outcome, reason, redaction counts; never
//! argument or result values).

pub mod card;
pub mod pii;
pub mod query_scope;
pub mod webhook;
pub mod write_window;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::model::{AccessProfile, Hook, HookFilter, HookKind, HookPhase, Millis, Tool};

/// How one hook run ended (`HookOutcome` in `hook.proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookOutcome {
    /// Let the call (or result) through unchanged.
    Allowed,
    /// Rewrote the arguments or the result.
    Mutated,
    /// Refused the call (or blocked the result).
    Denied,
    /// Failed; the call is denied.
    Error,
    /// Ran out of time; the call is denied.
    Timeout,
}

impl HookOutcome {
    /// The audit spelling: `ALLOWED`, `MUTATED`, `DENIED`, `ERROR`,
    /// `TIMEOUT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "ALLOWED",
            Self::Mutated => "MUTATED",
            Self::Denied => "DENIED",
            Self::Error => "ERROR",
            Self::Timeout => "TIMEOUT",
        }
    }

    /// Whether the call stops here.
    pub fn stops(self) -> bool {
        matches!(self, Self::Denied | Self::Error | Self::Timeout)
    }
}

/// The phase's audit spelling.
pub fn phase_str(phase: HookPhase) -> &'static str {
    match phase {
        HookPhase::Before => "BEFORE",
        HookPhase::After => "AFTER",
    }
}

/// One hook's run on one call.
#[derive(Debug, Clone, PartialEq)]
pub struct HookRun {
    /// The hook's name.
    pub name: String,
    /// Its phase.
    pub phase: HookPhase,
    /// How it ended.
    pub outcome: HookOutcome,
    /// Why (a denial's reason, an error); empty when allowed.
    pub reason: String,
    /// PII redaction counts by field name or `pattern:<PATTERN>`.
    pub redactions: BTreeMap<String, u32>,
}

impl HookRun {
    /// The audit form: `{name, phase, outcome, reason, redactions}`.
    pub fn to_audit(&self) -> Value {
        json!({
            "name": self.name,
            "phase": phase_str(self.phase),
            "outcome": self.outcome.as_str(),
            "reason": self.reason,
            "redactions": self.redactions,
        })
    }

    /// The text a refused call answers with: which hook refused and why.
    pub fn refusal(&self) -> String {
        let what = match self.phase {
            HookPhase::Before => "call",
            HookPhase::After => "result",
        };
        match self.outcome {
            HookOutcome::Denied => format!(
                "toolgate hook {:?} refused this {what}: {}",
                self.name, self.reason
            ),
            HookOutcome::Timeout => format!(
                "toolgate hook {:?} did not answer in time, so the {what} was refused (hooks fail closed); try again later or ask your toolgate administrator",
                self.name
            ),
            _ => format!(
                "toolgate hook {:?} failed ({}), so the {what} was refused (hooks fail closed); ask your toolgate administrator",
                self.name, self.reason
            ),
        }
    }
}

/// Webhook signing secrets by hook id, read with the policy snapshot.
#[derive(Default, Clone)]
pub struct HookSecrets(HashMap<String, Zeroizing<Vec<u8>>>);

impl std::fmt::Debug for HookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HookSecrets({} sealed)", self.0.len())
    }
}

impl HookSecrets {
    /// Keeps `secret` for hook `id`.
    pub fn insert(&mut self, id: &str, secret: Vec<u8>) {
        self.0.insert(id.to_owned(), Zeroizing::new(secret));
    }

    /// The secret of hook `id`.
    pub fn get(&self, id: &str) -> Option<&[u8]> {
        self.0.get(id).map(|s| s.as_slice())
    }
}

/// Sorts hooks in run order: BEFORE then AFTER, each by priority then name.
pub fn sort_run_order(hooks: &mut [Hook]) {
    hooks.sort_by(|a, b| {
        let phase = |h: &Hook| u8::from(h.phase == HookPhase::After);
        phase(a)
            .cmp(&phase(b))
            .then(a.priority.cmp(&b.priority))
            .then_with(|| a.name.cmp(&b.name))
    });
}

/// The call a hook looks at (everything but the arguments or result).
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// The tool.
    pub tool: &'a Tool,
    /// Its server's name.
    pub server_name: &'a str,
    /// The user's id; `None` in a dry run without a user (user and profile
    /// filters then match).
    pub user_id: Option<&'a str>,
    /// The user's email.
    pub user_email: &'a str,
    /// The AI client's id and name.
    pub client_id: &'a str,
    /// The AI client's name.
    pub client_name: &'a str,
    /// Every access profile (for profile filters).
    pub profiles: &'a [AccessProfile],
    /// Now, Unix ms.
    pub now: Millis,
    /// A per-call id (webhook payloads).
    pub call_id: &'a str,
    /// A dry run (`TestHook`).
    pub dry_run: bool,
}

/// Whether the tool name `name` matches `pattern` (an exact name needs no
/// glob machinery, which allocates).
fn tool_matches(pattern: &str, name: &str) -> bool {
    if pattern.contains(['*', '?']) {
        crate::governance::tool_name_matches(pattern, name)
    } else {
        pattern == name
    }
}

/// Whether `filter` matches `call`: every non-empty list must match.
/// The cheap checks (servers, classifications) come before globs.
pub fn matches(filter: &HookFilter, call: &Call<'_>) -> bool {
    let tool = call.tool;
    (filter.server_ids.is_empty() || filter.server_ids.contains(&tool.server_id))
        && (filter.tools.is_empty() || filter.tools.iter().any(|g| tool_matches(g, &tool.name)))
        && (filter.classifications.is_empty()
            || filter
                .classifications
                .iter()
                .any(|t| t.matches(&tool.classification)))
        && (filter.user_ids.is_empty()
            || call
                .user_id
                .is_none_or(|u| filter.user_ids.iter().any(|x| x == u)))
        && (filter.profile_ids.is_empty()
            || call.user_id.is_none_or(|u| {
                call.profiles.iter().any(|p| {
                    filter.profile_ids.contains(&p.id)
                        && p.grants.iter().any(|g| {
                            g.user_id == u && g.expires_at.is_none_or(|end| end > call.now)
                        })
                })
            }))
}

/// Whether any enabled hook of `phase` in `hooks` matches `call` (cheap:
/// no allocation; the call path runs hooks only when this holds).
pub fn any_match(hooks: &[Hook], phase: HookPhase, call: &Call<'_>) -> bool {
    hooks
        .iter()
        .any(|h| h.enabled && h.phase == phase && matches(&h.filter, call))
}

/// What a phase did.
#[derive(Debug, Default)]
pub struct PhaseReport {
    /// Each hook that ran, in order.
    pub runs: Vec<HookRun>,
    /// Whether the value was rewritten.
    pub mutated: bool,
}

impl PhaseReport {
    /// The run that stopped the call, if any.
    pub fn stopped(&self) -> Option<&HookRun> {
        self.runs.last().filter(|r| r.outcome.stops())
    }
}

/// Runs one hook on `value` (the arguments BEFORE, the result's structured
/// content AFTER), within its timeout. `value` is changed only when the
/// outcome is MUTATED.
pub async fn run_one(
    hook: &Hook,
    call: &Call<'_>,
    value: &mut Value,
    secret: Option<&[u8]>,
    http: &reqwest::Client,
) -> HookRun {
    let timeout = Duration::from_millis(hook.timeout_ms.max(1));
    let work = execute(hook, call, value, secret, http);
    let (outcome, reason, redactions, replacement) = match tokio::time::timeout(timeout, work).await
    {
        Ok(done) => done,
        Err(_) => (
            HookOutcome::Timeout,
            format!("no answer within {} ms", hook.timeout_ms),
            BTreeMap::new(),
            None,
        ),
    };
    if let Some(new) = replacement {
        *value = new;
    }
    HookRun {
        name: hook.name.clone(),
        phase: hook.phase,
        outcome,
        reason,
        redactions,
    }
}

type Done = (HookOutcome, String, BTreeMap<String, u32>, Option<Value>);

async fn execute(
    hook: &Hook,
    call: &Call<'_>,
    value: &Value,
    secret: Option<&[u8]>,
    http: &reqwest::Client,
) -> Done {
    let allowed = || (HookOutcome::Allowed, String::new(), BTreeMap::new(), None);
    let denied = |reason: String| (HookOutcome::Denied, reason, BTreeMap::new(), None);
    match &hook.kind {
        HookKind::PiiRedaction {
            fields,
            patterns,
            placeholder,
        } => {
            let mut out = value.clone();
            let counts = pii::redact_value(&mut out, fields, patterns, placeholder);
            if counts.is_empty() {
                (HookOutcome::Allowed, String::new(), counts, None)
            } else {
                (HookOutcome::Mutated, String::new(), counts, Some(out))
            }
        }
        HookKind::CardBlocking => match card::find_card(value) {
            Some(path) => denied(card::reason(&path)),
            None => allowed(),
        },
        kind @ HookKind::QueryScope { .. } => {
            let Some(scope) = query_scope::Scope::of(kind) else {
                return allowed();
            };
            match scope.check(&call.tool.definition.name, value) {
                Ok(()) => allowed(),
                Err(reason) => denied(reason),
            }
        }
        HookKind::WriteWindow {
            days,
            start_minute,
            end_minute,
            time_zone,
        } => {
            use crate::model::ToolAction;
            if !matches!(
                call.tool.classification.action,
                ToolAction::Write | ToolAction::Delete
            ) {
                return allowed();
            }
            let Ok(tz) = time_zone.parse::<chrono_tz::Tz>() else {
                return (
                    HookOutcome::Error,
                    format!("unknown time zone {time_zone:?}"),
                    BTreeMap::new(),
                    None,
                );
            };
            let window = write_window::Window {
                days,
                start_minute: *start_minute,
                end_minute: *end_minute,
                tz,
            };
            let now = chrono::DateTime::from_timestamp_millis(call.now).unwrap_or_default();
            if window.is_open(now) {
                allowed()
            } else {
                denied(window.refusal(now))
            }
        }
        HookKind::Webhook { url, .. } => {
            let Some(secret) = secret else {
                return (
                    HookOutcome::Error,
                    "the webhook has no signing secret".into(),
                    BTreeMap::new(),
                    None,
                );
            };
            let facts = webhook::CallFacts {
                call_id: call.call_id,
                dry_run: call.dry_run,
                hook_id: &hook.id,
                hook_name: &hook.name,
                tool: &call.tool.name,
                tool_definition: &call.tool.definition.name,
                server_id: &call.tool.server_id,
                server: call.server_name,
                user_id: call.user_id.unwrap_or(""),
                user_email: call.user_email,
                client_id: call.client_id,
                client_name: call.client_name,
            };
            let body = webhook::payload(&facts, hook.phase, value, call.now);
            match webhook::call(http, url, secret, &body, hook.phase).await {
                Ok(webhook::Decision::Allow) => allowed(),
                Ok(webhook::Decision::Deny(reason)) => denied(reason),
                Ok(webhook::Decision::Mutate(new)) => {
                    if &new == value {
                        allowed()
                    } else {
                        (
                            HookOutcome::Mutated,
                            String::new(),
                            BTreeMap::new(),
                            Some(new),
                        )
                    }
                }
                Err(err) => (HookOutcome::Error, err.to_string(), BTreeMap::new(), None),
            }
        }
    }
}

/// Runs the enabled hooks of `phase` in `hooks` (in run order, see
/// [`sort_run_order`]) whose filter matches `call` on `value`, until one
/// stops the call.
pub async fn run_phase(
    hooks: &[Hook],
    secrets: &HookSecrets,
    phase: HookPhase,
    call: &Call<'_>,
    value: &mut Value,
    http: &reqwest::Client,
) -> PhaseReport {
    let mut report = PhaseReport::default();
    for hook in hooks
        .iter()
        .filter(|h| h.enabled && h.phase == phase && matches(&h.filter, call))
    {
        let run = run_one(hook, call, value, secrets.get(&hook.id), http).await;
        report.mutated |= run.outcome == HookOutcome::Mutated;
        let stop = run.outcome.stops();
        report.runs.push(run);
        if stop {
            break;
        }
    }
    report
}

/// Appends `runs` to `details["hooks"]`.
pub fn record(details: &mut Map<String, Value>, runs: &[HookRun]) {
    if runs.is_empty() {
        return;
    }
    let entry = details
        .entry("hooks")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = entry {
        list.extend(runs.iter().map(HookRun::to_audit));
    }
}

/// The text of a result whose structured content hooks rewrote: the new
/// structured content as compact JSON, cut at about 16 KiB (the full
/// content stays in `structuredContent`).
pub fn render_text(structured: &Value) -> String {
    const MAX: usize = 16 * 1024;
    let text = structured.to_string();
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… (cut; the full result is in the structured content)",
        &text[..end]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Classification, ClassificationTag, PiiPattern, ToolAction, ToolDefinition, ToolState,
    };

    fn tool(name: &str, def: &str, action: ToolAction) -> Tool {
        let definition: ToolDefinition = serde_json::from_value(json!({
            "name": def, "title": def, "description": "d",
            "input_schema": {"type": "object"}, "annotations": {}
        }))
        .unwrap();
        Tool {
            id: format!("t-{name}"),
            server_id: "s1".into(),
            name: name.into(),
            definition_hash: "h".into(),
            approved_hash: None,
            approved_definition: None,
            definition: definition.into(),
            state: ToolState::Approved,
            classification: Classification {
                action,
                sensitive: false,
                dangerous: false,
            },
            discovered_at: 0,
            updated_at: 0,
            updated_by: String::new(),
            drift: vec![],
        }
    }

    fn hook(name: &str, phase: HookPhase, priority: i32, kind: HookKind) -> Hook {
        Hook {
            id: format!("h-{name}"),
            name: name.into(),
            phase,
            priority,
            enabled: true,
            filter: HookFilter::default(),
            kind,
            timeout_ms: 1000,
            created_at: 0,
            updated_at: 0,
            revision: 1,
        }
    }

    fn call<'a>(tool: &'a Tool, profiles: &'a [AccessProfile]) -> Call<'a> {
        Call {
            tool,
            server_name: "Prod",
            user_id: Some("u1"),
            user_email: "ana@example.com",
            client_id: "c1",
            client_name: "Claude",
            profiles,
            now: 1_000,
            call_id: "call-1",
            dry_run: false,
        }
    }

    #[test]
    fn filters_need_every_non_empty_list() {
        let t = tool("salesforce_query", "query", ToolAction::Read);
        let profiles: Vec<AccessProfile> = vec![
            serde_json::from_value(json!({
                "id": "p1", "name": "p", "description": "", "toolset_ids": [],
                "grants": [
                    {"user_id": "u1", "granted_at": 0, "expires_at": 2000, "granted_by": "a"},
                ],
                "created_at": 0, "updated_at": 0, "revision": 1,
            }))
            .unwrap(),
        ];
        let c = call(&t, &profiles);
        let mut f = HookFilter::default();
        assert!(matches(&f, &c));
        f.tools = vec!["salesforce_*".into()];
        f.classifications = vec![ClassificationTag::Read];
        f.profile_ids = vec!["p1".into()];
        assert!(matches(&f, &c));
        let later = Call {
            now: 2_000,
            ..c.clone()
        };
        assert!(!matches(&f, &later), "the grant expired");
        f.server_ids = vec!["s2".into()];
        assert!(!matches(&f, &c));
        f.server_ids.clear();
        f.user_ids = vec!["u2".into()];
        assert!(!matches(&f, &c));
        let anyone = Call { user_id: None, ..c };
        assert!(matches(&f, &anyone), "dry run without a user");
    }

    #[tokio::test]
    async fn hooks_run_in_order_and_the_first_denial_stops() {
        let t = tool("salesforce_query", "query", ToolAction::Read);
        let mut hooks = vec![
            hook(
                "scope",
                HookPhase::Before,
                20,
                HookKind::QueryScope {
                    allow_objects: vec![],
                    deny_objects: vec!["Lead".into()],
                    max_limit: None,
                    deny_query_all: false,
                },
            ),
            hook("cards", HookPhase::Before, 10, HookKind::CardBlocking),
            hook(
                "pii",
                HookPhase::After,
                0,
                HookKind::PiiRedaction {
                    fields: vec!["Email".into()],
                    patterns: vec![PiiPattern::Phone],
                    placeholder: String::new(),
                },
            ),
            hook("after-cards", HookPhase::Before, 20, HookKind::CardBlocking),
        ];
        sort_run_order(&mut hooks);
        let names: Vec<&str> = hooks.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["cards", "after-cards", "scope", "pii"]);
        let http = reqwest::Client::new();
        let secrets = HookSecrets::default();
        let c = call(&t, &[]);
        let mut args = json!({"soql": "SELECT Id FROM Lead"});
        let report = run_phase(&hooks, &secrets, HookPhase::Before, &c, &mut args, &http).await;
        let outcomes: Vec<_> = report
            .runs
            .iter()
            .map(|r| (r.name.as_str(), r.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("cards", HookOutcome::Allowed),
                ("after-cards", HookOutcome::Allowed),
                ("scope", HookOutcome::Denied)
            ]
        );
        let stop = report.stopped().unwrap();
        assert!(
            stop.refusal().contains("\"scope\" refused this call"),
            "{}",
            stop.refusal()
        );

        let mut result = json!({"records": [{"Email": "a@b.co", "Note": "call 415-555-0100"}]});
        let report = run_phase(&hooks, &secrets, HookPhase::After, &c, &mut result, &http).await;
        assert!(report.mutated);
        assert_eq!(result["records"][0]["Email"], "[REDACTED]");
        assert_eq!(result["records"][0]["Note"], "call [REDACTED]");
        let mut details = Map::new();
        record(&mut details, &report.runs);
        assert_eq!(
            details["hooks"],
            json!([{"name": "pii", "phase": "AFTER", "outcome": "MUTATED", "reason": "",
                    "redactions": {"Email": 1, "pattern:PHONE": 1}}])
        );
    }

    #[tokio::test]
    async fn a_webhook_without_secret_or_answer_fails_closed() {
        let t = tool(
            "salesforce_create_record",
            "create_record",
            ToolAction::Write,
        );
        let h = hook(
            "hook",
            HookPhase::Before,
            0,
            HookKind::Webhook {
                url: "http://127.0.0.1:9/".into(),
                secret_set_at: None,
                secret_fingerprint: None,
            },
        );
        let http = reqwest::Client::new();
        let c = call(&t, &[]);
        let mut args = json!({});
        let run = run_one(&h, &c, &mut args, None, &http).await;
        assert_eq!(run.outcome, HookOutcome::Error);
        // Port 9 (discard) is closed on a test machine: unreachable.
        let run = run_one(&h, &c, &mut args, Some(b"0123456789abcdef"), &http).await;
        assert!(run.outcome.stops(), "{run:?}");
    }
}
