//! `SettingsService`: the kill switch, the defaults for new tools, and how
//! AI clients sign in (the identity provider, whose client secret is sealed
//! in the store and never answered, and the registration policy).

use serde_json::json;
use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::settings_service_server::SettingsService;

use super::Control;
use super::auth::actor;
use super::clients::{MAX_IDLE_DAYS, type_from_proto, type_to_proto};
use super::convert::{classification_from_proto, classification_to_proto, opt_timestamp};
use super::error::{ControlError, Result};
use crate::audit::Action;
use crate::crypto::sha256_hex;
use crate::model::{
    AccessProfile, AuditEvent, AuditVerbosity, CallApprovalRule, CallLimit, ClassificationTag,
    GovernanceSettings, IdentityProvider, LimitSettings, RateLimit, RegistrationPolicy, Settings,
    SignInSettings, UnknownUsers, now_ms,
};
use crate::store::Batch;

/// Most characters of a URL, client id, claim, scope, domain or group.
const MAX_FIELD_CHARS: usize = 2000;
/// Most entries of a list setting.
const MAX_LIST: usize = 100;

fn provider_to_proto(p: &IdentityProvider) -> v1::IdentityProvider {
    v1::IdentityProvider {
        issuer_url: p.issuer_url.clone(),
        client_id: p.client_id.clone(),
        client_secret_set: p.client_secret_set_at.is_some(),
        client_secret_set_at: opt_timestamp(p.client_secret_set_at),
        client_secret_fingerprint: p.client_secret_fingerprint.clone().unwrap_or_default(),
        scopes: p.scopes.clone(),
        email_claim: p.email_claim.clone(),
        groups_claim: p.groups_claim.clone(),
        allowed_email_domains: p.allowed_email_domains.clone(),
        allowed_groups: p.allowed_groups.clone(),
        unknown_users: match p.unknown_users {
            UnknownUsers::Refuse => v1::UnknownUsers::Refuse,
            UnknownUsers::Create => v1::UnknownUsers::Create,
        }
        .into(),
        accept_unverified_email: p.accept_unverified_email,
    }
}

fn policy_to_proto(p: &RegistrationPolicy) -> v1::RegistrationPolicy {
    v1::RegistrationPolicy {
        allowed_types: p
            .allowed_types
            .iter()
            .map(|t| type_to_proto(*t).into())
            .collect(),
        default_type: type_to_proto(p.default_type).into(),
        dynamic_registration_enabled: p.dynamic_registration_enabled,
        metadata_document_private_hosts: p.metadata_document_private_hosts.clone(),
        ephemeral_close_after_days: p.ephemeral_close_after_days,
    }
}

fn to_proto(s: &Settings) -> v1::Settings {
    v1::Settings {
        mcp_traffic_enabled: s.mcp_traffic_enabled,
        require_tool_approval: s.require_tool_approval,
        default_classification: Some(classification_to_proto(s.default_classification)),
        sign_in: Some(v1::SignInSettings {
            identity_provider: s.sign_in.identity_provider.as_ref().map(provider_to_proto),
            registration: Some(policy_to_proto(&s.sign_in.registration)),
        }),
        governance: Some(governance_to_proto(&s.governance)),
        limits: Some(limits_to_proto(&s.limits)),
    }
}

fn call_limit_to_proto(l: &CallLimit) -> v1::CallLimit {
    v1::CallLimit {
        rate: Some(v1::RateLimit {
            calls_per_minute: l.rate.calls_per_minute,
            burst: l.rate.burst,
        }),
        max_concurrent: l.max_concurrent,
    }
}

fn limits_to_proto(l: &LimitSettings) -> v1::LimitSettings {
    let map = |m: &std::collections::BTreeMap<String, CallLimit>| {
        m.iter()
            .map(|(k, v)| (k.clone(), call_limit_to_proto(v)))
            .collect()
    };
    v1::LimitSettings {
        per_user: Some(call_limit_to_proto(&l.per_user)),
        per_tool: Some(call_limit_to_proto(&l.per_tool)),
        per_server: Some(call_limit_to_proto(&l.per_server)),
        profile_overrides: map(&l.profile_overrides),
        tool_overrides: map(&l.tool_overrides),
        org_api_usage_max_percent: l.org_api_usage_max_percent,
        essential_tools: l.essential_tools.clone(),
    }
}

/// Most `calls_per_minute` of a rate limit.
const MAX_CALLS_PER_MINUTE: u32 = 1_000_000;
/// Most `burst` of a rate limit and most `max_concurrent`.
const MAX_BURST: u32 = 100_000;

/// One scope's limits from a request, fields named `<field>.rate.*` and
/// `<field>.max_concurrent`.
fn call_limit_from_proto(field: &str, l: Option<&v1::CallLimit>) -> Result<CallLimit> {
    let Some(l) = l else {
        return Ok(CallLimit::default());
    };
    let rate = l.rate.unwrap_or_default();
    if rate.calls_per_minute > MAX_CALLS_PER_MINUTE {
        return Err(ControlError::invalid(
            format!("{field}.rate.calls_per_minute"),
            format!("must be 0 (unlimited) to {MAX_CALLS_PER_MINUTE}"),
        ));
    }
    if rate.calls_per_minute == 0 && rate.burst != 0 {
        return Err(ControlError::invalid(
            format!("{field}.rate.burst"),
            "must be 0 when calls_per_minute is 0 (unlimited)",
        ));
    }
    if rate.calls_per_minute > 0 && !(1..=MAX_BURST).contains(&rate.burst) {
        return Err(ControlError::invalid(
            format!("{field}.rate.burst"),
            format!("must be 1 to {MAX_BURST} when calls_per_minute is set"),
        ));
    }
    if l.max_concurrent > MAX_BURST {
        return Err(ControlError::invalid(
            format!("{field}.max_concurrent"),
            format!("must be 0 (unlimited) to {MAX_BURST}"),
        ));
    }
    Ok(CallLimit {
        rate: RateLimit {
            calls_per_minute: rate.calls_per_minute,
            burst: rate.burst,
        },
        max_concurrent: l.max_concurrent,
    })
}

/// The limit settings a request gives, validated against the access
/// profiles in `profiles` (override keys must name one); fields named
/// `limits.<field>`.
fn limits_from_proto(l: &v1::LimitSettings, profiles: &[AccessProfile]) -> Result<LimitSettings> {
    let per_user = call_limit_from_proto("limits.per_user", l.per_user.as_ref())?;
    let per_tool = call_limit_from_proto("limits.per_tool", l.per_tool.as_ref())?;
    let per_server = call_limit_from_proto("limits.per_server", l.per_server.as_ref())?;
    for (field, map) in [
        ("limits.profile_overrides", &l.profile_overrides),
        ("limits.tool_overrides", &l.tool_overrides),
    ] {
        if map.len() > MAX_LIST {
            return Err(ControlError::invalid(
                field,
                format!("at most {MAX_LIST} entries"),
            ));
        }
    }
    let mut profile_overrides = std::collections::BTreeMap::new();
    for (id, limit) in &l.profile_overrides {
        let field = format!("limits.profile_overrides[{id:?}]");
        if !profiles.iter().any(|p| &p.id == id) {
            return Err(ControlError::invalid(
                field,
                "names no access profile (use the profile's id, from AccessProfileService.ListAccessProfiles)",
            ));
        }
        profile_overrides.insert(id.clone(), call_limit_from_proto(&field, Some(limit))?);
    }
    let mut tool_overrides = std::collections::BTreeMap::new();
    for (name, limit) in &l.tool_overrides {
        let field = format!("limits.tool_overrides[{name:?}]");
        let n = name.trim();
        if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_whitespace) {
            return Err(ControlError::invalid(
                field,
                "must be a tool's exposed name of 1 to 200 characters without spaces",
            ));
        }
        tool_overrides.insert(n.to_owned(), call_limit_from_proto(&field, Some(limit))?);
    }
    if l.org_api_usage_max_percent > 100 {
        return Err(ControlError::invalid(
            "limits.org_api_usage_max_percent",
            "must be 0 (off) to 100",
        ));
    }
    let essential_tools = tool_globs("limits.essential_tools", &l.essential_tools)?;
    Ok(LimitSettings {
        per_user,
        per_tool,
        per_server,
        profile_overrides,
        tool_overrides,
        org_api_usage_max_percent: l.org_api_usage_max_percent,
        essential_tools,
    })
}

/// The proto form of a classification tag.
pub(crate) fn tag_to_proto(t: ClassificationTag) -> v1::ClassificationTag {
    match t {
        ClassificationTag::Read => v1::ClassificationTag::Read,
        ClassificationTag::Write => v1::ClassificationTag::Write,
        ClassificationTag::Delete => v1::ClassificationTag::Delete,
        ClassificationTag::Sensitive => v1::ClassificationTag::Sensitive,
        ClassificationTag::Dangerous => v1::ClassificationTag::Dangerous,
    }
}

/// The classification tag a request names, at `field`.
///
/// Errors: INVALID_ARGUMENT for an unspecified or unknown value.
pub(crate) fn tag_from_proto(value: i32, field: &str) -> Result<ClassificationTag> {
    match v1::ClassificationTag::try_from(value) {
        Ok(v1::ClassificationTag::Read) => Ok(ClassificationTag::Read),
        Ok(v1::ClassificationTag::Write) => Ok(ClassificationTag::Write),
        Ok(v1::ClassificationTag::Delete) => Ok(ClassificationTag::Delete),
        Ok(v1::ClassificationTag::Sensitive) => Ok(ClassificationTag::Sensitive),
        Ok(v1::ClassificationTag::Dangerous) => Ok(ClassificationTag::Dangerous),
        _ => Err(ControlError::invalid(
            field,
            "must be READ, WRITE, DELETE, SENSITIVE or DANGEROUS",
        )),
    }
}

/// Tool-name globs (`*`, `?`) a request gives at `field`: at most
/// [`MAX_LIST`], each 1 to 200 characters without spaces.
pub(crate) fn tool_globs(field: &str, values: &[String]) -> Result<Vec<String>> {
    list(field, values, |f, v| {
        let v = v.trim();
        if v.is_empty() || v.chars().count() > 200 || v.chars().any(char::is_whitespace) {
            return Err(ControlError::invalid(
                f,
                "must be a tool name or glob (`*`, `?`) of 1 to 200 characters without spaces",
            ));
        }
        Ok(v.to_owned())
    })
}

fn governance_to_proto(g: &GovernanceSettings) -> v1::GovernanceSettings {
    v1::GovernanceSettings {
        show_requestable_tools: g.show_requestable_tools,
        access_request_ttl_secs: g.access_request_ttl_secs,
        held_call_ttl_secs: g.held_call_ttl_secs,
        call_approval: Some(v1::CallApprovalRule {
            tools: g.call_approval.tools.clone(),
            classifications: g
                .call_approval
                .classifications
                .iter()
                .map(|&t| tag_to_proto(t).into())
                .collect(),
        }),
        audit_verbosity: match g.audit_verbosity {
            AuditVerbosity::Minimal => v1::AuditVerbosity::Minimal,
            AuditVerbosity::Standard => v1::AuditVerbosity::Standard,
            AuditVerbosity::Full => v1::AuditVerbosity::Full,
        }
        .into(),
    }
}

/// Bounds of [`GovernanceSettings::access_request_ttl_secs`]: a minute to
/// a year.
const ACCESS_REQUEST_TTL_SECS: std::ops::RangeInclusive<u64> = 60..=31_536_000;
/// Bounds of [`GovernanceSettings::held_call_ttl_secs`]: a minute to a
/// week.
const HELD_CALL_TTL_SECS: std::ops::RangeInclusive<u64> = 60..=604_800;

/// The governance settings a request gives, validated; fields named
/// `governance.<field>`.
fn governance_from_proto(g: &v1::GovernanceSettings) -> Result<GovernanceSettings> {
    if !ACCESS_REQUEST_TTL_SECS.contains(&g.access_request_ttl_secs) {
        return Err(ControlError::invalid(
            "governance.access_request_ttl_secs",
            "must be 60 to 31536000 seconds (a minute to a year)",
        ));
    }
    if !HELD_CALL_TTL_SECS.contains(&g.held_call_ttl_secs) {
        return Err(ControlError::invalid(
            "governance.held_call_ttl_secs",
            "must be 60 to 604800 seconds (a minute to a week)",
        ));
    }
    let rule = g.call_approval.clone().unwrap_or_default();
    let tools = tool_globs("governance.call_approval.tools", &rule.tools)?;
    let mut classifications = Vec::new();
    for (i, t) in rule.classifications.iter().enumerate() {
        let tag = tag_from_proto(
            *t,
            &format!("governance.call_approval.classifications[{i}]"),
        )?;
        if !classifications.contains(&tag) {
            classifications.push(tag);
        }
    }
    let audit_verbosity = match v1::AuditVerbosity::try_from(g.audit_verbosity) {
        Ok(v1::AuditVerbosity::Minimal) => AuditVerbosity::Minimal,
        Ok(v1::AuditVerbosity::Standard) => AuditVerbosity::Standard,
        Ok(v1::AuditVerbosity::Full) => AuditVerbosity::Full,
        _ => {
            return Err(ControlError::invalid(
                "governance.audit_verbosity",
                "must be MINIMAL, STANDARD or FULL",
            ));
        }
    };
    Ok(GovernanceSettings {
        show_requestable_tools: g.show_requestable_tools,
        access_request_ttl_secs: g.access_request_ttl_secs,
        held_call_ttl_secs: g.held_call_ttl_secs,
        call_approval: CallApprovalRule {
            tools,
            classifications,
        },
        audit_verbosity,
    })
}

/// A value without control characters or whitespace, 1 to
/// [`MAX_FIELD_CHARS`] characters.
fn token_like(field: &str, value: &str, what: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ControlError::invalid(field, "is required"));
    }
    if value.chars().count() > MAX_FIELD_CHARS
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ControlError::invalid(
            field,
            format!("must be {what} without spaces or control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// At most [`MAX_LIST`] entries, each checked by `check` with the field
/// named `field[i]`, without duplicates.
fn list(
    field: &str,
    values: &[String],
    check: impl Fn(&str, &str) -> Result<String>,
) -> Result<Vec<String>> {
    if values.len() > MAX_LIST {
        return Err(ControlError::invalid(
            field,
            format!("at most {MAX_LIST} entries"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let value = check(&format!("{field}[{i}]"), value)?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

/// An issuer URL (OpenID Connect Discovery 1.0 section 2: `https`, no
/// query or fragment); `http` only on a loopback host, for tests. Returned
/// without a trailing slash.
fn issuer_url(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ControlError::invalid(
            field,
            "is required, e.g. https://login.example.com",
        ));
    }
    let url = url::Url::parse(value).map_err(|e| {
        ControlError::invalid(
            field,
            format!("{value:?} is not an absolute URL ({e}); e.g. https://login.example.com"),
        )
    })?;
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => crate::authz::clients::is_loopback(&url),
        _ => false,
    };
    if !scheme_ok {
        return Err(ControlError::invalid(
            field,
            "must be an https URL (http only on a loopback host such as 127.0.0.1)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(ControlError::invalid(
            field,
            "must have no query, fragment or user name (OpenID Connect Discovery 1.0 section 2)",
        ));
    }
    if value.len() > MAX_FIELD_CHARS {
        return Err(ControlError::invalid(field, "is too long"));
    }
    // Kept exactly as given: the discovery document's `issuer` and every ID
    // token's `iss` must equal it (OpenID Connect Discovery 1.0 section
    // 4.3), trailing slash included (Auth0's issuers end in one).
    Ok(value.to_owned())
}

/// A lowercase domain name such as `acme.example`.
fn email_domain(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value != value.to_lowercase() {
        return Err(ControlError::invalid(
            field,
            format!("{value:?} must be lowercase ({:?})", value.to_lowercase()),
        ));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if value.len() > 253 || !value.contains('.') || !value.split('.').all(label_ok) {
        return Err(ControlError::invalid(
            field,
            format!("{value:?} is not a domain name such as acme.example (no @, no scheme)"),
        ));
    }
    Ok(value.to_owned())
}

/// A group name: 1 to 200 characters, no control characters.
fn group(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err(ControlError::invalid(
            field,
            "must be 1 to 200 characters without control characters",
        ));
    }
    Ok(value.to_owned())
}

/// A scope token (RFC 6749 section 3.3: printable ASCII but space, `"`
/// and `\`).
fn scope(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value.len() <= 200
        && value
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if !ok {
        return Err(ControlError::invalid(
            field,
            format!("{value:?} is not an OAuth scope (RFC 6749 section 3.3)"),
        ));
    }
    Ok(value.to_owned())
}

/// A private host exception: `host` or `host:port`, lowercase.
fn private_host(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    let bad = || {
        ControlError::invalid(
            field,
            format!(
                "{value:?} must be a lowercase host or host:port, such as 127.0.0.1:8443 or cimd.internal"
            ),
        )
    };
    if value.is_empty() || value != value.to_lowercase() || value.contains(['/', '@', '?', '#']) {
        return Err(bad());
    }
    let url = url::Url::parse(&format!("https://{value}/")).map_err(|_| bad())?;
    if url.host_str().is_none() {
        return Err(bad());
    }
    Ok(value.to_owned())
}

/// What an update does to the identity provider's stored client secret.
enum SecretChange {
    Keep,
    Remove,
    Set(String),
}

/// The identity provider an input describes (its secret fields still
/// those of `previous`), and what to do with the stored secret.
fn provider_from_input(
    input: &v1::IdentityProviderInput,
    previous: Option<&IdentityProvider>,
) -> Result<(IdentityProvider, SecretChange)> {
    let f = |name: &str| format!("identity_provider.{name}");
    let issuer_url = issuer_url(&f("issuer_url"), &input.issuer_url)?;
    let client_id = token_like(&f("client_id"), &input.client_id, "the client id")?;
    let secret = match input.client_secret.as_deref().map(str::trim) {
        None => SecretChange::Keep,
        Some("") => SecretChange::Remove,
        Some(s) if s.chars().count() > 1024 || s.chars().any(char::is_control) => {
            return Err(ControlError::invalid(
                f("client_secret"),
                "must be at most 1024 characters without control characters",
            ));
        }
        Some(s) => SecretChange::Set(s.to_owned()),
    };
    // The stored secret belongs to the provider it was entered for: never
    // send it to another issuer or for another client id.
    if let (SecretChange::Keep, Some(previous)) = (&secret, previous)
        && previous.client_secret_set_at.is_some()
        && (previous.issuer_url != issuer_url || previous.client_id != client_id)
    {
        return Err(ControlError::invalid(
            f("client_secret"),
            "is required when issuer_url or client_id changes (the stored secret belongs to the previous provider); send an empty value for a public client",
        ));
    }
    let mut scopes = list(&f("scopes"), &input.scopes, scope)?;
    scopes.retain(|s| s != "openid");
    if input.scopes.is_empty() {
        scopes = vec!["email".into(), "profile".into()];
    }
    let email_claim = if input.email_claim.trim().is_empty() {
        "email".to_owned()
    } else {
        token_like(&f("email_claim"), &input.email_claim, "a claim name")?
    };
    let groups_claim = if input.groups_claim.trim().is_empty() {
        String::new()
    } else {
        token_like(&f("groups_claim"), &input.groups_claim, "a claim name")?
    };
    let allowed_email_domains = list(
        &f("allowed_email_domains"),
        &input.allowed_email_domains,
        email_domain,
    )?;
    let allowed_groups = list(&f("allowed_groups"), &input.allowed_groups, group)?;
    if !allowed_groups.is_empty() && groups_claim.is_empty() {
        return Err(ControlError::invalid(
            f("groups_claim"),
            "is required when allowed_groups is set (e.g. groups)",
        ));
    }
    let unknown_users = match v1::UnknownUsers::try_from(input.unknown_users) {
        Ok(v1::UnknownUsers::Unspecified | v1::UnknownUsers::Refuse) => UnknownUsers::Refuse,
        Ok(v1::UnknownUsers::Create) => UnknownUsers::Create,
        Err(_) => {
            return Err(ControlError::invalid(
                f("unknown_users"),
                "must be UNKNOWN_USERS_REFUSE or UNKNOWN_USERS_CREATE",
            ));
        }
    };
    Ok((
        IdentityProvider {
            issuer_url,
            client_id,
            client_secret_set_at: previous.and_then(|p| p.client_secret_set_at),
            client_secret_fingerprint: previous.and_then(|p| p.client_secret_fingerprint.clone()),
            scopes,
            email_claim,
            groups_claim,
            allowed_email_domains,
            allowed_groups,
            unknown_users,
            accept_unverified_email: input.accept_unverified_email,
        },
        secret,
    ))
}

/// The registration policy a request gives.
fn policy_from_proto(p: &v1::RegistrationPolicy) -> Result<RegistrationPolicy> {
    let mut allowed_types = Vec::new();
    for (i, t) in p.allowed_types.iter().enumerate() {
        let t = type_from_proto(*t, &format!("registration.allowed_types[{i}]"))?;
        if !allowed_types.contains(&t) {
            allowed_types.push(t);
        }
    }
    if allowed_types.is_empty() {
        return Err(ControlError::invalid(
            "registration.allowed_types",
            "must name at least one client type (e.g. CLIENT_TYPE_PERSONAL)",
        ));
    }
    let default_type = type_from_proto(p.default_type, "registration.default_type")?;
    if !allowed_types.contains(&default_type) {
        return Err(ControlError::invalid(
            "registration.default_type",
            "must be one of registration.allowed_types",
        ));
    }
    let metadata_document_private_hosts = list(
        "registration.metadata_document_private_hosts",
        &p.metadata_document_private_hosts,
        private_host,
    )?;
    if let Some(days) = p.ephemeral_close_after_days
        && !(1..=MAX_IDLE_DAYS).contains(&days)
    {
        return Err(ControlError::invalid(
            "registration.ephemeral_close_after_days",
            format!("must be 1 to {MAX_IDLE_DAYS}, or unset for never"),
        ));
    }
    Ok(RegistrationPolicy {
        allowed_types,
        default_type,
        dynamic_registration_enabled: p.dynamic_registration_enabled,
        metadata_document_private_hosts,
        ephemeral_close_after_days: p.ephemeral_close_after_days,
    })
}

/// What a request asks of the sign-in settings, validated.
enum ProviderChange {
    Keep,
    Clear,
    Set(Box<v1::IdentityProviderInput>),
}

#[tonic::async_trait]
impl SettingsService for Control {
    async fn get_settings(
        &self,
        _request: Request<v1::GetSettingsRequest>,
    ) -> Result<Response<v1::GetSettingsResponse>, Status> {
        let settings = self.store.settings().await.map_err(ControlError::from)?;
        Ok(Response::new(v1::GetSettingsResponse {
            settings: Some(to_proto(&settings)),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<v1::UpdateSettingsRequest>,
    ) -> Result<Response<v1::UpdateSettingsResponse>, Status> {
        let actor = actor(&request);
        let req = request.into_inner();
        let classification = req
            .default_classification
            .as_ref()
            .map(|c| classification_from_proto(c, "default_classification"))
            .transpose()?;
        let provider_change = match (req.identity_provider, req.clear_identity_provider) {
            (Some(_), true) => {
                return Err(ControlError::invalid(
                    "clear_identity_provider",
                    "cannot be set together with identity_provider",
                )
                .into());
            }
            (Some(input), false) => {
                // Validated here, before the write, so a bad field fails
                // fast; the stored secret fields are filled in below.
                provider_from_input(&input, None)?;
                ProviderChange::Set(Box::new(input))
            }
            (None, true) => ProviderChange::Clear,
            (None, false) => ProviderChange::Keep,
        };
        let registration = req
            .registration
            .as_ref()
            .map(policy_from_proto)
            .transpose()?;
        let governance = req
            .governance
            .as_ref()
            .map(governance_from_proto)
            .transpose()?;
        if let Some(limits) = &req.limits {
            // Checked before the write too, so a bad number fails fast;
            // profile ids are checked in the write, against the store.
            limits_from_proto(
                &v1::LimitSettings {
                    profile_overrides: Default::default(),
                    ..limits.clone()
                },
                &[],
            )?;
        }
        let provider_change = &provider_change;
        let settings = self
            .store
            .write(|store| async move {
                let before = store.settings().await?;
                let mut after = before.clone();
                if let Some(on) = req.mcp_traffic_enabled {
                    after.mcp_traffic_enabled = on;
                }
                if let Some(require) = req.require_tool_approval {
                    after.require_tool_approval = require;
                }
                if let Some(c) = classification {
                    after.default_classification = c;
                }
                if let Some(policy) = registration {
                    after.sign_in.registration = policy;
                }
                if let Some(governance) = governance {
                    after.governance = governance;
                }
                if let Some(limits) = &req.limits {
                    let profiles = store.list::<AccessProfile>().await?;
                    after.limits = limits_from_proto(limits, &profiles)?;
                }
                let mut batch = Batch::default();
                let mut secret_changed = false;
                match provider_change {
                    ProviderChange::Keep => {}
                    ProviderChange::Clear => {
                        if before.sign_in.identity_provider.is_some() {
                            batch.delete_secret(IdentityProvider::SECRET_KEY);
                        }
                        after.sign_in.identity_provider = None;
                    }
                    ProviderChange::Set(input) => {
                        let previous = before.sign_in.identity_provider.as_ref();
                        let (mut provider, secret) = provider_from_input(input, previous)?;
                        match secret {
                            SecretChange::Keep => {}
                            SecretChange::Remove => {
                                if provider.client_secret_set_at.is_some() {
                                    batch.delete_secret(IdentityProvider::SECRET_KEY);
                                    secret_changed = true;
                                }
                                provider.client_secret_set_at = None;
                                provider.client_secret_fingerprint = None;
                            }
                            SecretChange::Set(secret) => {
                                let stored = store.secret(IdentityProvider::SECRET_KEY).await?;
                                if previous.is_none()
                                    || stored.as_deref() != Some(secret.as_bytes())
                                {
                                    batch.put_secret(
                                        IdentityProvider::SECRET_KEY,
                                        secret.as_bytes(),
                                    );
                                    provider.client_secret_set_at = Some(now_ms());
                                    provider.client_secret_fingerprint =
                                        Some(sha256_hex(secret.as_bytes())[..8].to_owned());
                                    secret_changed = true;
                                }
                            }
                        }
                        after.sign_in.identity_provider = Some(provider);
                    }
                }
                if after != before || secret_changed {
                    let reason = describe(&before, &after, secret_changed);
                    batch.put_settings(&after);
                    batch.audit(
                        AuditEvent::allowed(&actor, Action::SettingsUpdate, "settings")
                            .with_reason(reason)
                            .with_details(json!({
                                "before": before,
                                "after": after,
                                "identity_provider_secret_changed": secret_changed,
                            })),
                    );
                }
                Ok::<_, ControlError>((batch, after))
            })
            .await?;
        Ok(Response::new(v1::UpdateSettingsResponse {
            settings: Some(to_proto(&settings)),
        }))
    }
}

/// The audit reason of a settings change: each changed part in words
/// (never a secret; the secret's fingerprint is in the details).
fn describe(before: &Settings, after: &Settings, secret_changed: bool) -> String {
    let mut changed = Vec::new();
    if after.mcp_traffic_enabled != before.mcp_traffic_enabled {
        changed.push(format!(
            "MCP traffic {}",
            if after.mcp_traffic_enabled {
                "enabled"
            } else {
                "DISABLED (kill switch)"
            }
        ));
    }
    if after.require_tool_approval != before.require_tool_approval {
        changed.push(format!(
            "require tool approval {}",
            after.require_tool_approval
        ));
    }
    if after.default_classification != before.default_classification {
        changed.push("default classification changed".into());
    }
    let SignInSettings {
        identity_provider: old,
        registration: old_policy,
    } = &before.sign_in;
    match (old, &after.sign_in.identity_provider) {
        (None, Some(new)) => changed.push(format!("identity provider {} set", new.issuer_url)),
        (Some(_), None) => changed.push("identity provider removed".into()),
        (Some(a), Some(b)) if a != b || secret_changed => {
            changed.push(format!(
                "identity provider {} changed{}",
                b.issuer_url,
                if secret_changed {
                    " (client secret changed)"
                } else {
                    ""
                }
            ));
        }
        _ => {}
    }
    if &after.sign_in.registration != old_policy {
        changed.push("registration policy changed".into());
    }
    let (old, new) = (&before.governance, &after.governance);
    if old.show_requestable_tools != new.show_requestable_tools {
        changed.push(format!(
            "show requestable tools {}",
            new.show_requestable_tools
        ));
    }
    if old.access_request_ttl_secs != new.access_request_ttl_secs {
        changed.push(format!(
            "access request expiry {} s",
            new.access_request_ttl_secs
        ));
    }
    if old.held_call_ttl_secs != new.held_call_ttl_secs {
        changed.push(format!("held call expiry {} s", new.held_call_ttl_secs));
    }
    if old.call_approval != new.call_approval {
        changed.push("per-call approval rule changed".into());
    }
    if before.limits != after.limits {
        changed.push(describe_limits(&before.limits, &after.limits));
    }
    if old.audit_verbosity != new.audit_verbosity {
        changed.push(format!(
            "audit verbosity {}",
            format!("{:?}", new.audit_verbosity).to_uppercase()
        ));
    }
    changed.join("; ")
}

/// The audit reason's part for a change of limits: which parts changed.
fn describe_limits(old: &LimitSettings, new: &LimitSettings) -> String {
    let mut parts = Vec::new();
    let text = |l: &CallLimit| {
        let rate = if l.rate.is_unlimited() {
            "unlimited rate".to_owned()
        } else {
            format!("{}/min burst {}", l.rate.calls_per_minute, l.rate.burst)
        };
        let conc = match l.max_concurrent {
            0 => "unlimited concurrency".to_owned(),
            n => format!("{n} at once"),
        };
        format!("{rate}, {conc}")
    };
    for (name, a, b) in [
        ("per-user", &old.per_user, &new.per_user),
        ("per-tool", &old.per_tool, &new.per_tool),
        ("per-server", &old.per_server, &new.per_server),
    ] {
        if a != b {
            parts.push(format!("{name} limit {}", text(b)));
        }
    }
    if old.profile_overrides != new.profile_overrides {
        parts.push(format!(
            "{} profile limit overrides",
            new.profile_overrides.len()
        ));
    }
    if old.tool_overrides != new.tool_overrides {
        parts.push(format!("{} tool limit overrides", new.tool_overrides.len()));
    }
    if old.org_api_usage_max_percent != new.org_api_usage_max_percent {
        parts.push(match new.org_api_usage_max_percent {
            0 => "org API usage guard off".to_owned(),
            n => format!("org API usage guard at {n}%"),
        });
    }
    if old.essential_tools != new.essential_tools {
        parts.push("essential tools changed".into());
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> v1::IdentityProviderInput {
        v1::IdentityProviderInput {
            issuer_url: "https://login.acme.example/".into(),
            client_id: "toolgate".into(),
            client_secret: Some("s3cret".into()),
            allowed_email_domains: vec!["acme.example".into()],
            ..Default::default()
        }
    }

    fn field_of(err: ControlError) -> String {
        match err {
            ControlError::InvalidArgument { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn provider_inputs_get_defaults_and_bad_fields_are_named() {
        let (p, secret) = provider_from_input(&input(), None).unwrap();
        assert_eq!(p.issuer_url, "https://login.acme.example/");
        assert_eq!(p.email_claim, "email");
        assert_eq!(p.scopes, ["email", "profile"]);
        assert_eq!(p.unknown_users, UnknownUsers::Refuse);
        assert!(matches!(secret, SecretChange::Set(s) if s == "s3cret"));
        let loopback = v1::IdentityProviderInput {
            issuer_url: "http://127.0.0.1:4000".into(),
            ..input()
        };
        assert!(provider_from_input(&loopback, None).is_ok());
        let cases: Vec<(v1::IdentityProviderInput, &str)> = vec![
            (
                v1::IdentityProviderInput {
                    issuer_url: "http://login.acme.example".into(),
                    ..input()
                },
                "identity_provider.issuer_url",
            ),
            (
                v1::IdentityProviderInput {
                    issuer_url: "https://login.acme.example?x=1".into(),
                    ..input()
                },
                "identity_provider.issuer_url",
            ),
            (
                v1::IdentityProviderInput {
                    client_id: " ".into(),
                    ..input()
                },
                "identity_provider.client_id",
            ),
            (
                v1::IdentityProviderInput {
                    allowed_email_domains: vec!["acme.example".into(), "Acme.COM".into()],
                    ..input()
                },
                "identity_provider.allowed_email_domains[1]",
            ),
            (
                v1::IdentityProviderInput {
                    allowed_email_domains: vec!["@acme.example".into()],
                    ..input()
                },
                "identity_provider.allowed_email_domains[0]",
            ),
            (
                v1::IdentityProviderInput {
                    allowed_groups: vec!["admins".into()],
                    ..input()
                },
                "identity_provider.groups_claim",
            ),
            (
                v1::IdentityProviderInput {
                    scopes: vec!["a b".into()],
                    ..input()
                },
                "identity_provider.scopes[0]",
            ),
            (
                v1::IdentityProviderInput {
                    unknown_users: 7,
                    ..input()
                },
                "identity_provider.unknown_users",
            ),
        ];
        for (bad, field) in cases {
            assert_eq!(
                field_of(provider_from_input(&bad, None).err().expect("refused")),
                field
            );
        }
    }

    #[test]
    fn registration_policies_need_an_allowed_default_and_sane_limits() {
        let good = v1::RegistrationPolicy {
            allowed_types: vec![
                v1::ClientType::Personal.into(),
                v1::ClientType::Ephemeral.into(),
                v1::ClientType::Personal.into(),
            ],
            default_type: v1::ClientType::Ephemeral.into(),
            dynamic_registration_enabled: false,
            metadata_document_private_hosts: vec!["127.0.0.1:8443".into(), "cimd.internal".into()],
            ephemeral_close_after_days: Some(3),
        };
        let policy = policy_from_proto(&good).unwrap();
        assert_eq!(policy.allowed_types.len(), 2);
        assert_eq!(policy.ephemeral_close_after_days, Some(3));
        let field = |p: v1::RegistrationPolicy| field_of(policy_from_proto(&p).unwrap_err());
        assert_eq!(
            field(v1::RegistrationPolicy {
                default_type: v1::ClientType::Service.into(),
                ..good.clone()
            }),
            "registration.default_type"
        );
        assert_eq!(
            field(v1::RegistrationPolicy {
                allowed_types: vec![],
                ..good.clone()
            }),
            "registration.allowed_types"
        );
        assert_eq!(
            field(v1::RegistrationPolicy {
                allowed_types: vec![0],
                ..good.clone()
            }),
            "registration.allowed_types[0]"
        );
        assert_eq!(
            field(v1::RegistrationPolicy {
                ephemeral_close_after_days: Some(0),
                ..good.clone()
            }),
            "registration.ephemeral_close_after_days"
        );
        assert_eq!(
            field(v1::RegistrationPolicy {
                metadata_document_private_hosts: vec!["https://x.example/".into()],
                ..good.clone()
            }),
            "registration.metadata_document_private_hosts[0]"
        );
        assert_eq!(
            field(v1::RegistrationPolicy {
                metadata_document_private_hosts: vec!["CIMD.internal".into()],
                ..good
            }),
            "registration.metadata_document_private_hosts[0]"
        );
    }

    #[test]
    fn limits_are_validated_and_named_by_field() {
        let rate = |calls_per_minute, burst| v1::CallLimit {
            rate: Some(v1::RateLimit {
                calls_per_minute,
                burst,
            }),
            max_concurrent: 4,
        };
        let good = v1::LimitSettings {
            per_user: Some(rate(60, 10)),
            per_tool: None,
            per_server: Some(rate(0, 0)),
            profile_overrides: [("p1".to_owned(), rate(600, 100))].into(),
            tool_overrides: [("salesforce_query".to_owned(), rate(30, 1))].into(),
            org_api_usage_max_percent: 85,
            essential_tools: vec!["salesforce_get_*".into()],
        };
        let profile: AccessProfile = serde_json::from_value(json!({
            "id": "p1", "name": "p1", "description": "", "toolset_ids": [],
            "grants": [], "created_at": 0, "updated_at": 0,
        }))
        .unwrap();
        let limits = limits_from_proto(&good, std::slice::from_ref(&profile)).unwrap();
        assert_eq!(limits.per_user.rate.calls_per_minute, 60);
        assert_eq!(limits.per_tool, CallLimit::default());
        assert_eq!(limits.profile_overrides["p1"].rate.burst, 100);
        assert_eq!(
            limits_to_proto(&limits),
            v1::LimitSettings {
                per_tool: Some(v1::CallLimit {
                    rate: Some(v1::RateLimit::default()),
                    max_concurrent: 0,
                }),
                ..good.clone()
            }
        );
        let field = |l: v1::LimitSettings| {
            field_of(limits_from_proto(&l, std::slice::from_ref(&profile)).unwrap_err())
        };
        assert_eq!(
            field(v1::LimitSettings {
                per_user: Some(rate(60, 0)),
                ..good.clone()
            }),
            "limits.per_user.rate.burst"
        );
        assert_eq!(
            field(v1::LimitSettings {
                per_tool: Some(rate(0, 5)),
                ..good.clone()
            }),
            "limits.per_tool.rate.burst"
        );
        assert_eq!(
            field(v1::LimitSettings {
                per_server: Some(rate(2_000_000, 5)),
                ..good.clone()
            }),
            "limits.per_server.rate.calls_per_minute"
        );
        assert_eq!(
            field(v1::LimitSettings {
                profile_overrides: [("nope".to_owned(), rate(1, 1))].into(),
                ..good.clone()
            }),
            "limits.profile_overrides[\"nope\"]"
        );
        assert_eq!(
            field(v1::LimitSettings {
                tool_overrides: [("a b".to_owned(), rate(1, 1))].into(),
                ..good.clone()
            }),
            "limits.tool_overrides[\"a b\"]"
        );
        assert_eq!(
            field(v1::LimitSettings {
                org_api_usage_max_percent: 101,
                ..good.clone()
            }),
            "limits.org_api_usage_max_percent"
        );
        assert_eq!(
            field(v1::LimitSettings {
                essential_tools: vec![" ".into()],
                ..good
            }),
            "limits.essential_tools[0]"
        );
    }
}
