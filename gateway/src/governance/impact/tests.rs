use super::*;
use crate::governance::edit::ClassificationEdit;
use crate::model::{
    Classification, LoginHost, ToolAction, ToolDefinition, ToolEnablement, ToolsetKind, UserStatus,
};

const NOW: Millis = 1_000_000;

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
        definition_hash: format!("hash-{id}"),
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

/// A profile named `name` (id: its name lowercased), binding `toolsets`,
/// granted to `(user, expires_at)`.
fn profile(name: &str, toolsets: &[&str], grants: &[(&str, Option<Millis>)]) -> AccessProfile {
    AccessProfile {
        revision: 0,
        id: name.to_lowercase(),
        name: name.into(),
        description: String::new(),
        toolset_ids: toolsets.iter().map(|s| s.to_string()).collect(),
        grants: grants
            .iter()
            .map(|(user, expires_at)| Grant {
                user_id: (*user).into(),
                granted_at: 0,
                expires_at: *expires_at,
                granted_by: "admin".into(),
            })
            .collect(),
        created_at: 0,
        updated_at: 0,
        obtain: Default::default(),
        max_request_duration_secs: None,
    }
}

fn user(id: &str, status: UserStatus) -> User {
    User {
        id: id.into(),
        email: format!("{id}@example.com"),
        display_name: id.into(),
        status,
        created_at: 0,
        updated_at: 0,
    }
}

/// Tools: query (approved read), update (approved write), create (pending
/// write), purge (approved delete), gone (removed read). Toolsets: the
/// server's "Read only" (`ro`) and "All approved" (`all`), custom `c`
/// holding query. u3's grant has expired; u6 is disabled.
fn world() -> Policy {
    Policy {
        settings: Settings::default(),
        servers: vec![Server {
            id: "srv".into(),
            name: "Salesforce".into(),
            catalog_kind: "salesforce".into(),
            tool_prefix: "salesforce".into(),
            login_host: LoginHost::Production,
            api_version: "66.0".into(),
            tool_enablement: ToolEnablement::Inherit,
            disabled: false,
            auth: None,
            created_at: 0,
            updated_at: 0,
        }],
        tools: vec![
            tool("query", ToolState::Approved, ToolAction::Read),
            tool("update", ToolState::Approved, ToolAction::Write),
            tool("create", ToolState::PendingReview, ToolAction::Write),
            tool("purge", ToolState::Approved, ToolAction::Delete),
            tool("gone", ToolState::Removed, ToolAction::Read),
        ],
        toolsets: vec![
            toolset("ro", ToolsetKind::ReadOnly, &[]),
            toolset("all", ToolsetKind::AllApproved, &[]),
            toolset("c", ToolsetKind::Custom, &["query"]),
        ],
        profiles: vec![
            profile(
                "Sales read-only",
                &["ro"],
                &[
                    ("u1", None),
                    ("u2", Some(NOW + 1)),
                    ("u3", Some(NOW)),
                    ("u6", None),
                ],
            ),
            profile("Ops", &["c"], &[("u1", None)]),
            profile("Unbound", &[], &[("u4", None)]),
            profile("Admins", &["all"], &[("u5", None)]),
        ],
        users: ["u1", "u2", "u3", "u4", "u5"]
            .into_iter()
            .map(|id| user(id, UserStatus::Active))
            .chain([user("u6", UserStatus::Disabled)])
            .collect(),
    }
}

fn classify(id: &str, action: ToolAction) -> Change {
    Change::UpdateTool(ToolEdit {
        id: id.into(),
        state: None,
        classification: Some(ClassificationEdit {
            action: Some(action),
            sensitive: false,
            dangerous: false,
        }),
    })
}

fn approve(ids: &[&str]) -> Change {
    Change::SetToolStates {
        ids: ids.iter().map(|s| s.to_string()).collect(),
        state: ToolState::Approved,
    }
}

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// One profile line: (profile name, users gaining, [(tool, users)] gained,
/// users losing, [(tool, users)] lost).
type Line = (
    &'static str,
    usize,
    Vec<(&'static str, usize)>,
    usize,
    Vec<(&'static str, usize)>,
);

/// [`Line`] with owned names, as [`preview`] answers.
type OwnedLine = (
    String,
    usize,
    Vec<(String, usize)>,
    usize,
    Vec<(String, usize)>,
);

fn lines(impact: &Impact) -> Vec<OwnedLine> {
    let tools = |counts: &[ToolCount]| {
        counts
            .iter()
            .map(|c| (c.tool_name.clone(), c.users))
            .collect::<Vec<_>>()
    };
    impact
        .profiles
        .iter()
        .map(|p| {
            (
                p.profile_name.clone(),
                p.users_gaining,
                tools(&p.gained),
                p.users_losing,
                tools(&p.lost),
            )
        })
        .collect()
}

/// The expected lines and user totals, or the refusal.
type Expected = Result<(Vec<Line>, usize, usize), EditError>;

fn expect(lines_expected: Vec<Line>, gaining: usize, losing: usize) -> Expected {
    Ok((lines_expected, gaining, losing))
}

#[test]
fn previews_every_change_as_a_table() {
    let sf = |t: &'static str, n: usize| (t, n);
    let cases: Vec<(&str, Policy, Vec<Change>, Expected)> = vec![
        (
            "reclassifying an approved write tool as read puts it in Read only",
            world(),
            vec![classify("update", ToolAction::Read)],
            // u3's grant expired, u6 is disabled; u5 already had it.
            expect(
                vec![("Sales read-only", 2, vec![sf("salesforce_update", 2)], 0, vec![])],
                2,
                0,
            ),
        ),
        (
            "reclassifying a read tool as write takes it out of Read only",
            world(),
            vec![classify("query", ToolAction::Write)],
            // u1 keeps it through Ops' custom toolset.
            expect(
                vec![("Sales read-only", 0, vec![], 1, vec![sf("salesforce_query", 1)])],
                0,
                1,
            ),
        ),
        (
            "reclassifying a tool that is not approved changes no access",
            world(),
            vec![classify("create", ToolAction::Read)],
            expect(vec![], 0, 0),
        ),
        (
            "approving a write tool reaches All approved only",
            world(),
            vec![approve(&["create"])],
            expect(
                vec![("Admins", 1, vec![sf("salesforce_create", 1)], 0, vec![])],
                1,
                0,
            ),
        ),
        (
            "approving one tool with UpdateTool answers the same",
            world(),
            vec![Change::UpdateTool(ToolEdit {
                id: "create".into(),
                state: Some(ToolState::Approved),
                classification: None,
            })],
            expect(
                vec![("Admins", 1, vec![sf("salesforce_create", 1)], 0, vec![])],
                1,
                0,
            ),
        ),
        (
            "disabling a tool: its users lose it through every profile",
            world(),
            vec![Change::SetToolStates {
                ids: ids(&["query"]),
                state: ToolState::Disabled,
            }],
            expect(
                vec![
                    ("Admins", 0, vec![], 1, vec![sf("salesforce_query", 1)]),
                    ("Ops", 0, vec![], 1, vec![sf("salesforce_query", 1)]),
                    ("Sales read-only", 0, vec![], 2, vec![sf("salesforce_query", 2)]),
                ],
                0,
                3,
            ),
        ),
        (
            "binding All approved to a profile gives its user every approved tool",
            world(),
            vec![Change::BindToolsets {
                profile_id: "unbound".into(),
                toolset_ids: ids(&["all"]),
            }],
            expect(
                vec![(
                    "Unbound",
                    1,
                    vec![
                        sf("salesforce_purge", 1),
                        sf("salesforce_query", 1),
                        sf("salesforce_update", 1),
                    ],
                    0,
                    vec![],
                )],
                1,
                0,
            ),
        ),
        (
            "adding a tool to a bound custom toolset",
            world(),
            vec![Change::AddToolsetTools {
                toolset_id: "c".into(),
                tool_ids: ids(&["update"]),
            }],
            expect(
                vec![("Ops", 1, vec![sf("salesforce_update", 1)], 0, vec![])],
                1,
                0,
            ),
        ),
        (
            "changes apply in order: approve, then add to a toolset",
            world(),
            vec![
                approve(&["create"]),
                Change::AddToolsetTools {
                    toolset_id: "c".into(),
                    tool_ids: ids(&["create"]),
                },
            ],
            expect(
                vec![
                    ("Admins", 1, vec![sf("salesforce_create", 1)], 0, vec![]),
                    ("Ops", 1, vec![sf("salesforce_create", 1)], 0, vec![]),
                ],
                2,
                0,
            ),
        ),
        (
            "granting a profile counts only tools the user did not have",
            world(),
            vec![Change::GrantUser {
                profile_id: "admins".into(),
                user_id: "u2".into(),
                expires_at: None,
            }],
            expect(
                vec![(
                    "Admins",
                    1,
                    vec![sf("salesforce_purge", 1), sf("salesforce_update", 1)],
                    0,
                    vec![],
                )],
                1,
                0,
            ),
        ),
        (
            "granting a profile with an expiry already past gives nothing",
            world(),
            vec![Change::GrantUser {
                profile_id: "admins".into(),
                user_id: "u2".into(),
                expires_at: Some(NOW),
            }],
            expect(vec![], 0, 0),
        ),
        (
            "revoking a grant",
            world(),
            vec![Change::RevokeUser {
                profile_id: "sales read-only".into(),
                user_id: "u2".into(),
            }],
            expect(
                vec![("Sales read-only", 0, vec![], 1, vec![sf("salesforce_query", 1)])],
                0,
                1,
            ),
        ),
        (
            "the kill switch does not hide what a change grants",
            Policy {
                settings: Settings {
                    mcp_traffic_enabled: false,
                    ..Settings::default()
                },
                ..world()
            },
            vec![classify("update", ToolAction::Read)],
            expect(
                vec![("Sales read-only", 2, vec![sf("salesforce_update", 2)], 0, vec![])],
                2,
                0,
            ),
        ),
        (
            "a disabled server's tools are gained by no one",
            Policy {
                servers: vec![Server {
                    disabled: true,
                    ..world().servers[0].clone()
                }],
                ..world()
            },
            vec![classify("update", ToolAction::Read)],
            expect(vec![], 0, 0),
        ),
        (
            "a removed tool cannot be approved",
            world(),
            vec![approve(&["gone"])],
            Err(EditError::Refused(
                "tool salesforce_gone was removed by its server and cannot be set to APPROVED"
                    .into(),
            )),
        ),
        (
            "an unknown tool",
            world(),
            vec![approve(&["nope"])],
            Err(EditError::not_found("tool", "nope")),
        ),
        (
            "a pending tool cannot be added to a toolset",
            world(),
            vec![Change::AddToolsetTools {
                toolset_id: "c".into(),
                tool_ids: ids(&["create"]),
            }],
            Err(EditError::Refused(
                "tool salesforce_create is PENDING_REVIEW; only APPROVED tools can be added to a toolset"
                    .into(),
            )),
        ),
        (
            "a maintained toolset cannot be edited",
            world(),
            vec![Change::AddToolsetTools {
                toolset_id: "ro".into(),
                tool_ids: ids(&["update"]),
            }],
            Err(EditError::Refused(
                "toolset \"ro\" is maintained by toolgate and cannot be edited; create a custom toolset instead"
                    .into(),
            )),
        ),
        (
            "binding an unknown toolset",
            world(),
            vec![Change::BindToolsets {
                profile_id: "ops".into(),
                toolset_ids: ids(&["nope"]),
            }],
            Err(EditError::not_found("toolset", "nope")),
        ),
        (
            "revoking a grant the user does not hold",
            world(),
            vec![Change::RevokeUser {
                profile_id: "ops".into(),
                user_id: "u2".into(),
            }],
            Err(EditError::not_found("grant for user", "u2")),
        ),
    ];
    for (name, policy, changes, expected) in cases {
        let got = preview(&policy, &changes, "admin", NOW)
            .map(|i| (lines(&i), i.users_gaining, i.users_losing));
        let expected = expected.map(|(lines, gaining, losing)| {
            (
                lines
                    .into_iter()
                    .map(|(p, ug, g, ul, l)| {
                        let own = |v: Vec<(&str, usize)>| {
                            v.into_iter().map(|(t, n)| (t.to_owned(), n)).collect()
                        };
                        (p.to_owned(), ug, own(g), ul, own(l))
                    })
                    .collect::<Vec<_>>(),
                gaining,
                losing,
            )
        });
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn preview_writes_nothing_and_names_profiles_by_id() {
    let policy = world();
    let before = format!("{policy:?}");
    let impact = preview(
        &policy,
        &[classify("update", ToolAction::Read)],
        "admin",
        NOW,
    )
    .unwrap();
    assert_eq!(format!("{policy:?}"), before);
    assert_eq!(impact.profiles[0].profile_id, "sales read-only");
    assert_eq!(impact.profiles[0].gained[0].tool_id, "update");
}

#[test]
fn counts_hold_at_scale() {
    // 1,000 users hold "Admins" (All approved); approving 200 pending tools
    // gives each of them all 200: 200,000 gains to attribute.
    let mut policy = world();
    policy.profiles = vec![profile("Admins", &["all"], &[])];
    policy.users.clear();
    for n in 0..1000 {
        let id = format!("user{n:04}");
        policy.profiles[0].grants.push(Grant {
            user_id: id.clone(),
            granted_at: 0,
            expires_at: None,
            granted_by: "admin".into(),
        });
        policy.users.push(user(&id, UserStatus::Active));
    }
    let pending: Vec<String> = (0..200).map(|n| format!("new{n:03}")).collect();
    policy.tools.extend(
        pending
            .iter()
            .map(|id| tool(id, ToolState::PendingReview, ToolAction::Write)),
    );
    let started = std::time::Instant::now();
    let impact = preview(
        &policy,
        &[Change::SetToolStates {
            ids: pending.clone(),
            state: ToolState::Approved,
        }],
        "admin",
        NOW,
    )
    .unwrap();
    eprintln!("preview of 200,000 gains: {:?}", started.elapsed());
    assert_eq!(impact.users_gaining, 1000);
    assert_eq!(impact.users_losing, 0);
    let [admins] = &impact.profiles[..] else {
        panic!("{:?}", impact.profiles.len());
    };
    assert_eq!(admins.users_gaining, 1000);
    assert_eq!(admins.gained.len(), 200);
    assert!(admins.gained.iter().all(|c| c.users == 1000));
}
