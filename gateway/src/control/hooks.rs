//! `HookService`: tool-call hooks (create, read, update, delete) and the
//! dry run. Validation names the field as the proto does (`hook.name`,
//! `hook.write_window.time_zone`, ...). The webhook signing secret is
//! sealed in the store under [`Hook::secret_key`]; it is never returned,
//! logged or audited (responses and audit events carry only when it was
//! set and the first 8 hex characters of its SHA-256).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::hook_service_server::HookService;

use super::Control;
use super::auth::actor;
use super::convert::{opt_timestamp, timestamp};
use super::error::{ControlError, Result, require, require_name_free};
use super::settings::{tag_from_proto, tag_to_proto, tool_globs};
use super::validate;
use crate::audit::Action;
use crate::hooks::{self, HookOutcome};
use crate::model::{
    AccessProfile, AuditEvent, Hook, HookFilter, HookKind, HookPhase, PiiPattern, Server, Tool,
    ToolState, User, Weekday, new_id, now_ms,
};
use crate::store::{Batch, Tx};

/// Default hook timeout, milliseconds (0 in a request).
const DEFAULT_TIMEOUT_MS: u64 = 2000;
/// Longest hook timeout, milliseconds.
const MAX_TIMEOUT_MS: u32 = 30_000;
/// Most entries in one filter or config list.
const MAX_LIST: usize = 200;

fn phase_to_proto(p: HookPhase) -> v1::HookPhase {
    match p {
        HookPhase::Before => v1::HookPhase::Before,
        HookPhase::After => v1::HookPhase::After,
    }
}

fn outcome_to_proto(o: HookOutcome) -> v1::HookOutcome {
    match o {
        HookOutcome::Allowed => v1::HookOutcome::Allowed,
        HookOutcome::Mutated => v1::HookOutcome::Mutated,
        HookOutcome::Denied => v1::HookOutcome::Denied,
        HookOutcome::Error => v1::HookOutcome::Error,
        HookOutcome::Timeout => v1::HookOutcome::Timeout,
    }
}

fn pattern_to_proto(p: PiiPattern) -> v1::PiiPattern {
    match p {
        PiiPattern::Email => v1::PiiPattern::Email,
        PiiPattern::Phone => v1::PiiPattern::Phone,
        PiiPattern::NationalId => v1::PiiPattern::NationalId,
        PiiPattern::CardNumber => v1::PiiPattern::CardNumber,
    }
}

fn weekday_to_proto(d: Weekday) -> v1::Weekday {
    match d {
        Weekday::Mon => v1::Weekday::Mon,
        Weekday::Tue => v1::Weekday::Tue,
        Weekday::Wed => v1::Weekday::Wed,
        Weekday::Thu => v1::Weekday::Thu,
        Weekday::Fri => v1::Weekday::Fri,
        Weekday::Sat => v1::Weekday::Sat,
        Weekday::Sun => v1::Weekday::Sun,
    }
}

/// Domain hook to proto (never the secret).
fn to_proto(h: &Hook) -> v1::Hook {
    use v1::hook::Config;
    let config = match &h.kind {
        HookKind::PiiRedaction {
            fields,
            patterns,
            placeholder,
        } => Config::PiiRedaction(v1::PiiRedactionConfig {
            fields: fields.clone(),
            patterns: patterns
                .iter()
                .map(|&p| pattern_to_proto(p).into())
                .collect(),
            placeholder: placeholder.clone(),
        }),
        HookKind::CardBlocking => Config::CardBlocking(v1::CardBlockingConfig {}),
        HookKind::QueryScope {
            allow_objects,
            deny_objects,
            max_limit,
            deny_query_all,
        } => Config::QueryScope(v1::QueryScopeConfig {
            allow_objects: allow_objects.clone(),
            deny_objects: deny_objects.clone(),
            max_limit: *max_limit,
            deny_query_all: *deny_query_all,
        }),
        HookKind::WriteWindow {
            days,
            start_minute,
            end_minute,
            time_zone,
        } => Config::WriteWindow(v1::WriteWindowConfig {
            days: days.iter().map(|&d| weekday_to_proto(d).into()).collect(),
            start_minute: *start_minute,
            end_minute: *end_minute,
            time_zone: time_zone.clone(),
        }),
        HookKind::Webhook {
            url,
            secret_set_at,
            secret_fingerprint,
        } => Config::Webhook(v1::WebhookConfig {
            url: url.clone(),
            secret_set_at: opt_timestamp(*secret_set_at),
            secret_fingerprint: secret_fingerprint.clone().unwrap_or_default(),
        }),
    };
    v1::Hook {
        id: h.id.clone(),
        name: h.name.clone(),
        phase: phase_to_proto(h.phase).into(),
        priority: h.priority,
        enabled: h.enabled,
        filter: Some(v1::HookFilter {
            tools: h.filter.tools.clone(),
            server_ids: h.filter.server_ids.clone(),
            classifications: h
                .filter
                .classifications
                .iter()
                .map(|&t| tag_to_proto(t).into())
                .collect(),
            user_ids: h.filter.user_ids.clone(),
            profile_ids: h.filter.profile_ids.clone(),
        }),
        timeout_ms: u32::try_from(h.timeout_ms).unwrap_or(MAX_TIMEOUT_MS),
        config: Some(config),
        created_at: Some(timestamp(h.created_at)),
        updated_at: Some(timestamp(h.updated_at)),
        revision: h.revision,
    }
}

/// The kind's name in audit events.
fn kind_name(kind: &HookKind) -> &'static str {
    match kind {
        HookKind::PiiRedaction { .. } => "pii_redaction",
        HookKind::CardBlocking => "card_blocking",
        HookKind::QueryScope { .. } => "query_scope",
        HookKind::WriteWindow { .. } => "write_window",
        HookKind::Webhook { .. } => "webhook",
    }
}

/// A hook's settings as checked from a request, before it is stored.
#[derive(Debug, Clone)]
struct Settings {
    name: String,
    phase: HookPhase,
    priority: i32,
    enabled: bool,
    filter: HookFilter,
    timeout_ms: u64,
    /// The kind; a webhook's secret fields are filled in when stored.
    kind: HookKind,
}

fn list_of(
    field: &str,
    values: &[String],
    each: impl Fn(&str, &str) -> Result<String>,
) -> Result<Vec<String>> {
    if values.len() > MAX_LIST {
        return Err(ControlError::invalid(
            field,
            format!("at most {MAX_LIST} entries"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let v = each(&format!("{field}[{i}]"), v)?;
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&v)) {
            out.push(v);
        }
    }
    Ok(out)
}

/// An sObject or field API name: a letter, then letters, digits and `_`
/// (at most 80).
fn api_name(field: &str, value: &str) -> Result<String> {
    let v = value.trim();
    let ok = (1..=80).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_alphabetic())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(ControlError::invalid(
            field,
            format!(
                "{v:?} is not a Salesforce API name (a letter, then letters, digits and _; at most 80)"
            ),
        ));
    }
    Ok(v.to_owned())
}

/// A webhook URL: `https://` with a host, or `http://` on a loopback host
/// (local receivers and tests); no user name or password, no fragment.
fn webhook_url(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ControlError::invalid(
            field,
            "is required, e.g. https://hooks.example.com/toolgate",
        ));
    }
    if value.len() > 2048 {
        return Err(ControlError::invalid(
            field,
            "must be at most 2048 characters",
        ));
    }
    let url = url::Url::parse(value).map_err(|_| {
        ControlError::invalid(
            field,
            "is not a URL such as https://hooks.example.com/toolgate",
        )
    })?;
    let Some(host) = url.host() else {
        return Err(ControlError::invalid(field, "needs a host"));
    };
    let loopback = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(ControlError::invalid(
                field,
                "must use https:// (http:// only on a loopback host such as 127.0.0.1)",
            ));
        }
        _ => return Err(ControlError::invalid(field, "must be an https:// URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ControlError::invalid(
            field,
            "must not hold a user name or password (the request is signed with the webhook secret)",
        ));
    }
    if url.fragment().is_some() {
        return Err(ControlError::invalid(field, "must not have a #fragment"));
    }
    Ok(url.to_string())
}

/// A webhook secret: 16 to 256 characters, no control characters.
fn webhook_secret(field: &str, value: &str) -> Result<Vec<u8>> {
    let n = value.chars().count();
    if !(16..=256).contains(&n) || value.chars().any(char::is_control) {
        return Err(ControlError::invalid(
            field,
            "must be 16 to 256 characters without control characters",
        ));
    }
    Ok(value.as_bytes().to_vec())
}

/// First 8 hex characters of SHA-256 of a secret.
fn fingerprint(secret: &[u8]) -> String {
    hex::encode(Sha256::digest(secret))[..8].to_owned()
}

/// Checks `hook` from a request; `prefix` names it (`hook`).
fn settings(prefix: &str, hook: Option<&v1::Hook>) -> Result<Settings> {
    use v1::hook::Config;
    let Some(h) = hook else {
        return Err(ControlError::invalid(prefix, "is required"));
    };
    let f = |name: &str| format!("{prefix}.{name}");
    let name = validate::name(&f("name"), &h.name)?;
    let phase = match v1::HookPhase::try_from(h.phase) {
        Ok(v1::HookPhase::Before) => HookPhase::Before,
        Ok(v1::HookPhase::After) => HookPhase::After,
        _ => return Err(ControlError::invalid(f("phase"), "must be BEFORE or AFTER")),
    };
    let timeout_ms = match h.timeout_ms {
        0 => DEFAULT_TIMEOUT_MS,
        n if n <= MAX_TIMEOUT_MS => u64::from(n),
        _ => {
            return Err(ControlError::invalid(
                f("timeout_ms"),
                format!("must be 1 to {MAX_TIMEOUT_MS} milliseconds (0: {DEFAULT_TIMEOUT_MS})"),
            ));
        }
    };
    let empty = v1::HookFilter::default();
    let filter = h.filter.as_ref().unwrap_or(&empty);
    let filter = HookFilter {
        tools: tool_globs(&f("filter.tools"), &filter.tools)?,
        server_ids: validate::ids(&f("filter.server_ids"), &filter.server_ids, false, MAX_LIST)?,
        classifications: {
            let mut tags = Vec::new();
            for (i, &t) in filter.classifications.iter().enumerate() {
                let tag = tag_from_proto(t, &f(&format!("filter.classifications[{i}]")))?;
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            tags
        },
        user_ids: validate::ids(&f("filter.user_ids"), &filter.user_ids, false, MAX_LIST)?,
        profile_ids: validate::ids(
            &f("filter.profile_ids"),
            &filter.profile_ids,
            false,
            MAX_LIST,
        )?,
    };
    let only = |kind: &str, want: HookPhase| -> Result<()> {
        if phase == want {
            Ok(())
        } else {
            Err(ControlError::invalid(
                f("phase"),
                format!("a {kind} hook runs {} only", hooks::phase_str(want)),
            ))
        }
    };
    let kind = match &h.config {
        None => {
            return Err(ControlError::invalid(
                f("config"),
                "is required: one of pii_redaction, card_blocking, query_scope, write_window, webhook",
            ));
        }
        Some(Config::PiiRedaction(c)) => {
            only("PII redaction", HookPhase::After)?;
            let fields = list_of(&f("pii_redaction.fields"), &c.fields, api_name)?;
            let mut patterns = Vec::new();
            for (i, &p) in c.patterns.iter().enumerate() {
                let p = match v1::PiiPattern::try_from(p) {
                    Ok(v1::PiiPattern::Email) => PiiPattern::Email,
                    Ok(v1::PiiPattern::Phone) => PiiPattern::Phone,
                    Ok(v1::PiiPattern::NationalId) => PiiPattern::NationalId,
                    Ok(v1::PiiPattern::CardNumber) => PiiPattern::CardNumber,
                    _ => {
                        return Err(ControlError::invalid(
                            f(&format!("pii_redaction.patterns[{i}]")),
                            "must be EMAIL, PHONE, NATIONAL_ID or CARD_NUMBER",
                        ));
                    }
                };
                if !patterns.contains(&p) {
                    patterns.push(p);
                }
            }
            if fields.is_empty() && patterns.is_empty() {
                return Err(ControlError::invalid(
                    f("pii_redaction"),
                    "name at least one field or pattern",
                ));
            }
            let placeholder = c.placeholder.trim();
            if placeholder.chars().count() > 100 || placeholder.chars().any(char::is_control) {
                return Err(ControlError::invalid(
                    f("pii_redaction.placeholder"),
                    "must be at most 100 characters without control characters",
                ));
            }
            HookKind::PiiRedaction {
                fields,
                patterns,
                placeholder: if placeholder.is_empty() {
                    hooks::pii::DEFAULT_PLACEHOLDER.to_owned()
                } else {
                    placeholder.to_owned()
                },
            }
        }
        Some(Config::CardBlocking(_)) => {
            only("card blocking", HookPhase::Before)?;
            HookKind::CardBlocking
        }
        Some(Config::QueryScope(c)) => {
            only("query scope", HookPhase::Before)?;
            let allow_objects =
                list_of(&f("query_scope.allow_objects"), &c.allow_objects, api_name)?;
            let deny_objects = list_of(&f("query_scope.deny_objects"), &c.deny_objects, api_name)?;
            if let Some(both) = allow_objects
                .iter()
                .find(|a| deny_objects.iter().any(|d| d.eq_ignore_ascii_case(a)))
            {
                return Err(ControlError::invalid(
                    f("query_scope.deny_objects"),
                    format!("{both} is also in allow_objects"),
                ));
            }
            if let Some(n) = c.max_limit
                && !(1..=50_000).contains(&n)
            {
                return Err(ControlError::invalid(
                    f("query_scope.max_limit"),
                    "must be 1 to 50000",
                ));
            }
            if allow_objects.is_empty()
                && deny_objects.is_empty()
                && c.max_limit.is_none()
                && !c.deny_query_all
            {
                return Err(ControlError::invalid(
                    f("query_scope"),
                    "set at least one of allow_objects, deny_objects, max_limit, deny_query_all",
                ));
            }
            HookKind::QueryScope {
                allow_objects,
                deny_objects,
                max_limit: c.max_limit,
                deny_query_all: c.deny_query_all,
            }
        }
        Some(Config::WriteWindow(c)) => {
            only("write window", HookPhase::Before)?;
            let mut days = Vec::new();
            for (i, &d) in c.days.iter().enumerate() {
                let d = match v1::Weekday::try_from(d) {
                    Ok(v1::Weekday::Mon) => Weekday::Mon,
                    Ok(v1::Weekday::Tue) => Weekday::Tue,
                    Ok(v1::Weekday::Wed) => Weekday::Wed,
                    Ok(v1::Weekday::Thu) => Weekday::Thu,
                    Ok(v1::Weekday::Fri) => Weekday::Fri,
                    Ok(v1::Weekday::Sat) => Weekday::Sat,
                    Ok(v1::Weekday::Sun) => Weekday::Sun,
                    _ => {
                        return Err(ControlError::invalid(
                            f(&format!("write_window.days[{i}]")),
                            "must be MON to SUN",
                        ));
                    }
                };
                if !days.contains(&d) {
                    days.push(d);
                }
            }
            if c.start_minute > 1439 {
                return Err(ControlError::invalid(
                    f("write_window.start_minute"),
                    "must be 0 to 1439 (minutes after local midnight)",
                ));
            }
            if c.end_minute == 0 || c.end_minute > 1440 || c.end_minute <= c.start_minute {
                return Err(ControlError::invalid(
                    f("write_window.end_minute"),
                    "must be 1 to 1440 and after start_minute",
                ));
            }
            let tz = c.time_zone.trim();
            if tz.is_empty() {
                return Err(ControlError::invalid(
                    f("write_window.time_zone"),
                    "is required, e.g. Europe/Lisbon",
                ));
            }
            let tz: chrono_tz::Tz = tz.parse().map_err(|_| {
                ControlError::invalid(
                    f("write_window.time_zone"),
                    format!("{tz:?} is not an IANA time zone such as Europe/Lisbon"),
                )
            })?;
            HookKind::WriteWindow {
                days,
                start_minute: c.start_minute,
                end_minute: c.end_minute,
                time_zone: tz.name().to_owned(),
            }
        }
        Some(Config::Webhook(c)) => HookKind::Webhook {
            url: webhook_url(&f("webhook.url"), &c.url)?,
            secret_set_at: None,
            secret_fingerprint: None,
        },
    };
    Ok(Settings {
        name,
        phase,
        priority: h.priority,
        enabled: h.enabled,
        filter,
        timeout_ms,
        kind,
    })
}

/// Fails with INVALID_ARGUMENT naming the field when a filter names a
/// server, user or profile that does not exist.
async fn check_references(tx: &Tx<'_>, filter: &HookFilter) -> Result<()> {
    for (i, id) in filter.server_ids.iter().enumerate() {
        if tx.get::<Server>(id).await?.is_none() {
            return Err(ControlError::invalid(
                format!("hook.filter.server_ids[{i}]"),
                format!("no server {id}"),
            ));
        }
    }
    for (i, id) in filter.user_ids.iter().enumerate() {
        if tx.get::<User>(id).await?.is_none() {
            return Err(ControlError::invalid(
                format!("hook.filter.user_ids[{i}]"),
                format!("no user {id}"),
            ));
        }
    }
    for (i, id) in filter.profile_ids.iter().enumerate() {
        if tx.get::<AccessProfile>(id).await?.is_none() {
            return Err(ControlError::invalid(
                format!("hook.filter.profile_ids[{i}]"),
                format!("no access profile {id}"),
            ));
        }
    }
    Ok(())
}

/// The audit details of a hook: its settings, a webhook's URL without its
/// query string, never the secret.
fn audit_details(h: &Hook) -> Value {
    let mut details = json!({
        "name": h.name,
        "phase": hooks::phase_str(h.phase),
        "priority": h.priority,
        "enabled": h.enabled,
        "kind": kind_name(&h.kind),
        "timeout_ms": h.timeout_ms,
        "filter": h.filter,
    });
    if let HookKind::Webhook {
        url,
        secret_fingerprint,
        ..
    } = &h.kind
    {
        let shown = url::Url::parse(url)
            .map(|mut u| {
                u.set_query(None);
                u.to_string()
            })
            .unwrap_or_default();
        details["url"] = json!(shown);
        details["secret_fingerprint"] = json!(secret_fingerprint);
    }
    details
}

fn event(actor: &str, action: Action, hook: &Hook, reason: String) -> AuditEvent {
    AuditEvent::allowed(actor, action, format!("hook/{}", hook.id))
        .with_reason(reason)
        .with_details(audit_details(hook))
}

/// Fills a webhook's secret fields (when `secret` is set) or refuses a
/// non-webhook secret.
fn with_secret(
    mut kind: HookKind,
    secret: Option<&[u8]>,
    previous: Option<&HookKind>,
    field: &str,
    now: i64,
) -> Result<HookKind> {
    match &mut kind {
        HookKind::Webhook {
            secret_set_at,
            secret_fingerprint,
            ..
        } => match (secret, previous) {
            (Some(s), _) => {
                *secret_set_at = Some(now);
                *secret_fingerprint = Some(fingerprint(s));
            }
            (
                None,
                Some(HookKind::Webhook {
                    secret_set_at: at,
                    secret_fingerprint: fp,
                    ..
                }),
            ) if fp.is_some() => {
                *secret_set_at = *at;
                *secret_fingerprint = fp.clone();
            }
            (None, _) => {
                return Err(ControlError::invalid(
                    field,
                    "is required for a webhook hook (16 to 256 characters)",
                ));
            }
        },
        _ if secret.is_some() => {
            return Err(ControlError::invalid(
                field,
                "only a webhook hook has a secret",
            ));
        }
        _ => {}
    }
    Ok(kind)
}

/// Parses an optional JSON object at `field` (empty: `{}`).
fn json_object(field: &str, text: &str) -> Result<Value> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ControlError::invalid(field, "must be a JSON object")),
        Err(e) => Err(ControlError::invalid(
            field,
            format!("is not JSON (line {}, column {})", e.line(), e.column()),
        )),
    }
}

#[tonic::async_trait]
impl HookService for Control {
    async fn create_hook(
        &self,
        request: Request<v1::CreateHookRequest>,
    ) -> Result<Response<v1::CreateHookResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let s = settings("hook", req.hook.as_ref())?;
        let secret = req
            .webhook_secret
            .as_deref()
            .map(|v| webhook_secret("webhook_secret", v))
            .transpose()?;
        let now = now_ms();
        let kind = with_secret(
            s.kind.clone(),
            secret.as_deref(),
            None,
            "webhook_secret",
            now,
        )?;
        let hook = self
            .store
            .write(|tx| async move {
                require_name_free::<Hook>(&tx, "", &s.name, |h| &h.name).await?;
                check_references(&tx, &s.filter).await?;
                let hook = Hook {
                    id: new_id(),
                    name: s.name,
                    phase: s.phase,
                    priority: s.priority,
                    enabled: s.enabled,
                    filter: s.filter,
                    kind,
                    timeout_ms: s.timeout_ms,
                    created_at: now,
                    updated_at: now,
                    revision: 1,
                };
                let mut batch = Batch::default();
                batch.put(&hook);
                if let Some(secret) = &secret {
                    batch.put_secret(&Hook::secret_key(&hook.id), secret);
                }
                batch.audit(event(
                    &actor,
                    Action::HookCreate,
                    &hook,
                    format!("created hook {:?}", hook.name),
                ));
                Ok::<_, ControlError>((batch, hook))
            })
            .await?;
        Ok(Response::new(v1::CreateHookResponse {
            hook: Some(to_proto(&hook)),
        }))
    }

    async fn get_hook(
        &self,
        request: Request<v1::GetHookRequest>,
    ) -> Result<Response<v1::GetHookResponse>, Status> {
        let id = validate::id("id", &request.get_ref().id)?;
        let hook = require::<Hook>(&self.store.reader(), id).await?;
        Ok(Response::new(v1::GetHookResponse {
            hook: Some(to_proto(&hook)),
        }))
    }

    async fn list_hooks(
        &self,
        _request: Request<v1::ListHooksRequest>,
    ) -> Result<Response<v1::ListHooksResponse>, Status> {
        let mut list = self
            .store
            .list::<Hook>()
            .await
            .map_err(ControlError::from)?;
        hooks::sort_run_order(&mut list);
        Ok(Response::new(v1::ListHooksResponse {
            hooks: list.iter().map(to_proto).collect(),
        }))
    }

    async fn update_hook(
        &self,
        request: Request<v1::UpdateHookRequest>,
    ) -> Result<Response<v1::UpdateHookResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let id = validate::id(
            "hook.id",
            req.hook.as_ref().map(|h| h.id.as_str()).unwrap_or(""),
        )?
        .to_owned();
        let s = settings("hook", req.hook.as_ref())?;
        let secret = req
            .webhook_secret
            .as_deref()
            .map(|v| webhook_secret("webhook_secret", v))
            .transpose()?;
        let expected = req.expected_revision;
        let hook = self
            .store
            .write(|tx| async move {
                let before = require::<Hook>(&tx, &id).await?;
                if let Some(expected) = expected
                    && expected != before.revision
                {
                    return Err(ControlError::Aborted(format!(
                        "hook {id} changed since you read it (revision {expected}, now {}); read it again and retry",
                        before.revision
                    )));
                }
                require_name_free::<Hook>(&tx, &id, &s.name, |h| &h.name).await?;
                check_references(&tx, &s.filter).await?;
                let now = now_ms();
                let kind = with_secret(
                    s.kind,
                    secret.as_deref(),
                    Some(&before.kind),
                    "webhook_secret",
                    now,
                )?;
                let mut hook = Hook {
                    name: s.name,
                    phase: s.phase,
                    priority: s.priority,
                    enabled: s.enabled,
                    filter: s.filter,
                    kind,
                    timeout_ms: s.timeout_ms,
                    ..before.clone()
                };
                let mut batch = Batch::default();
                if hook != before || secret.is_some() {
                    hook.updated_at = now;
                    hook.revision += 1;
                    batch.put(&hook);
                    match (&secret, &hook.kind) {
                        (Some(secret), _) => batch.put_secret(&Hook::secret_key(&id), secret),
                        (None, HookKind::Webhook { .. }) => {}
                        (None, _) => {
                            if matches!(before.kind, HookKind::Webhook { .. }) {
                                batch.delete_secret(&Hook::secret_key(&id));
                            }
                        }
                    }
                    let reason = if secret.is_some() {
                        format!("updated hook {:?} (new webhook secret)", hook.name)
                    } else {
                        format!("updated hook {:?}", hook.name)
                    };
                    batch.audit(event(&actor, Action::HookUpdate, &hook, reason));
                }
                Ok::<_, ControlError>((batch, hook))
            })
            .await?;
        Ok(Response::new(v1::UpdateHookResponse {
            hook: Some(to_proto(&hook)),
        }))
    }

    async fn delete_hook(
        &self,
        request: Request<v1::DeleteHookRequest>,
    ) -> Result<Response<v1::DeleteHookResponse>, Status> {
        let actor = actor(&request);
        let id = validate::id("id", &request.get_ref().id)?.to_owned();
        self.store
            .write(|tx| async move {
                let hook = require::<Hook>(&tx, &id).await?;
                let mut batch = Batch::default();
                batch.delete::<Hook>(&id);
                if matches!(hook.kind, HookKind::Webhook { .. }) {
                    batch.delete_secret(&Hook::secret_key(&id));
                }
                batch.audit(event(
                    &actor,
                    Action::HookDelete,
                    &hook,
                    format!("deleted hook {:?}", hook.name),
                ));
                Ok::<_, ControlError>((batch, ()))
            })
            .await?;
        Ok(Response::new(v1::DeleteHookResponse {}))
    }

    async fn test_hook(
        &self,
        request: Request<v1::TestHookRequest>,
    ) -> Result<Response<v1::TestHookResponse>, Status> {
        let req = request.into_inner();
        let reader = self.store.reader();
        let (hook, secret) = match (req.id.trim().is_empty(), req.hook.as_ref()) {
            (false, None) => {
                let hook = require::<Hook>(&reader, req.id.trim()).await?;
                let secret = reader
                    .secret(&Hook::secret_key(&hook.id))
                    .await
                    .map_err(ControlError::from)?;
                (hook, secret)
            }
            (true, Some(_)) => {
                let s = settings("hook", req.hook.as_ref())?;
                let secret = req
                    .webhook_secret
                    .as_deref()
                    .map(|v| webhook_secret("webhook_secret", v))
                    .transpose()?;
                let kind =
                    with_secret(s.kind, secret.as_deref(), None, "webhook_secret", now_ms())?;
                let hook = Hook {
                    id: String::new(),
                    name: s.name,
                    phase: s.phase,
                    priority: s.priority,
                    enabled: true,
                    filter: s.filter,
                    kind,
                    timeout_ms: s.timeout_ms,
                    created_at: 0,
                    updated_at: 0,
                    revision: 0,
                };
                (hook, secret)
            }
            _ => {
                return Err(ControlError::invalid(
                    "id",
                    "give exactly one of id (a stored hook) and hook (settings to try)",
                )
                .into());
            }
        };
        let tool_name = req.tool.trim();
        if tool_name.is_empty() {
            return Err(ControlError::invalid("tool", "is required (an exposed tool name)").into());
        }
        let tools = reader.list::<Tool>().await.map_err(ControlError::from)?;
        let Some(tool) = tools
            .iter()
            .find(|t| t.name == tool_name && t.state != ToolState::Removed)
        else {
            return Err(ControlError::not_found("tool", tool_name).into());
        };
        let server_name = reader
            .get::<Server>(&tool.server_id)
            .await
            .map_err(ControlError::from)?
            .map(|s| s.name)
            .unwrap_or_default();
        let user = match req.user_id.trim() {
            "" => None,
            id => Some(require::<User>(&reader, id).await?),
        };
        let profiles = reader
            .list::<AccessProfile>()
            .await
            .map_err(ControlError::from)?;
        let mut value = match hook.phase {
            HookPhase::Before => json_object("arguments_json", &req.arguments_json)?,
            HookPhase::After => json_object("result_json", &req.result_json)?,
        };
        let call_id = format!("dry-run-{}", new_id());
        let call = hooks::Call {
            tool,
            server_name: &server_name,
            user_id: user.as_ref().map(|u| u.id.as_str()),
            user_email: user.as_ref().map(|u| u.email.as_str()).unwrap_or(""),
            client_id: "",
            client_name: "",
            profiles: &profiles,
            now: now_ms(),
            call_id: &call_id,
            dry_run: true,
        };
        let matches = hooks::matches(&hook.filter, &call);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ControlError::Internal(format!("HTTP client: {e}")))?;
        let run = hooks::run_one(&hook, &call, &mut value, secret.as_deref(), &http).await;
        Ok(Response::new(v1::TestHookResponse {
            matches,
            outcome: outcome_to_proto(run.outcome).into(),
            reason: run.reason,
            output_json: value.to_string(),
            redactions: run.redactions.into_iter().collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_must_be_https_or_loopback_http() {
        assert!(webhook_url("u", "https://hooks.example.com/x?a=1").is_ok());
        assert!(webhook_url("u", "http://127.0.0.1:9000/hook").is_ok());
        assert!(webhook_url("u", "http://localhost/hook").is_ok());
        assert!(webhook_url("u", "http://[::1]:80/").is_ok());
        for bad in [
            "",
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#x",
            "not a url",
        ] {
            let err = webhook_url("hook.webhook.url", bad)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("hook.webhook.url:"), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_are_bounded_and_fingerprinted() {
        assert!(webhook_secret("s", "short").is_err());
        assert!(webhook_secret("s", &"x".repeat(257)).is_err());
        assert!(webhook_secret("s", "0123456789abcdef").is_ok());
        assert_eq!(fingerprint(b"0123456789abcdef").len(), 8);
    }

    #[test]
    fn settings_name_the_field_and_phase_per_kind() {
        use v1::hook::Config;
        let base = v1::Hook {
            name: "n".into(),
            phase: v1::HookPhase::Before.into(),
            config: Some(Config::CardBlocking(v1::CardBlockingConfig {})),
            ..Default::default()
        };
        let s = settings("hook", Some(&base)).unwrap();
        assert_eq!(s.timeout_ms, DEFAULT_TIMEOUT_MS);
        let err = |h: v1::Hook| settings("hook", Some(&h)).unwrap_err().to_string();
        assert!(
            err(v1::Hook {
                phase: v1::HookPhase::After.into(),
                ..base.clone()
            })
            .starts_with("hook.phase: a card blocking hook runs BEFORE only")
        );
        assert!(
            err(v1::Hook {
                timeout_ms: 30_001,
                ..base.clone()
            })
            .starts_with("hook.timeout_ms:")
        );
        assert!(
            err(v1::Hook {
                config: Some(Config::WriteWindow(v1::WriteWindowConfig {
                    start_minute: 60,
                    end_minute: 120,
                    time_zone: "Mars/Olympus".into(),
                    ..Default::default()
                })),
                ..base.clone()
            })
            .starts_with("hook.write_window.time_zone:")
        );
        assert!(
            err(v1::Hook {
                config: Some(Config::WriteWindow(v1::WriteWindowConfig {
                    start_minute: 600,
                    end_minute: 600,
                    time_zone: "UTC".into(),
                    ..Default::default()
                })),
                ..base.clone()
            })
            .starts_with("hook.write_window.end_minute:")
        );
        assert!(
            err(v1::Hook {
                config: Some(Config::QueryScope(v1::QueryScopeConfig {
                    allow_objects: vec!["Account".into()],
                    deny_objects: vec!["account".into()],
                    ..Default::default()
                })),
                ..base.clone()
            })
            .starts_with("hook.query_scope.deny_objects:")
        );
        assert!(
            err(v1::Hook {
                config: Some(Config::QueryScope(v1::QueryScopeConfig {
                    allow_objects: vec!["Bad Name".into()],
                    ..Default::default()
                })),
                ..base.clone()
            })
            .starts_with("hook.query_scope.allow_objects[0]:")
        );
        assert!(
            err(v1::Hook {
                filter: Some(v1::HookFilter {
                    tools: vec!["has space".into()],
                    ..Default::default()
                }),
                ..base.clone()
            })
            .starts_with("hook.filter.tools")
        );
        assert!(
            err(v1::Hook {
                config: None,
                ..base.clone()
            })
            .starts_with("hook.config:")
        );
        assert!(
            err(v1::Hook {
                name: " ".into(),
                ..base
            })
            .starts_with("hook.name:")
        );
    }
}
