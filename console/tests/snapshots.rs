//! Snapshot tests of every screen (insta, ratatui `TestBackend`): loading,
//! empty, error and populated states at 80x24 and at a wide 160x45, and the
//! overlays. Requests are answered by hand with fixed data, so no daemon
//! runs here; ids and times are scrubbed anyway.

mod common;

use common::{parse_keys, render};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use tonic::Code;
use toolgate_console::action::{Action, Command, Data, Reply, Request, UserDetail};
use toolgate_console::client::ApiError;
use toolgate_console::state::{App, Screen};
use toolgate_console::ui::Theme;
use toolgate_proto::v1;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 45)];

fn ts(day: u32, hour: u32) -> Option<prost_types::Timestamp> {
    let t = chrono::NaiveDate::from_ymd_opt(2026, 11, day)
        .unwrap()
        .and_hms_opt(hour, 15, 0)
        .unwrap()
        .and_utc();
    Some(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    })
}

/// A time on a November 2026 day, to the second.
fn at(day: u32, hour: u32, second: u32) -> Option<prost_types::Timestamp> {
    ts(day, hour).map(|mut t| {
        t.seconds += i64::from(second);
        t
    })
}

fn id(n: u32) -> String {
    format!("019ad3c2-0000-7000-8000-{n:012}")
}

fn servers() -> Vec<v1::Server> {
    vec![
        v1::Server {
            id: id(1),
            name: "Salesforce production".into(),
            catalog_kind: "salesforce".into(),
            tool_prefix: "salesforce".into(),
            login_host: Some(v1::LoginHost {
                kind: v1::LoginHostKind::Production as i32,
                url: "https://login.salesforce.com".into(),
            }),
            api_version: "66.0".into(),
            tool_enablement: v1::ToolEnablement::Inherit as i32,
            disabled: false,
            auth: Some(v1::AuthConfig {
                mode: v1::AuthMode::PerUserOauth as i32,
                client_id: "3MVG9.example.consumer.key".into(),
                client_secret_set: true,
                client_secret_set_at: ts(20, 9),
                client_secret_fingerprint: "bf496b76".into(),
                scopes: vec!["api".into(), "refresh_token".into()],
            }),
            created_at: ts(20, 9),
            updated_at: ts(20, 9),
            callback_url: "https://toolgate.example.com/auth/callback".into(),
        },
        v1::Server {
            id: id(2),
            name: "Salesforce sandbox".into(),
            catalog_kind: "salesforce".into(),
            tool_prefix: "sandbox".into(),
            login_host: Some(v1::LoginHost {
                kind: v1::LoginHostKind::Sandbox as i32,
                url: "https://test.salesforce.com".into(),
            }),
            api_version: "66.0".into(),
            disabled: true,
            auth: None,
            created_at: ts(21, 10),
            updated_at: ts(21, 10),
            callback_url: "https://toolgate.example.com/auth/callback".into(),
            ..Default::default()
        },
    ]
}

#[allow(clippy::too_many_arguments)]
fn tool(
    n: u32,
    server: u32,
    name: &str,
    state: v1::ToolState,
    action: v1::ToolAction,
    sensitive: bool,
    dangerous: bool,
    day: u32,
) -> v1::Tool {
    v1::Tool {
        id: id(100 + n),
        server_id: id(server),
        upstream_name: name.rsplit_once('_').map_or(name, |p| p.1).into(),
        name: name.into(),
        title: format!("Title of {name}"),
        description: format!(
            "What {name} does, in the words AI clients see. It explains the arguments and the result."
        ),
        annotations: Some(v1::ToolAnnotations {
            title: String::new(),
            read_only_hint: action == v1::ToolAction::Read,
            destructive_hint: action == v1::ToolAction::Delete,
            idempotent_hint: action == v1::ToolAction::Read,
            open_world_hint: true,
        }),
        state: state as i32,
        classification: Some(v1::Classification {
            action: action as i32,
            sensitive,
            dangerous,
        }),
        discovered_at: ts(day, 9),
        updated_at: ts(day, 11),
        updated_by: "admin:ana".into(),
        ..Default::default()
    }
}

fn tools() -> Vec<v1::Tool> {
    use v1::ToolAction::{Delete, Read, Write};
    use v1::ToolState::{Approved, Disabled, PendingReview, Removed};
    let mut drifted = tool(
        5,
        1,
        "salesforce_update_record",
        PendingReview,
        Write,
        false,
        false,
        20,
    );
    drifted.drift = vec!["description".into(), "input_schema".into()];
    vec![
        tool(1, 1, "salesforce_query", Approved, Read, false, false, 20),
        tool(2, 1, "salesforce_search", Approved, Read, false, false, 20),
        tool(
            3,
            1,
            "salesforce_create_record",
            PendingReview,
            Write,
            false,
            false,
            22,
        ),
        tool(
            4,
            1,
            "salesforce_delete_record",
            PendingReview,
            Delete,
            false,
            true,
            22,
        ),
        drifted,
        tool(6, 2, "sandbox_query", Disabled, Read, true, false, 21),
        tool(
            7,
            1,
            "salesforce_get_limits",
            Removed,
            Read,
            false,
            false,
            20,
        ),
    ]
}

fn toolsets() -> Vec<v1::Toolset> {
    vec![
        v1::Toolset {
            id: id(201),
            name: "Sales read-only".into(),
            description: "Reads for the sales team".into(),
            kind: v1::ToolsetKind::Custom as i32,
            tool_ids: vec![id(101), id(102)],
            ..Default::default()
        },
        v1::Toolset {
            id: id(202),
            name: "Salesforce production: all approved".into(),
            kind: v1::ToolsetKind::AllApproved as i32,
            server_id: id(1),
            tool_ids: vec![id(101), id(102)],
            ..Default::default()
        },
        v1::Toolset {
            id: id(203),
            name: "Salesforce production: read only".into(),
            kind: v1::ToolsetKind::ReadOnly as i32,
            server_id: id(1),
            tool_ids: vec![id(101), id(102)],
            ..Default::default()
        },
    ]
}

fn profiles() -> Vec<v1::AccessProfile> {
    vec![v1::AccessProfile {
        id: id(301),
        name: "Sales".into(),
        description: "The sales team".into(),
        toolset_ids: vec![id(201)],
        grants: vec![
            v1::Grant {
                user_id: id(401),
                granted_at: ts(22, 12),
                expires_at: ts(30, 23),
                granted_by: "admin:ana".into(),
            },
            v1::Grant {
                user_id: id(402),
                granted_at: ts(22, 12),
                expires_at: None,
                granted_by: "admin".into(),
            },
        ],
        ..Default::default()
    }]
}

fn users() -> Vec<v1::User> {
    vec![
        v1::User {
            id: id(401),
            email: "ana@example.com".into(),
            display_name: "Ana Lima".into(),
            status: v1::UserStatus::Active as i32,
            ..Default::default()
        },
        v1::User {
            id: id(402),
            email: "bo@example.com".into(),
            display_name: "Bo Chen".into(),
            status: v1::UserStatus::Disabled as i32,
            ..Default::default()
        },
    ]
}

fn ai_clients() -> Vec<v1::AiClient> {
    vec![
        v1::AiClient {
            id: id(602),
            name: "Claude Desktop".into(),
            origin: v1::ClientOrigin::MetadataDocument as i32,
            client_id: "https://claude.ai/oauth/mcp-oauth-client-metadata".into(),
            owner_user_id: id(401),
            owner_email: "ana@example.com".into(),
            client_type: v1::ClientType::Personal as i32,
            state: v1::ClientState::Active as i32,
            traffic_enabled: true,
            last_used_at: ts(22, 11),
            created_at: ts(20, 9),
            redirect_hosts: vec!["claude.ai".into()],
            revision: 3,
            ..Default::default()
        },
        v1::AiClient {
            id: id(601),
            name: "ci nightly".into(),
            origin: v1::ClientOrigin::AccessToken as i32,
            token_id: id(601),
            owner_user_id: id(402),
            owner_email: "bo@example.com".into(),
            client_type: v1::ClientType::Ephemeral as i32,
            state: v1::ClientState::Closed as i32,
            traffic_enabled: false,
            close_after_idle_days: Some(2),
            created_at: ts(18, 8),
            ..Default::default()
        },
    ]
}

/// The 19 tools a user of the demo may call: more than 400 characters in
/// one line (the list was once cut there).
const CALLABLE: [&str; 19] = [
    "salesforce_create_record",
    "salesforce_delete_record",
    "salesforce_describe_object",
    "salesforce_get_limits",
    "salesforce_get_record",
    "salesforce_get_related_records",
    "salesforce_get_user_info",
    "salesforce_list_objects",
    "salesforce_query",
    "salesforce_search",
    "salesforce_update_record",
    "salesforce_upsert_record",
    "sandbox_describe_object",
    "sandbox_get_limits",
    "sandbox_get_record",
    "sandbox_list_objects",
    "sandbox_query",
    "sandbox_search",
    "sandbox_get_user_info",
];

fn user_detail(user_id: &str) -> UserDetail {
    UserDetail {
        user_id: user_id.into(),
        tokens: vec![v1::Token {
            id: id(501),
            user_id: user_id.into(),
            name: "laptop".into(),
            prefix: "tgp_AbCd".into(),
            created_at: ts(22, 12),
            expires_at: ts(28, 12),
            last_used_at: ts(23, 8),
            revoked_at: None,
        }],
        connections: vec![
            v1::Connection {
                id: id(601),
                user_id: user_id.into(),
                server_id: id(1),
                instance_url: "https://acme.my.salesforce.com".into(),
                salesforce_user_id: "005000000000001AAA".into(),
                salesforce_org_id: "00D000000000001EAA".into(),
                salesforce_username: "ana.lima@acme.example".into(),
                scopes: "api refresh_token".into(),
                connected_at: ts(23, 8),
                refreshed_at: ts(23, 9),
            },
            // Connected while Salesforce's identity URL could not answer.
            v1::Connection {
                id: id(602),
                user_id: user_id.into(),
                server_id: id(2),
                instance_url: "https://acme--dev.sandbox.my.salesforce.com".into(),
                salesforce_user_id: "005000000000002AAA".into(),
                salesforce_org_id: "00D000000000002EAA".into(),
                salesforce_username: String::new(),
                scopes: "api refresh_token".into(),
                connected_at: ts(23, 9),
                refreshed_at: None,
            },
        ],
        tools: CALLABLE.iter().map(|t| (*t).to_owned()).collect(),
    }
}

fn events() -> Vec<v1::AuditEvent> {
    vec![
        v1::AuditEvent {
            sequence: 42,
            time: at(23, 9, 7),
            actor: "user:ana@example.com".into(),
            action: "tool.call".into(),
            target: "tool/salesforce_query on Salesforce production".into(),
            outcome: v1::Outcome::Allowed as i32,
            latency_ms: 84,
            details_json: r#"{"arguments":{"soql":"SELECT Id FROM Account"},"records":3}"#.into(),
            ..Default::default()
        },
        v1::AuditEvent {
            sequence: 41,
            time: at(23, 9, 5),
            actor: "user:bo@example.com".into(),
            action: "tool.call".into(),
            target: "tool/salesforce_delete_record on Salesforce production".into(),
            outcome: v1::Outcome::Denied as i32,
            reason: "tool is not approved".into(),
            ..Default::default()
        },
        v1::AuditEvent {
            sequence: 40,
            time: ts(22, 12),
            actor: "admin:ana".into(),
            action: "tool.update".into(),
            target: format!("tool/{}", id(101)),
            outcome: v1::Outcome::Allowed as i32,
            ..Default::default()
        },
    ]
}

/// Access requests: two pending (one opened by a tool call, one ahead of
/// time), one approved and one denied (shown with `v`).
fn access_requests() -> Vec<v1::AccessRequest> {
    let base = |n: u32, email: &str, user: u32| v1::AccessRequest {
        id: id(700 + n),
        user_id: id(user),
        user_email: email.into(),
        profile_id: id(301),
        profile_name: "Sales".into(),
        revision: 1,
        ..Default::default()
    };
    vec![
        v1::AccessRequest {
            tool: "salesforce_query".into(),
            reason: "Quarterly pipeline review for the EMEA team".into(),
            state: v1::AccessRequestState::Pending as i32,
            requested_duration_secs: Some(28_800),
            created_at: ts(23, 8),
            expires_at: ts(30, 8),
            ..base(1, "bo@example.com", 402)
        },
        v1::AccessRequest {
            state: v1::AccessRequestState::Pending as i32,
            created_at: ts(22, 14),
            expires_at: ts(29, 14),
            ..base(2, "ana@example.com", 401)
        },
        v1::AccessRequest {
            tool: "salesforce_search".into(),
            state: v1::AccessRequestState::Approved as i32,
            requested_duration_secs: Some(3_600),
            granted_duration_secs: Some(1_800),
            created_at: ts(21, 9),
            decided_at: ts(21, 10),
            decided_by: "admin:ana".into(),
            ..base(3, "cy@example.com", 403)
        },
        v1::AccessRequest {
            state: v1::AccessRequestState::Denied as i32,
            created_at: ts(20, 9),
            decided_at: ts(20, 11),
            decided_by: "admin:ana".into(),
            decision_reason: "not on the sales team".into(),
            ..base(4, "di@example.com", 404)
        },
    ]
}

/// Held calls: one pending delete, one already run.
fn held_calls() -> Vec<v1::HeldCall> {
    vec![
        v1::HeldCall {
            id: id(801),
            user_id: id(401),
            user_email: "ana@example.com".into(),
            client_id: id(602),
            client_name: "Claude Desktop".into(),
            tool: "salesforce_delete_record".into(),
            server_id: id(1),
            arguments_digest: "5d41402abc4b2a76b9719d911017c592ae8f5d41402abc4b2a76b9719d911017"
                .into(),
            state: v1::HeldCallState::Pending as i32,
            created_at: ts(23, 9),
            expires_at: ts(23, 10),
            revision: 1,
            ..Default::default()
        },
        v1::HeldCall {
            id: id(802),
            user_id: id(402),
            user_email: "bo@example.com".into(),
            client_name: "ci nightly".into(),
            tool: "salesforce_update_record".into(),
            server_id: id(1),
            state: v1::HeldCallState::Used as i32,
            created_at: ts(22, 9),
            decided_at: ts(22, 10),
            decided_by: "admin:ana".into(),
            used_at: ts(22, 10),
            revision: 3,
            ..Default::default()
        },
    ]
}

/// The held call with its arguments, as GetHeldCall answers.
fn held_call(held_id: &str) -> Option<v1::HeldCall> {
    let mut call = held_calls().into_iter().find(|c| c.id == held_id)?;
    call.arguments_json =
        r#"{"object":"Opportunity","id":"006000000000001AAA","reason":"duplicate"}"#.into();
    Some(call)
}

/// One hook of each kind, in run order.
fn hooks() -> Vec<v1::Hook> {
    use v1::hook::Config;
    let hook = |n: u32, name: &str, phase: v1::HookPhase, priority: i32, config: Config| v1::Hook {
        id: id(900 + n),
        name: name.into(),
        phase: phase as i32,
        priority,
        enabled: true,
        timeout_ms: 2000,
        config: Some(config),
        updated_at: ts(22, 9),
        revision: 2,
        ..Default::default()
    };
    vec![
        v1::Hook {
            filter: Some(v1::HookFilter {
                tools: vec!["salesforce_*".into()],
                ..Default::default()
            }),
            ..hook(
                1,
                "no cards",
                v1::HookPhase::Before,
                10,
                Config::CardBlocking(v1::CardBlockingConfig {}),
            )
        },
        v1::Hook {
            filter: Some(v1::HookFilter {
                tools: vec!["salesforce_query".into()],
                ..Default::default()
            }),
            ..hook(
                2,
                "sales objects only",
                v1::HookPhase::Before,
                20,
                Config::QueryScope(v1::QueryScopeConfig {
                    allow_objects: vec!["Account".into(), "Opportunity".into()],
                    deny_objects: vec!["User".into()],
                    max_limit: Some(200),
                    deny_query_all: true,
                }),
            )
        },
        v1::Hook {
            filter: Some(v1::HookFilter {
                classifications: vec![
                    v1::ClassificationTag::Write as i32,
                    v1::ClassificationTag::Delete as i32,
                ],
                ..Default::default()
            }),
            ..hook(
                3,
                "office hours",
                v1::HookPhase::Before,
                30,
                Config::WriteWindow(v1::WriteWindowConfig {
                    days: vec![1, 2, 3, 4, 5],
                    start_minute: 540,
                    end_minute: 1080,
                    time_zone: "Europe/Lisbon".into(),
                }),
            )
        },
        v1::Hook {
            enabled: false,
            filter: Some(v1::HookFilter {
                user_ids: vec![id(402)],
                ..Default::default()
            }),
            ..hook(
                4,
                "compliance check",
                v1::HookPhase::Before,
                40,
                Config::Webhook(v1::WebhookConfig {
                    url: "https://hooks.acme.example/toolgate".into(),
                    secret_set_at: ts(21, 9),
                    secret_fingerprint: "9c1185a5".into(),
                }),
            )
        },
        v1::Hook {
            filter: Some(v1::HookFilter {
                profile_ids: vec![id(301)],
                ..Default::default()
            }),
            ..hook(
                5,
                "redact PII",
                v1::HookPhase::After,
                10,
                Config::PiiRedaction(v1::PiiRedactionConfig {
                    fields: vec!["Email".into(), "Phone".into(), "SSN__c".into()],
                    patterns: vec![
                        v1::PiiPattern::Email as i32,
                        v1::PiiPattern::CardNumber as i32,
                    ],
                    placeholder: String::new(),
                }),
            )
        },
    ]
}

/// The fixed "now" of the snapshots: 2026-11-23 10:15 UTC.
fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(ts(23, 10).unwrap().seconds, 0).unwrap()
}

fn settings() -> v1::Settings {
    v1::Settings {
        governance: Some(v1::GovernanceSettings {
            show_requestable_tools: true,
            access_request_ttl_secs: 604_800,
            held_call_ttl_secs: 3_600,
            call_approval: Some(v1::CallApprovalRule {
                tools: vec!["salesforce_delete_record".into()],
                classifications: vec![v1::ClassificationTag::Dangerous as i32],
            }),
            audit_verbosity: v1::AuditVerbosity::Standard as i32,
        }),
        limits: None,
        mcp_traffic_enabled: true,
        require_tool_approval: true,
        default_classification: Some(v1::Classification {
            action: v1::ToolAction::Read as i32,
            sensitive: false,
            dangerous: false,
        }),
        sign_in: Some(v1::SignInSettings {
            identity_provider: Some(v1::IdentityProvider {
                issuer_url: "https://login.acme.example".into(),
                client_id: "toolgate".into(),
                client_secret_set: true,
                client_secret_set_at: ts(19, 10),
                client_secret_fingerprint: "3f9a1c0b".into(),
                scopes: vec!["email".into(), "profile".into()],
                email_claim: "email".into(),
                allowed_email_domains: vec!["acme.example".into()],
                unknown_users: v1::UnknownUsers::Refuse as i32,
                ..Default::default()
            }),
            registration: Some(v1::RegistrationPolicy {
                allowed_types: vec![
                    v1::ClientType::Personal as i32,
                    v1::ClientType::Ephemeral as i32,
                ],
                default_type: v1::ClientType::Personal as i32,
                dynamic_registration_enabled: true,
                metadata_document_private_hosts: vec![],
                ephemeral_close_after_days: Some(1),
            }),
        }),
    }
}

fn catalog() -> Vec<v1::CatalogEntry> {
    vec![v1::CatalogEntry {
        kind: "salesforce".into(),
        display_name: "Salesforce".into(),
        callback_url: "https://toolgate.example.com/auth/callback".into(),
        default_tool_prefix: "salesforce".into(),
        default_api_version: "66.0".into(),
        ..Default::default()
    }]
}

/// How the fake worker answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Never: everything stays loading.
    Nothing,
    /// Empty lists.
    Empty,
    /// The daemon is unreachable.
    Unreachable,
    /// The fixtures above.
    Data,
}

fn pick<T>(full: bool, all: Vec<T>) -> Vec<T> {
    if full { all } else { Vec::new() }
}

fn data_for(command: &Command, answer: Answer) -> Option<Result<Data, ApiError>> {
    if answer == Answer::Nothing {
        return None;
    }
    if answer == Answer::Unreachable {
        return Some(Err(ApiError {
            code: Code::Unavailable,
            message: "daemon unreachable (tcp connect error: Connection refused)".into(),
        }));
    }
    let full = answer == Answer::Data;
    Some(Ok(match command {
        Command::LoadSettings => Data::Settings(settings()),
        Command::LoadCatalog => Data::Catalog(catalog()),
        Command::LoadServers => Data::Servers(pick(full, servers())),
        Command::LoadTools => {
            let tools = pick(full, tools());
            Data::ToolsPage {
                total: tools.len(),
                tools,
            }
        }
        Command::LoadTool { id } => {
            let mut tool = tools().into_iter().find(|t| t.id == *id)?;
            tool.input_schema_json =
                r#"{"type":"object","properties":{"soql":{"type":"string","description":"The SOQL query"}},"required":["soql"]}"#.into();
            Data::Tool(tool)
        }
        Command::LoadToolsets => Data::Toolsets(pick(full, toolsets())),
        Command::LoadProfiles => Data::Profiles(pick(full, profiles())),
        Command::LoadUsers => Data::Users(pick(full, users())),
        Command::LoadClients { .. } => Data::Clients(pick(full, ai_clients())),
        Command::LoadUserDetail { user_id } => Data::UserDetail(user_detail(user_id)),
        Command::TailAudit { .. } => Data::AuditBacklog(pick(full, events())),
        Command::PreviewAccess(request) => Data::AccessPreview(preview(request)),
        Command::LoadAccessRequests { all } => {
            let requests: Vec<v1::AccessRequest> = pick(full, access_requests())
                .into_iter()
                .filter(|r| *all || r.state == v1::AccessRequestState::Pending as i32)
                .collect();
            Data::AccessRequests {
                pending: if full { 2 } else { 0 },
                requests,
            }
        }
        Command::LoadHeldCalls { all } => {
            let calls: Vec<v1::HeldCall> = pick(full, held_calls())
                .into_iter()
                .filter(|c| *all || c.state == v1::HeldCallState::Pending as i32)
                .collect();
            Data::HeldCalls {
                pending: if full { 1 } else { 0 },
                calls,
            }
        }
        Command::LoadHeldCall { id } => Data::HeldCall(held_call(id)?),
        Command::LoadHooks => Data::Hooks(pick(full, hooks())),
        Command::TestHook(request) => Data::HookTested(dry_run(request)),
        _ => return None,
    }))
}

/// The daemon's access preview: the profile "Sales" (2 users) gains the
/// tools the change names (a bound toolset's: query and search) and loses
/// those it removes; "Support" (1 user) gains them too when several tools
/// are named; with three or more tools named, six more profiles (one user
/// each) gain them too, a preview taller than an 80x24 screen.
fn preview(request: &v1::PreviewAccessChangeRequest) -> v1::PreviewAccessChangeResponse {
    use v1::access_change::Change;
    let (mut ids, mut lost): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for change in request.changes.iter().filter_map(|c| c.change.as_ref()) {
        match change {
            Change::UpdateTool(r) => ids.push(r.id.clone()),
            Change::BatchUpdateTools(r) => ids.extend(r.ids.iter().cloned()),
            Change::AddToolsetTools(r) => ids.extend(r.tool_ids.iter().cloned()),
            Change::BindToolsets(_) => ids.extend([id(101), id(102)]),
            Change::RemoveToolsetTools(r) => lost.extend(r.tool_ids.iter().cloned()),
            _ => {}
        }
    }
    let counts = |ids: &[String], users: u32| {
        tools()
            .into_iter()
            .filter(|t| ids.contains(&t.id))
            .map(|t| v1::ToolAccessCount {
                tool_id: t.id,
                tool_name: t.name,
                users,
            })
            .collect::<Vec<_>>()
    };
    let mut profiles = vec![v1::ProfileAccessChange {
        profile_id: id(301),
        profile_name: "Sales".into(),
        gained: counts(&ids, 2),
        lost: counts(&lost, 2),
        users_gaining: if ids.is_empty() { 0 } else { 2 },
        users_losing: if lost.is_empty() { 0 } else { 2 },
    }];
    if ids.len() > 1 {
        profiles.push(v1::ProfileAccessChange {
            profile_id: id(302),
            profile_name: "Support".into(),
            gained: counts(&ids, 1),
            users_gaining: 1,
            ..Default::default()
        });
    }
    if ids.len() > 2 {
        for (n, name) in ["Service", "Marketing", "Finance", "Ops", "Legal", "Audit"]
            .into_iter()
            .enumerate()
        {
            profiles.push(v1::ProfileAccessChange {
                profile_id: id(303 + n as u32),
                profile_name: name.into(),
                gained: counts(&ids, 1),
                users_gaining: 1,
                ..Default::default()
            });
        }
    }
    v1::PreviewAccessChangeResponse {
        users_gaining: profiles.iter().map(|p| p.users_gaining).sum(),
        users_losing: profiles.iter().map(|p| p.users_losing).sum(),
        profiles,
    }
}

/// The daemon's dry run: the PII hook redacts the sample result's email;
/// other hooks deny a query over `User`.
fn dry_run(request: &v1::TestHookRequest) -> v1::TestHookResponse {
    if request.id == id(905) {
        v1::TestHookResponse {
            matches: true,
            outcome: v1::HookOutcome::Mutated as i32,
            reason: String::new(),
            output_json: r#"{"records":[{"Email":"[REDACTED]"}]}"#.into(),
            redactions: [("Email".to_owned(), 1)].into_iter().collect(),
        }
    } else {
        v1::TestHookResponse {
            matches: true,
            outcome: v1::HookOutcome::Denied as i32,
            reason: "the query touches User, which this hook denies".into(),
            output_json: String::new(),
            redactions: Default::default(),
        }
    }
}

/// Answers every queued request the way `answer` says; returns those it
/// cannot answer (changes).
fn serve(app: &mut App, answer: Answer) -> Vec<Request> {
    let mut unanswered = Vec::new();
    loop {
        let requests = app.take_requests();
        if requests.is_empty() {
            return unanswered;
        }
        for request in requests {
            let tail = matches!(request.command, Command::TailAudit { .. });
            if let Some(result) = data_for(&request.command, answer) {
                let last = !(tail && result.is_ok());
                app.update(Action::Reply(Box::new(Reply {
                    id: request.id,
                    last,
                    result,
                })));
            } else if answer != Answer::Nothing {
                unanswered.push(request);
            }
        }
    }
}

/// Presses keys, answering loads; returns the requests left unanswered.
fn press(app: &mut App, answer: Answer, script: &str) -> Vec<Request> {
    let mut unanswered = Vec::new();
    for key in parse_keys(script) {
        app.update(Action::Key(key));
        unanswered.extend(serve(app, answer));
    }
    unanswered
}

fn console(size: (u16, u16), answer: Answer, screen: Screen) -> App {
    let mut app = App::new("http://127.0.0.1:50051", Rect::new(0, 0, size.0, size.1));
    app.clock = now;
    serve(&mut app, answer);
    match screen.digit() {
        Some(digit) => press(&mut app, answer, &digit.to_string()),
        None => press(&mut app, answer, &format!(":{}<Enter>", screen.name())),
    };
    app
}

fn snapshot(name: &str, app: &App) {
    let text = render(app, Theme { color: false });
    insta::with_settings!({
        snapshot_path => "snapshots",
        prepend_module_to_snapshot => false,
        filters => vec![
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[id]"),
            (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "[time]"),
        ],
    }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn every_screen_in_every_state_at_two_sizes() {
    for screen in Screen::ALL {
        for size in SIZES {
            for (state, answer) in [
                ("loading", Answer::Nothing),
                ("empty", Answer::Empty),
                ("error", Answer::Unreachable),
                ("data", Answer::Data),
            ] {
                let app = console(size, answer, screen);
                let name = format!("{}_{state}_{}x{}", screen.name(), size.0, size.1);
                snapshot(&name, &app);
            }
        }
    }
}

#[test]
fn the_tool_list_views_and_the_detail_pane() {
    for size in SIZES {
        let suffix = format!("{}x{}", size.0, size.1);
        let mut app = console(size, Answer::Data, Screen::Tools);
        press(&mut app, Answer::Data, "v");
        snapshot(&format!("tools_all_{suffix}"), &app);
        press(&mut app, Answer::Data, "jj<Space>j<Space>");
        snapshot(&format!("tools_marked_{suffix}"), &app);
        press(&mut app, Answer::Data, "<Enter>");
        snapshot(&format!("tools_detail_zoomed_{suffix}"), &app);
    }
}

#[test]
fn overlays() {
    let cases: [(&str, Screen, &str); 28] = [
        ("help", Screen::Tools, "?"),
        ("palette", Screen::Tools, ":pro"),
        ("register_form", Screen::Servers, "n"),
        ("credentials_form", Screen::Servers, "cs3cr3t"),
        ("bulk_confirm", Screen::Tools, "<Space><Space>a"),
        ("tool_filter_form", Screen::Tools, "f"),
        ("classify_form", Screen::Tools, "c"),
        ("members_picker", Screen::Toolsets, "m"),
        ("grant_form", Screen::Users, "u"),
        ("kill_switch_confirm", Screen::Settings, "<Space>"),
        ("identity_provider_form", Screen::Settings, "jjjjj<Space>"),
        ("registration_form", Screen::Settings, "jjjjjj<Space>"),
        ("client_revoke_confirm", Screen::Clients, "x"),
        ("governance_form", Screen::Settings, "G<Space>"),
        ("profile_form", Screen::Profiles, "e"),
        ("request_approve_form", Screen::Requests, "a"),
        ("request_deny_form", Screen::Requests, "d"),
        ("held_approve_confirm", Screen::HeldCalls, "a"),
        ("held_deny_form", Screen::HeldCalls, "d"),
        ("hook_kind_form", Screen::Hooks, "n"),
        ("hook_pii_form", Screen::Hooks, "GGe"),
        ("hook_window_form", Screen::Hooks, "jje"),
        ("hook_dry_run_form", Screen::Hooks, "Gt"),
        ("enable_confirm", Screen::Servers, "jt"),
        // Changes that can give access say who gains it before `y`.
        ("approve_write_confirm", Screen::Tools, "a"),
        ("classify_confirm", Screen::Tools, "c<Left><Enter>"),
        (
            "bindings_confirm",
            Screen::Profiles,
            "b<Down><Space><Enter>",
        ),
        (
            "members_confirm",
            Screen::Toolsets,
            "m<Down><Down><Space><Enter>",
        ),
    ];
    for (name, screen, script) in cases {
        for size in SIZES {
            let mut app = console(size, Answer::Data, screen);
            press(&mut app, Answer::Data, script);
            assert!(app.overlay.is_some(), "{name}: no overlay");
            snapshot(&format!("overlay_{name}_{}x{}", size.0, size.1), &app);
        }
    }
}

#[test]
fn the_approval_queues_show_decided_items_with_v() {
    for size in SIZES {
        let suffix = format!("{}x{}", size.0, size.1);
        let mut app = console(size, Answer::Data, Screen::Requests);
        press(&mut app, Answer::Data, "v");
        let text = render(&app, Theme { color: false });
        assert!(text.contains("approved"), "{text}");
        snapshot(&format!("requests_all_{suffix}"), &app);
        let mut app = console(size, Answer::Data, Screen::HeldCalls);
        press(&mut app, Answer::Data, "vj");
        snapshot(&format!("held_all_{suffix}"), &app);
    }
}

#[test]
fn a_hook_dry_run_shows_outcome_output_and_redaction_counts() {
    for size in SIZES {
        let suffix = format!("{}x{}", size.0, size.1);
        let mut app = console(size, Answer::Data, Screen::Hooks);
        press(&mut app, Answer::Data, "Gt<Enter>");
        assert!(app.overlay.is_none(), "the form closes with the answer");
        let text = render(&app, Theme { color: false });
        if size == (160, 45) {
            assert!(text.contains("MUTATED"), "{text}");
            assert!(text.contains("Email: 1"), "{text}");
        }
        snapshot(&format!("hooks_dry_run_{suffix}"), &app);
    }
}

#[test]
fn a_preview_taller_than_the_screen_is_cut_and_the_answer_line_stays() {
    for size in SIZES {
        let mut app = console(size, Answer::Data, Screen::Tools);
        press(&mut app, Answer::Data, "<Space><Space><Space>a");
        let text = render(&app, Theme { color: false });
        assert!(text.contains("Approve 3 tools?"), "{text}");
        assert!(text.contains(" y  confirm     n  cancel"), "{text}");
        assert!(text.contains("In all 9 users gain access."), "{text}");
        if size == (80, 24) {
            assert!(text.contains("… and 3 more lines"), "{text}");
        }
        snapshot(&format!("overlay_long_preview_{}x{}", size.0, size.1), &app);
    }
}

#[test]
fn the_issued_token_is_shown_once_with_the_config_line() {
    for size in SIZES {
        let mut app = console(size, Answer::Data, Screen::Users);
        let request = press(&mut app, Answer::Data, "i<Enter>");
        let [issue] = &request[..] else {
            panic!("{request:?}");
        };
        assert!(matches!(issue.command, Command::IssueToken(_)));
        app.update(Action::Reply(Box::new(Reply {
            id: issue.id,
            last: true,
            result: Ok(Data::TokenIssued(toolgate_console::action::IssuedToken {
                user_id: id(401),
                name: "laptop".into(),
                secret: "tgp_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
                    .to_owned()
                    .into(),
                mcp_url: "https://toolgate.example.com/mcp".into(),
            })),
        })));
        serve(&mut app, Answer::Data);
        snapshot(&format!("overlay_token_{}x{}", size.0, size.1), &app);
        app.update(Action::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
        let after = render(&app, Theme { color: false });
        assert!(!after.contains("tgp_0123456789"), "{after}");
    }
}

#[test]
fn a_refused_form_shows_the_daemons_message_and_keeps_the_values() {
    let mut app = console((80, 24), Answer::Data, Screen::Users);
    let requests = press(&mut app, Answer::Data, "nnot-an-email<Enter>");
    app.update(Action::Reply(Box::new(Reply {
        id: requests[0].id,
        last: true,
        result: Err(ApiError {
            code: Code::InvalidArgument,
            message: "email: \"not-an-email\" is not an email address".into(),
        }),
    })));
    snapshot("overlay_form_error_80x24", &app);
}

/// The first line of a rendered screen.
fn top_line(app: &App) -> String {
    render(app, Theme { color: false })
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_top_line_at_80x24_writes_out_the_kill_switch_and_an_unreachable_daemon() {
    let mut app = console((80, 24), Answer::Data, Screen::Users);
    assert!(top_line(&app).contains(" 5 Users "), "{}", top_line(&app));
    // The kill switch goes on.
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('r'),
        KeyModifiers::NONE,
    )));
    for request in app.take_requests() {
        let result = match &request.command {
            Command::LoadSettings => Ok(Data::Settings(v1::Settings {
                mcp_traffic_enabled: false,
                ..settings()
            })),
            other => match data_for(other, Answer::Data) {
                Some(result) => result,
                None => continue,
            },
        };
        let last = !matches!(request.command, Command::TailAudit { .. });
        app.update(Action::Reply(Box::new(Reply {
            id: request.id,
            last,
            result,
        })));
    }
    let line = top_line(&app);
    assert!(line.ends_with("MCP TRAFFIC OFF ● connected"), "{line}");
    assert!(line.contains(" 5 Users "), "{line}");
    // Then the daemon goes away: both are written out in full.
    press(&mut app, Answer::Unreachable, "r");
    let line = top_line(&app);
    assert!(
        line.ends_with("MCP TRAFFIC OFF ✗ daemon unreachable"),
        "{line}"
    );
    assert!(line.contains(" 5 Users "), "{line}");
    snapshot("top_line_off_unreachable_80x24", &app);
    // The status line wraps instead of cutting the address off.
    let text = render(&app, Theme { color: false });
    assert!(text.contains("http://127.0.0.1:50051"), "{text}");
}

#[test]
fn the_help_overlay_fits_80x24() {
    for screen in Screen::ALL {
        let mut app = console((80, 24), Answer::Data, screen);
        press(&mut app, Answer::Data, "?");
        let text = render(&app, Theme { color: false });
        assert!(
            !text.contains("j/k scroll,"),
            "{screen:?} needs scrolling:\n{text}"
        );
        for binding in toolgate_console::keymap::screen(screen)
            .iter()
            .chain(toolgate_console::keymap::GLOBAL)
        {
            assert!(
                text.contains(binding.help),
                "{screen:?}: {:?} is not shown:\n{text}",
                binding.help
            );
        }
    }
}

#[test]
fn the_users_screen_shows_every_callable_tool_and_each_connections_username() {
    // Wide: all 19 at once, with the usernames.
    let app = console((160, 45), Answer::Data, Screen::Users);
    let text = render(&app, Theme { color: false });
    for tool in CALLABLE {
        assert!(text.contains(tool), "{tool} is missing:\n{text}");
    }
    assert!(
        text.contains("Salesforce production: ana.lima@acme.example"),
        "{text}"
    );
    assert!(
        text.contains("org 00D000000000001EAA · user 005000000000001AAA"),
        "{text}"
    );
    assert!(text.contains("username unknown"), "{text}");
    // 80x24: the detail pane scrolls (J) through all of them.
    let mut app = console((80, 24), Answer::Data, Screen::Users);
    let mut seen = render(&app, Theme { color: false });
    assert!(seen.contains("J/K scroll"), "{seen}");
    for _ in 0..40 {
        press(&mut app, Answer::Data, "J");
        seen.push_str(&render(&app, Theme { color: false }));
    }
    for tool in CALLABLE {
        assert!(seen.contains(tool), "{tool} never shown");
    }
    assert!(app.detail_scroll > 0);
    snapshot("users_detail_scrolled_80x24", &app);
}
