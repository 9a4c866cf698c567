//! The Salesforce REST client and the hosted Salesforce tools.
//!
//! Owns: calling the Salesforce REST API for one user's session (the
//! caller hands in `instance_url`, access token and API version), the
//! per-server describe cache, the SOQL the gateway composes itself, paging
//! with opaque cursors, and turning Salesforce answers into tool results
//! (structured JSON matching each tool's `output_schema` in
//! `catalog/salesforce_tools.json`, plus a compact text rendering).
//!
//! Must not: store or refresh tokens, decide policy, audit, or know about
//! MCP. It never logs or formats an access token; [`SfError`] carries no
//! secret. The caller maps [`SfError::InvalidSession`] to "refresh once and
//! retry".
//!
//! Layout:
//! - [`http`]: requests, the `Sforce-Limit-Info` header, error bodies.
//! - [`describe`]: [`DescribeCache`] and name checks against describe.
//! - [`soql`]: SOQL string literals and the gateway's own `SELECT`s.
//! - [`cursor`]: signed paging cursors bound to their connection, and the
//!   query-path check.
//! - [`domains`]: which URLs are Salesforce login hosts and instance URLs.
//! - [`held`]: the rest of a first page kept for a cursor.
//! - [`shape`]: records without `attributes`, and the text rendering.
//! - [`paging`]: running a query across Salesforce pages within the caps,
//!   never twice.
//! - [`ids`]: record Id key prefixes checked against describe.
//! - `tools_meta`, `tools_read`, `tools_write`: the 13 tools.
//!
//! Salesforce documentation followed: REST API Developer Guide (Resources;
//! "Status Codes and Error Responses"; "Limits Info Header") and the SOQL
//! and SOSL Reference ("Quoted String Escape Sequences").

mod args;
#[doc(hidden)]
pub mod bench;
pub mod cursor;
pub(crate) mod describe;
pub mod domains;
pub mod held;
pub(crate) mod http;
mod ids;
pub(crate) mod paging;
pub(crate) mod shape;
pub mod soql;
mod tools_meta;
mod tools_read;
mod tools_write;

use std::fmt;

use serde_json::Value;

pub use cursor::Cursors;
pub use describe::DescribeCache;

/// Where and as whom to call: from the latest token response.
///
/// `instance_url` is the token response's `instance_url` (e.g.
/// `https://acme.my.salesforce.com`, no trailing slash needed);
/// `api_version` is the server's API version without the `v` (e.g.
/// `66.0`). `connection_id` is toolgate's id of the Salesforce connection
/// (`<user id>.<server id>`); paging cursors are bound to it. The access
/// token never appears in `Debug` output.
#[derive(Clone, Copy)]
pub struct Session<'a> {
    /// The connection the call runs for (names the toolgate user and the
    /// server); cursors issued in this call work only for it.
    pub connection_id: &'a str,
    /// The org's instance URL, `http(s)://host[:port]`.
    pub instance_url: &'a str,
    /// The OAuth access token, sent as `Authorization: Bearer`.
    pub access_token: &'a str,
    /// REST API version without the `v`, e.g. `66.0`.
    pub api_version: &'a str,
    /// Where the org's API usage from each answer's `Sforce-Limit-Info`
    /// header is kept, when the caller keeps it.
    pub api_usage: Option<&'a ApiUsage>,
}

/// The latest daily API usage of one Salesforce org, as its answers'
/// `Sforce-Limit-Info: api-usage=<used>/<max>` header reports it (REST API
/// Developer Guide, "Limits Info Header"). Updated by every REST answer
/// that carries the header; read without locking.
#[derive(Debug, Default)]
pub struct ApiUsage {
    used: std::sync::atomic::AtomicU64,
    max: std::sync::atomic::AtomicU64,
    /// When it was reported, Unix ms.
    at: std::sync::atomic::AtomicI64,
}

impl ApiUsage {
    /// Keeps the usage an `api-usage=<used>/<max>` value reports; a value
    /// that does not parse (or has `max` 0) is ignored.
    pub fn record(&self, api_usage: &str) {
        use std::sync::atomic::Ordering;
        let Some((used, max)) = parse_api_usage(api_usage) else {
            return;
        };
        self.used.store(used, Ordering::Relaxed);
        self.max.store(max, Ordering::Relaxed);
        self.at.store(crate::model::now_ms(), Ordering::Relaxed);
    }

    /// `(used, max)` as last reported; `None` before any report.
    pub fn get(&self) -> Option<(u64, u64)> {
        use std::sync::atomic::Ordering;
        let max = self.max.load(Ordering::Relaxed);
        (max > 0).then(|| (self.used.load(Ordering::Relaxed), max))
    }

    /// Moves the last report `ms` into the past (tests of staleness).
    #[cfg(test)]
    pub(crate) fn backdate(&self, ms: i64) {
        self.at.fetch_sub(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// When the usage was last reported, Unix ms (0: never).
    pub fn reported_at(&self) -> crate::model::Millis {
        self.at.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `(used, max)` out of `api-usage=<used>/<max>`; `None` when it does not
/// parse or `max` is 0.
pub fn parse_api_usage(value: &str) -> Option<(u64, u64)> {
    let (used, max) = value.trim().strip_prefix("api-usage=")?.split_once('/')?;
    let used = used.trim().parse().ok()?;
    let max = max.trim().parse().ok()?;
    (max > 0).then_some((used, max))
}

impl fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("connection_id", &self.connection_id)
            .field("instance_url", &self.instance_url)
            .field("access_token", &"<redacted>")
            .field("api_version", &self.api_version)
            .field("api_usage", &self.api_usage.and_then(ApiUsage::get))
            .finish()
    }
}

/// How long toolgate waits for Salesforce by default (seconds): the REST
/// API and the login host (`upstream_timeout_secs`).
pub const DEFAULT_UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Per-call caps on what a tool returns, and how long a Salesforce
/// request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most records per call (default 200). A query's `max_records`
    /// argument can only lower it.
    pub max_records: usize,
    /// About the most bytes of record JSON per call (default 256 KiB);
    /// a call always returns at least one record when any remain.
    pub max_bytes: usize,
    /// Longest wait for one Salesforce request: connect, send and read the
    /// whole answer (default [`DEFAULT_UPSTREAM_TIMEOUT`]).
    pub upstream_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_records: 200,
            max_bytes: 256 * 1024,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
        }
    }
}

/// `3 s`, `60 s` or `250 ms`: a timeout as users read it.
pub(crate) fn seconds(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// What a tool returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// JSON matching the tool's `output_schema`.
    pub structured: Value,
    /// A compact rendering for the model (bounded to about 16 KiB).
    pub text: String,
}

/// Errors of the Salesforce client and tools. `Display` is written for an
/// AI agent to act on; no variant ever holds an access token.
///
/// Source: REST API Developer Guide, "Status Codes and Error Responses"
/// (errors are a JSON array of `{message, errorCode, fields?}`).
#[derive(Debug, thiserror::Error)]
pub enum SfError {
    /// HTTP 401 `INVALID_SESSION_ID` (or the userinfo endpoint's
    /// `Bad_OAuth_Token`): the access token expired or was revoked. The
    /// caller refreshes the token once and retries.
    #[error(
        "INVALID_SESSION_ID: the Salesforce session expired or was revoked; reconnect to Salesforce and retry"
    )]
    InvalidSession,
    /// HTTP 403 `REQUEST_LIMIT_EXCEEDED`: the org's daily API limit is
    /// spent. `usage` is the `Sforce-Limit-Info` value, e.g.
    /// `api-usage=15000/15000`, when Salesforce sent one.
    #[error("REQUEST_LIMIT_EXCEEDED: the org's daily API limit is spent ({})", usage.as_deref().unwrap_or("usage unknown"))]
    RequestLimit {
        /// `api-usage=<used>/<max>` from `Sforce-Limit-Info`.
        usage: Option<String>,
    },
    /// Any other Salesforce error: the HTTP status, Salesforce's
    /// `errorCode` and `message` (several errors joined with `; `), and the
    /// `fields` it names.
    #[error("Salesforce error {error_code}: {message}{}", fields_suffix(fields))]
    Api {
        /// HTTP status, e.g. 400.
        status: u16,
        /// Salesforce `errorCode`, e.g. `INVALID_FIELD`.
        error_code: String,
        /// Salesforce `message`, verbatim.
        message: String,
        /// Salesforce `fields`, e.g. `["StageName", "CloseDate"]`.
        fields: Vec<String>,
    },
    /// A tool argument is wrong (unknown object or field, bad cursor,
    /// missing value); `field` names the argument.
    #[error("invalid argument {field}: {message}")]
    InvalidArgument {
        /// The argument's name, e.g. `object_name` or `cursor`.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Salesforce could not be reached or answered something that is not
    /// a Salesforce error (connect failure, 5xx without an error body,
    /// non-JSON).
    #[error("Salesforce request failed: {0}")]
    Transport(String),
    /// No answer within the upstream timeout (`upstream_timeout_secs`).
    /// The request may have reached Salesforce.
    #[error("Salesforce did not answer within {}", seconds(*.0))]
    Timeout(std::time::Duration),
    /// The connection broke after the request was sent, before the whole
    /// answer arrived (reset, closed): the request may have reached
    /// Salesforce.
    #[error("the connection to Salesforce broke before its answer arrived ({0})")]
    Interrupted(String),
    /// A create or upsert whose answer was lost ([`SfError::Timeout`] or
    /// [`SfError::Interrupted`]): Salesforce may have committed it, so the
    /// record may exist. Retrying blindly may create a duplicate.
    #[error(
        "the outcome of this {operation} is unknown: {cause}. Salesforce may have saved it, so the record may exist; search for it (e.g. query {object} by a field you set) before retrying, or a retry may create a duplicate"
    )]
    OutcomeUnknown {
        /// `create` or `upsert`.
        operation: &'static str,
        /// The object, e.g. `Account`.
        object: String,
        /// Why the answer was lost ([`SfError::Timeout`] or
        /// [`SfError::Interrupted`]).
        #[source]
        cause: Box<SfError>,
    },
}

fn fields_suffix(fields: &[String]) -> String {
    if fields.is_empty() {
        String::new()
    } else {
        format!(" (fields: {})", fields.join(", "))
    }
}

impl SfError {
    /// An [`SfError::InvalidArgument`] for `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// Salesforce's `errorCode` for API errors (`INVALID_SESSION_ID` and
    /// `REQUEST_LIMIT_EXCEEDED` included); `None` for gateway-side errors.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Self::InvalidSession => Some("INVALID_SESSION_ID"),
            Self::RequestLimit { .. } => Some("REQUEST_LIMIT_EXCEEDED"),
            Self::Api { error_code, .. } => Some(error_code),
            Self::InvalidArgument { .. }
            | Self::Transport(_)
            | Self::Timeout(_)
            | Self::Interrupted(_)
            | Self::OutcomeUnknown { .. } => None,
        }
    }

    /// Whether the request may have reached Salesforce although no answer
    /// came back ([`SfError::Timeout`], [`SfError::Interrupted`]).
    pub fn answer_lost(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Interrupted(_))
    }
}

/// The upstream names of the tools [`call_tool`] runs, in catalog order
/// (the catalog's test checks its entries against it).
#[cfg(test)]
pub(crate) const TOOL_NAMES: [&str; 13] = [
    "list_objects",
    "describe_object",
    "query",
    "search",
    "get_record",
    "list_recent",
    "get_related_records",
    "create_record",
    "update_record",
    "upsert_record",
    "delete_record",
    "get_user_info",
    "get_limits",
];

/// Runs catalog tool `name` (the upstream name, e.g. `query`) with
/// already schema-validated `args` for `session`.
///
/// Returns the structured result (the tool's `output_schema`) and a text
/// rendering. Errors: [`SfError::InvalidArgument`] for an unknown tool
/// (field `name`) or a bad argument; Salesforce's errors as described on
/// [`SfError`]. After an `INVALID_FIELD`, `INVALID_TYPE` or `NOT_FOUND`
/// error the describe entry of the object Salesforce names is dropped
/// from `cache`. Cursors are signed and checked with `cursors` for
/// `session.connection_id`.
pub async fn call_tool(
    http: &reqwest::Client,
    session: &Session<'_>,
    cache: &DescribeCache,
    cursors: &Cursors,
    limits: &Limits,
    name: &str,
    args: &Value,
) -> Result<ToolOutput, SfError> {
    let rest = http::Rest::new(http, session, limits.upstream_timeout)?;
    let ctx = Ctx {
        rest: &rest,
        cache,
        limits,
        cursors,
        owner: session.connection_id,
    };
    let result = match name {
        "list_objects" => tools_meta::list_objects(&ctx, args).await,
        "describe_object" => tools_meta::describe_object(&ctx, args).await,
        "get_user_info" => tools_meta::get_user_info(&ctx).await,
        "get_limits" => tools_meta::get_limits(&ctx).await,
        "query" => tools_read::query(&ctx, args).await,
        "search" => tools_read::search(&ctx, args).await,
        "get_record" => tools_read::get_record(&ctx, args).await,
        "list_recent" => tools_read::list_recent(&ctx, args).await,
        "get_related_records" => tools_read::get_related_records(&ctx, args).await,
        "create_record" => tools_write::create_record(&ctx, args).await,
        "update_record" => tools_write::update_record(&ctx, args).await,
        "upsert_record" => tools_write::upsert_record(&ctx, args).await,
        "delete_record" => tools_write::delete_record(&ctx, args).await,
        other => Err(SfError::invalid(
            "name",
            format!("no Salesforce tool named '{other}'"),
        )),
    };
    if let Err(SfError::Api {
        error_code,
        message,
        ..
    }) = &result
    {
        forget_after_error(cache, args, error_code, message);
    }
    result
}

/// Drops stale describe entries after Salesforce said an object or field
/// does not exist: the object Salesforce's message names (`on entity
/// 'X'`, `sObject type 'X'`; in `get_related_records` that is the child
/// object, not the `object_name` argument), else, when the message names
/// none, the `object_name` argument.
fn forget_after_error(cache: &DescribeCache, args: &Value, code: &str, message: &str) {
    if !matches!(code, "INVALID_FIELD" | "INVALID_TYPE" | "NOT_FOUND") {
        return;
    }
    let named = describe::object_in_message(message).or_else(|| {
        args.get("object_name")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if let Some(object) = named {
        cache.invalidate(&object);
    }
    if code == "INVALID_TYPE" {
        cache.invalidate_objects_list();
    }
}

/// What every tool needs: the REST client for this session, the describe
/// cache and the caps.
pub(crate) struct Ctx<'a> {
    pub(crate) rest: &'a http::Rest<'a>,
    pub(crate) cache: &'a DescribeCache,
    pub(crate) limits: &'a Limits,
    pub(crate) cursors: &'a Cursors,
    /// The connection id cursors are bound to.
    pub(crate) owner: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_debug_redacts_the_token() {
        let s = Session {
            connection_id: "u.s",
            instance_url: "https://x.my.salesforce.com",
            access_token: "00D!SECRET",
            api_version: "66.0",
            api_usage: None,
        };
        let debug = format!("{s:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("<redacted>"));
        assert!(debug.contains("66.0"));
    }

    #[test]
    fn error_messages_are_actionable() {
        let e = SfError::RequestLimit {
            usage: Some("api-usage=15000/15000".into()),
        };
        assert_eq!(
            e.to_string(),
            "REQUEST_LIMIT_EXCEEDED: the org's daily API limit is spent (api-usage=15000/15000)"
        );
        let e = SfError::Api {
            status: 400,
            error_code: "REQUIRED_FIELD_MISSING".into(),
            message: "Required fields are missing: [StageName, CloseDate]".into(),
            fields: vec!["StageName".into(), "CloseDate".into()],
        };
        assert_eq!(
            e.to_string(),
            "Salesforce error REQUIRED_FIELD_MISSING: Required fields are missing: [StageName, CloseDate] (fields: StageName, CloseDate)"
        );
        assert_eq!(e.error_code(), Some("REQUIRED_FIELD_MISSING"));
        assert_eq!(
            SfError::invalid("cursor", "bad").to_string(),
            "invalid argument cursor: bad"
        );
        assert_eq!(SfError::Transport("x".into()).error_code(), None);
    }

    #[test]
    fn call_tool_futures_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let http = reqwest::Client::new();
        let session = Session {
            connection_id: "u.s",
            instance_url: "https://x.my.salesforce.com",
            access_token: "t",
            api_version: "66.0",
            api_usage: None,
        };
        let cache = DescribeCache::default();
        let cursors = Cursors::new([0; 32]);
        let (limits, args) = (Limits::default(), serde_json::json!({}));
        let future = call_tool(&http, &session, &cache, &cursors, &limits, "query", &args);
        assert_send(&future);
    }

    #[test]
    fn limits_default_to_200_records_and_256_kib() {
        let l = Limits::default();
        assert_eq!((l.max_records, l.max_bytes), (200, 262_144));
        assert_eq!(l.upstream_timeout, std::time::Duration::from_secs(60));
        assert_eq!(seconds(l.upstream_timeout), "60 s");
        assert_eq!(seconds(std::time::Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn cache_forgets_the_object_named_in_the_error() {
        let cache = DescribeCache::new(std::time::Duration::from_secs(60));
        cache.insert_for_tests("Account", serde_json::json!({"name": "Account"}));
        assert!(cache.contains("Account"));
        forget_after_error(
            &cache,
            &serde_json::json!({"soql": "SELECT Nme FROM Account"}),
            "INVALID_FIELD",
            "No such column 'Nme' on entity 'Account'.",
        );
        assert!(!cache.contains("Account"));
        cache.insert_for_tests("Contact", serde_json::json!({"name": "Contact"}));
        forget_after_error(
            &cache,
            &serde_json::json!({"object_name": "Contact"}),
            "MALFORMED_QUERY",
            "x",
        );
        assert!(cache.contains("Contact"), "other errors keep the entry");
    }

    #[test]
    fn the_child_object_named_by_salesforce_is_forgotten_not_the_argument() {
        // get_related_records on Account ran a query on Contact, and
        // Salesforce says a Contact field is gone.
        let cache = DescribeCache::new(std::time::Duration::from_secs(60));
        cache.insert_for_tests("Account", serde_json::json!({"name": "Account"}));
        cache.insert_for_tests("Contact", serde_json::json!({"name": "Contact"}));
        forget_after_error(
            &cache,
            &serde_json::json!({"object_name": "Account", "relationship_name": "Contacts"}),
            "INVALID_FIELD",
            "No such column 'Legacy__c' on entity 'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.",
        );
        assert!(!cache.contains("Contact"), "the object Salesforce named");
        assert!(cache.contains("Account"), "the argument's object stays");
        // A NOT_FOUND without an object in the message: the argument's.
        forget_after_error(
            &cache,
            &serde_json::json!({"object_name": "Account"}),
            "NOT_FOUND",
            "The requested resource does not exist",
        );
        assert!(!cache.contains("Account"));
    }
}
