use super::*;
use crate::model::{Classification, Grant, LoginHost, ToolDefinition, ToolEnablement, ToolsetKind};

const NOW: Millis = 1_000_000;

fn server(disabled: bool) -> Server {
    Server {
        id: "srv".into(),
        name: "Salesforce".into(),
        catalog_kind: "salesforce".into(),
        tool_prefix: "salesforce".into(),
        login_host: LoginHost::Production,
        api_version: "66.0".into(),
        tool_enablement: ToolEnablement::Inherit,
        disabled,
        auth: None,
        created_at: 0,
        updated_at: 0,
    }
}

fn tool(id: &str, state: ToolState, action: ToolAction) -> Tool {
    Tool {
        id: id.into(),
        server_id: "srv".into(),
        name: format!("salesforce_{id}"),
        definition: std::sync::Arc::new(ToolDefinition {
            name: id.into(),
            title: id.into(),
            description: String::new(),
            input_schema: serde_json::json!({"type": "object"}),
            output_schema: None,
            annotations: Default::default(),
        }),
        definition_hash: String::new(),
        approved_hash: None,
        approved_definition: None,
        state,
        classification: Classification {
            action,
            sensitive: false,
            dangerous: false,
        },
        discovered_at: 0,
        updated_at: 0,
        updated_by: "test".into(),
        drift: vec![],
    }
}

fn toolset(id: &str, kind: ToolsetKind, tool_ids: &[&str]) -> Toolset {
    Toolset {
        revision: 0,
        id: id.into(),
        name: id.into(),
        description: String::new(),
        kind,
        server_id: (kind != ToolsetKind::Custom).then(|| "srv".to_string()),
        tool_ids: tool_ids.iter().map(|s| s.to_string()).collect(),
        created_at: 0,
        updated_at: 0,
    }
}

fn profile(toolset_ids: &[&str], grant: Option<Option<Millis>>) -> AccessProfile {
    AccessProfile {
        revision: 0,
        id: "prof".into(),
        name: "prof".into(),
        description: String::new(),
        toolset_ids: toolset_ids.iter().map(|s| s.to_string()).collect(),
        grants: grant
            .map(|expires_at| Grant {
                user_id: "alice".into(),
                granted_at: 0,
                expires_at,
                granted_by: "admin".into(),
            })
            .into_iter()
            .collect(),
        created_at: 0,
        updated_at: 0,
        obtain: Default::default(),
        max_request_duration_secs: None,
    }
}

fn user(status: UserStatus) -> User {
    User {
        id: "alice".into(),
        email: "alice@example.com".into(),
        display_name: "Alice".into(),
        status,
        created_at: 0,
        updated_at: 0,
    }
}

fn token(revoked: bool, expires_at: Option<Millis>) -> Token {
    Token {
        id: "tok".into(),
        user_id: "alice".into(),
        name: "t".into(),
        prefix: "tgp_abcd".into(),
        hash: String::new(),
        created_at: 0,
        expires_at,
        last_used_at: None,
        revoked_at: revoked.then_some(5),
    }
}

/// One row of the policy table: a world and the expected answer.
struct Case {
    name: &'static str,
    traffic: bool,
    user: UserStatus,
    token: Option<Token>,
    server_disabled: bool,
    tool: Tool,
    toolsets: Vec<Toolset>,
    profile: AccessProfile,
    expect: Result<(), Denial>,
}

fn base(name: &'static str) -> Case {
    Case {
        name,
        traffic: true,
        user: UserStatus::Active,
        token: Some(token(false, None)),
        server_disabled: false,
        tool: tool("query", ToolState::Approved, ToolAction::Read),
        toolsets: vec![toolset("custom", ToolsetKind::Custom, &["query"])],
        profile: profile(&["custom"], Some(None)),
        expect: Ok(()),
    }
}

fn not_granted(tool: &str) -> Result<(), Denial> {
    Err(Denial::NotGranted {
        tool: format!("salesforce_{tool}"),
    })
}

#[test]
fn policy_table() {
    let cases = vec![
        base("everything in place"),
        Case {
            traffic: false,
            expect: Err(Denial::TrafficDisabled),
            ..base("kill switch off")
        },
        Case {
            user: UserStatus::Disabled,
            expect: Err(Denial::UserDisabled),
            ..base("user disabled")
        },
        Case {
            token: Some(token(true, None)),
            expect: Err(Denial::TokenRevoked),
            ..base("token revoked")
        },
        Case {
            token: Some(token(false, Some(NOW))),
            expect: Err(Denial::TokenExpired),
            ..base("token expired at now")
        },
        Case {
            token: Some(token(false, Some(NOW + 1))),
            ..base("token expires later")
        },
        Case {
            token: None,
            ..base("admin view without token")
        },
        Case {
            server_disabled: true,
            expect: Err(Denial::ServerDisabled {
                tool: "salesforce_query".into(),
            }),
            ..base("server disabled")
        },
        Case {
            tool: tool("query", ToolState::PendingReview, ToolAction::Read),
            expect: Err(Denial::ToolNotApproved {
                tool: "salesforce_query".into(),
                state: ToolState::PendingReview,
            }),
            ..base("tool pending review")
        },
        Case {
            tool: tool("query", ToolState::Disabled, ToolAction::Read),
            expect: Err(Denial::ToolNotApproved {
                tool: "salesforce_query".into(),
                state: ToolState::Disabled,
            }),
            ..base("tool disabled, still in custom toolset")
        },
        Case {
            tool: tool("query", ToolState::Removed, ToolAction::Read),
            expect: Err(Denial::ToolNotApproved {
                tool: "salesforce_query".into(),
                state: ToolState::Removed,
            }),
            ..base("tool removed")
        },
        Case {
            toolsets: vec![toolset("custom", ToolsetKind::Custom, &["other"])],
            expect: not_granted("query"),
            ..base("tool not in the bound toolset")
        },
        Case {
            toolsets: vec![toolset("custom", ToolsetKind::Custom, &["other"])],
            tool: tool("query", ToolState::PendingReview, ToolAction::Read),
            expect: not_granted("query"),
            ..base("an ungranted tool's state is not revealed")
        },
        Case {
            profile: profile(&["custom"], None),
            server_disabled: true,
            expect: not_granted("query"),
            ..base("an ungranted tool's disabled server is not revealed")
        },
        Case {
            token: Some(Token {
                user_id: "mallory".into(),
                ..token(false, None)
            }),
            expect: Err(Denial::TokenRevoked),
            ..base("a token of another user")
        },
        Case {
            tool: Tool {
                server_id: "other-server".into(),
                ..tool("query", ToolState::Approved, ToolAction::Read)
            },
            expect: not_granted("query"),
            ..base("a tool of another server")
        },
        Case {
            profile: profile(&[], Some(None)),
            expect: not_granted("query"),
            ..base("no toolset bound")
        },
        Case {
            profile: profile(&["custom"], None),
            expect: not_granted("query"),
            ..base("profile not granted to the user")
        },
        Case {
            profile: profile(&["custom"], Some(Some(NOW))),
            expect: Err(Denial::GrantExpired {
                tool: "salesforce_query".into(),
            }),
            ..base("grant expired")
        },
        Case {
            profile: profile(&["custom"], Some(Some(NOW + 60_000))),
            ..base("grant expires later")
        },
        Case {
            toolsets: vec![toolset("all", ToolsetKind::AllApproved, &[])],
            profile: profile(&["all"], Some(None)),
            tool: tool("delete_record", ToolState::Approved, ToolAction::Delete),
            ..base("maintained all-approved includes an approved delete tool")
        },
        Case {
            toolsets: vec![toolset("ro", ToolsetKind::ReadOnly, &[])],
            profile: profile(&["ro"], Some(None)),
            ..base("maintained read-only includes an approved read tool")
        },
        Case {
            toolsets: vec![toolset("ro", ToolsetKind::ReadOnly, &[])],
            profile: profile(&["ro"], Some(None)),
            tool: tool("create_record", ToolState::Approved, ToolAction::Write),
            expect: not_granted("create_record"),
            ..base("maintained read-only excludes a write tool")
        },
    ];
    for case in cases {
        let settings = Settings {
            mcp_traffic_enabled: case.traffic,
            ..Settings::default()
        };
        let user = user(case.user);
        let profiles = [case.profile];
        let subject = Subject {
            user: &user,
            token: case.token.as_ref(),
            profiles: &profiles,
            toolsets: &case.toolsets,
            now: NOW,
        };
        let got = decide(
            &settings,
            &server(case.server_disabled),
            &case.tool,
            &subject,
        );
        assert_eq!(got, case.expect, "case: {}", case.name);
    }
}

#[test]
fn denial_messages_say_why() {
    assert_eq!(
        not_granted("query").unwrap_err().to_string(),
        "tool salesforce_query is not in your tool list"
    );
    assert!(Denial::TrafficDisabled.to_string().contains("turned off"));
}

#[test]
fn maintained_membership_is_computed_and_custom_is_as_curated() {
    let tools = vec![
        tool("query", ToolState::Approved, ToolAction::Read),
        tool("create_record", ToolState::Approved, ToolAction::Write),
        tool("search", ToolState::PendingReview, ToolAction::Read),
    ];
    let all = toolset("all", ToolsetKind::AllApproved, &[]);
    let ro = toolset("ro", ToolsetKind::ReadOnly, &[]);
    let custom = toolset("c", ToolsetKind::Custom, &["search"]);
    assert_eq!(toolset_members(&all, &tools), ["query", "create_record"]);
    assert_eq!(toolset_members(&ro, &tools), ["query"]);
    assert_eq!(toolset_members(&custom, &tools), ["search"]);
    let user = user(UserStatus::Active);
    let profiles = [profile(&["all"], Some(None))];
    let toolsets = [all];
    let subject = Subject {
        user: &user,
        token: None,
        profiles: &profiles,
        toolsets: &toolsets,
        now: NOW,
    };
    let allowed = allowed_tools(&Settings::default(), &[server(false)], &tools, &subject);
    let names: Vec<&str> = allowed.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(names, ["query", "create_record"]);
}

#[test]
fn allowed_tools_answers_as_decide_does_tool_by_tool() {
    let tools = vec![
        tool("query", ToolState::Approved, ToolAction::Read),
        tool("search", ToolState::Approved, ToolAction::Read),
        tool("create_record", ToolState::Approved, ToolAction::Write),
        tool(
            "delete_record",
            ToolState::PendingReview,
            ToolAction::Delete,
        ),
        tool("get_limits", ToolState::Disabled, ToolAction::Read),
    ];
    let toolsets = vec![
        toolset("custom", ToolsetKind::Custom, &["query", "delete_record"]),
        toolset("ro", ToolsetKind::ReadOnly, &[]),
        toolset("all", ToolsetKind::AllApproved, &[]),
        toolset("unbound", ToolsetKind::Custom, &["create_record"]),
    ];
    let mut live = profile(&["custom"], Some(None));
    live.id = "live".into();
    let mut expired = profile(&["ro"], Some(Some(NOW - 1)));
    expired.id = "expired".into();
    let mut someone_else = profile(&["all"], Some(None));
    someone_else.id = "bob".into();
    someone_else.grants[0].user_id = "bob".into();
    let mut ungranted = profile(&["all"], None);
    ungranted.id = "none".into();
    let profiles = vec![live, expired, someone_else, ungranted];
    let user = user(UserStatus::Active);
    let token = token(false, None);
    let subject = Subject {
        user: &user,
        token: Some(&token),
        profiles: &profiles,
        toolsets: &toolsets,
        now: NOW,
    };
    let servers = [server(false)];
    let expected: Vec<&str> = tools
        .iter()
        .filter(|t| decide(&Settings::default(), &servers[0], t, &subject).is_ok())
        .map(|t| t.id.as_str())
        .collect();
    let allowed: Vec<&str> = allowed_tools(&Settings::default(), &servers, &tools, &subject)
        .iter()
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(allowed, expected);
    assert_eq!(allowed, ["query"], "only the live grant's approved tool");
}

/// Every combination of two profiles' bindings (over four toolsets on two
/// servers, one disabled, including a custom toolset naming a missing and
/// a foreign tool) and grant states: the indexed list equals [`decide`]
/// tool by tool, in stored order.
#[test]
fn the_indexed_list_answers_as_decide_for_every_binding() {
    let mut other = server(false);
    other.id = "srv2".into();
    let servers_variants = [[server(false), other.clone()], [server(true), other]];
    let mut tools = vec![
        tool("query", ToolState::Approved, ToolAction::Read),
        tool("search", ToolState::Approved, ToolAction::Read),
        tool("create_record", ToolState::Approved, ToolAction::Write),
        tool(
            "delete_record",
            ToolState::PendingReview,
            ToolAction::Delete,
        ),
        tool("get_limits", ToolState::Disabled, ToolAction::Read),
    ];
    for (id, state, action) in [
        ("b_query", ToolState::Approved, ToolAction::Read),
        ("b_update", ToolState::Approved, ToolAction::Write),
        ("b_removed", ToolState::Removed, ToolAction::Read),
    ] {
        let mut t = tool(id, state, action);
        t.server_id = "srv2".into();
        tools.push(t);
    }
    let mut ro2 = toolset("ro2", ToolsetKind::ReadOnly, &[]);
    ro2.server_id = Some("srv2".into());
    let toolsets = vec![
        toolset(
            "custom",
            ToolsetKind::Custom,
            &["query", "delete_record", "missing", "b_update", "query"],
        ),
        toolset("ro", ToolsetKind::ReadOnly, &[]),
        toolset("all", ToolsetKind::AllApproved, &[]),
        ro2,
    ];
    let grants = [None, Some(None), Some(Some(NOW - 1)), Some(Some(NOW + 1))];
    let index = ToolIndex::new(&tools);
    let user = user(UserStatus::Active);
    let mut checked = 0;
    for servers in &servers_variants {
        for first_mask in 0..16u32 {
            for second_mask in [0u32, 0b0100, 0b1010] {
                for first_grant in grants {
                    for second_grant in [None, Some(Some(NOW - 1)), Some(None)] {
                        let bind = |mask: u32| -> Vec<&str> {
                            toolsets
                                .iter()
                                .enumerate()
                                .filter(|(i, _)| mask & (1 << i) != 0)
                                .map(|(_, ts)| ts.id.as_str())
                                .collect()
                        };
                        let mut first = profile(&bind(first_mask), first_grant);
                        first.id = "p1".into();
                        let mut second = profile(&bind(second_mask), second_grant);
                        second.id = "p2".into();
                        let profiles = [first, second];
                        let subject = Subject {
                            user: &user,
                            token: None,
                            profiles: &profiles,
                            toolsets: &toolsets,
                            now: NOW,
                        };
                        let expected: Vec<&str> = tools
                            .iter()
                            .filter(|t| {
                                let server = servers.iter().find(|s| s.id == t.server_id).unwrap();
                                decide(&Settings::default(), server, t, &subject).is_ok()
                            })
                            .map(|t| t.id.as_str())
                            .collect();
                        let got: Vec<&str> = allowed_positions(
                            &Settings::default(),
                            servers,
                            &tools,
                            &index,
                            &subject,
                        )
                        .iter()
                        .map(|&i| tools[i].id.as_str())
                        .collect();
                        assert_eq!(
                            got, expected,
                            "bindings {first_mask:04b}/{second_mask:04b}, grants {first_grant:?}/{second_grant:?}"
                        );
                        checked += usize::from(!expected.is_empty());
                    }
                }
            }
        }
    }
    assert!(
        checked > 100,
        "most combinations allow something: {checked}"
    );
}
