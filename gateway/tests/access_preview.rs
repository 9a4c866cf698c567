//! `AccessProfileService.PreviewAccessChange` against the real thing: each
//! change is previewed, then made through its own RPC, and the preview is
//! compared with what every user's MCP `tools/list` really gained and lost.
//! Daemon in-process on port 0; no Salesforce needed (listing tools does not
//! connect).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Clients, Fixture};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use tonic::Code;
use toolgate_proto::v1;
use v1::access_change::Change;

struct World {
    gate: Fixture,
    /// (email, MCP token) per user.
    users: Vec<(String, String)>,
}

impl World {
    /// Every user's `tools/list`, by email.
    async fn lists(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut lists = BTreeMap::new();
        for (email, token) in &self.users {
            let transport = StreamableHttpClientTransport::from_config(
                StreamableHttpClientTransportConfig::with_uri(self.gate.mcp_url.clone())
                    .auth_header(token.clone()),
            );
            let client = ().serve(transport).await.unwrap();
            let tools = client.list_all_tools().await.unwrap();
            client.cancel().await.unwrap();
            lists.insert(
                email.clone(),
                tools.into_iter().map(|t| t.name.to_string()).collect(),
            );
        }
        lists
    }

    async fn preview(&self, changes: Vec<Change>) -> v1::PreviewAccessChangeResponse {
        self.gate
            .admin
            .profiles
            .clone()
            .preview_access_change(request(changes))
            .await
            .unwrap()
            .into_inner()
    }
}

fn request(changes: Vec<Change>) -> v1::PreviewAccessChangeRequest {
    v1::PreviewAccessChangeRequest {
        changes: changes
            .into_iter()
            .map(|c| v1::AccessChange { change: Some(c) })
            .collect(),
    }
}

/// What really changed: per user, (gained, lost) tool names; users with no
/// change left out.
type Diff = BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>;

fn diff(
    before: &BTreeMap<String, BTreeSet<String>>,
    after: &BTreeMap<String, BTreeSet<String>>,
) -> Diff {
    before
        .iter()
        .filter_map(|(user, was)| {
            let now = &after[user];
            let gained: BTreeSet<String> = now.difference(was).cloned().collect();
            let lost: BTreeSet<String> = was.difference(now).cloned().collect();
            (!gained.is_empty() || !lost.is_empty()).then(|| (user.clone(), (gained, lost)))
        })
        .collect()
}

/// The preview as (profile, gained (tool, users), lost (tool, users)).
type Shown = Vec<(String, Vec<(String, u32)>, Vec<(String, u32)>)>;

fn shown(preview: &v1::PreviewAccessChangeResponse) -> Shown {
    let counts = |c: &[v1::ToolAccessCount]| {
        c.iter()
            .map(|c| (c.tool_name.clone(), c.users))
            .collect::<Vec<_>>()
    };
    preview
        .profiles
        .iter()
        .map(|p| (p.profile_name.clone(), counts(&p.gained), counts(&p.lost)))
        .collect()
}

/// The preview agrees with the real change: the same users gain and lose,
/// the same tools, and no profile claims more users for a tool than really
/// gained (or lost) it.
fn assert_agrees(step: &str, preview: &v1::PreviewAccessChangeResponse, real: &Diff) {
    let gaining = real.values().filter(|(g, _)| !g.is_empty()).count();
    let losing = real.values().filter(|(_, l)| !l.is_empty()).count();
    assert_eq!(
        preview.users_gaining as usize, gaining,
        "{step}: users gaining"
    );
    assert_eq!(
        preview.users_losing as usize, losing,
        "{step}: users losing"
    );
    let mut per_tool_gain: BTreeMap<&str, u32> = BTreeMap::new();
    let mut per_tool_loss: BTreeMap<&str, u32> = BTreeMap::new();
    for (gained, lost) in real.values() {
        for t in gained {
            *per_tool_gain.entry(t).or_default() += 1;
        }
        for t in lost {
            *per_tool_loss.entry(t).or_default() += 1;
        }
    }
    let previewed = |f: fn(&v1::ProfileAccessChange) -> &Vec<v1::ToolAccessCount>| {
        let mut most: BTreeMap<String, u32> = BTreeMap::new();
        for p in &preview.profiles {
            assert!(!p.profile_id.is_empty(), "{step}: profile id");
            for c in f(p) {
                let m = most.entry(c.tool_name.clone()).or_default();
                *m = (*m).max(c.users);
            }
        }
        most
    };
    let gained = previewed(|p| &p.gained);
    let lost = previewed(|p| &p.lost);
    assert_eq!(
        gained.keys().map(String::as_str).collect::<Vec<_>>(),
        per_tool_gain.keys().copied().collect::<Vec<_>>(),
        "{step}: tools gained"
    );
    assert_eq!(
        lost.keys().map(String::as_str).collect::<Vec<_>>(),
        per_tool_loss.keys().copied().collect::<Vec<_>>(),
        "{step}: tools lost"
    );
    for (tool, users) in &gained {
        assert!(*users <= per_tool_gain[tool.as_str()], "{step}: {tool}");
    }
    for (tool, users) in &lost {
        assert!(*users <= per_tool_loss[tool.as_str()], "{step}: {tool}");
    }
}

/// (tool, users) pairs as written in a step.
type Counts<'a> = &'a [(&'a str, u32)];

fn owned(v: &[(&str, Counts<'_>, Counts<'_>)]) -> Shown {
    let own = |c: &[(&str, u32)]| c.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect();
    v.iter()
        .map(|(p, g, l)| ((*p).to_owned(), own(g), own(l)))
        .collect()
}

async fn world() -> World {
    World {
        gate: Fixture::start().await,
        users: Vec::new(),
    }
}

#[tokio::test]
async fn every_preview_matches_what_the_change_really_does_to_tools_list() {
    let mut w = world().await;
    let c = &mut w.gate.admin;
    let server = common::register(c, "Salesforce", "").await.server.unwrap();
    let tools = c
        .tools
        .list_tools(v1::ListToolsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tools;
    let id = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == format!("salesforce_{name}"))
            .unwrap()
            .id
            .clone()
    };
    let approved = i32::from(v1::ToolState::Approved);
    c.tools
        .batch_update_tools(v1::BatchUpdateToolsRequest {
            ids: vec![id("query"), id("get_record"), id("update_record")],
            state: approved,
        })
        .await
        .unwrap();
    let toolsets = c
        .toolsets
        .list_toolsets(v1::ListToolsetsRequest {
            server_id: server.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .toolsets;
    let maintained = |kind: v1::ToolsetKind| {
        toolsets
            .iter()
            .find(|t| t.kind == i32::from(kind))
            .unwrap()
            .id
            .clone()
    };
    let (read_only, all_approved) = (
        maintained(v1::ToolsetKind::ReadOnly),
        maintained(v1::ToolsetKind::AllApproved),
    );
    let ops_tools = c
        .toolsets
        .create_toolset(v1::CreateToolsetRequest {
            name: "Ops tools".into(),
            tool_ids: vec![id("query")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .toolset
        .unwrap()
        .id;
    let profile = |name: &str, toolsets: Vec<String>| {
        let mut profiles = c.profiles.clone();
        let name = name.to_owned();
        async move {
            profiles
                .create_access_profile(v1::CreateAccessProfileRequest {
                    name,
                    toolset_ids: toolsets,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .profile
                .unwrap()
                .id
        }
    };
    let sales = profile("Sales read-only", vec![read_only.clone()]).await;
    let ops = profile("Ops", vec![ops_tools.clone()]).await;
    let admins = profile("Admins", vec![]).await;
    let mut user_ids = BTreeMap::new();
    for (email, profiles) in [
        ("ana@example.com", vec![&sales]),
        ("ben@example.com", vec![&sales]),
        ("cat@example.com", vec![&sales]),
        ("dan@example.com", vec![&ops, &admins]),
    ] {
        let user_id = common::create_user(c, email).await;
        for profile_id in profiles {
            c.profiles
                .grant_user(v1::GrantUserRequest {
                    expected_revision: None,
                    profile_id: profile_id.clone(),
                    user_id: user_id.clone(),
                    expires_at: None,
                })
                .await
                .unwrap();
        }
        let secret = common::issue_token(c, &user_id, "preview").await;
        user_ids.insert(email, user_id);
        w.users.push((email.to_owned(), secret));
    }
    let classify = |tool: &str, action: v1::ToolAction| {
        Change::UpdateTool(v1::UpdateToolRequest {
            id: id(tool),
            state: None,
            classification: Some(v1::Classification {
                action: action.into(),
                sensitive: false,
                dangerous: false,
            }),
        })
    };
    type Step = (&'static str, Vec<Change>, Shown);
    let steps: Vec<Step> = vec![
        (
            // The reported defect: 19 -> 20 tools without a word.
            "reclassify an approved write tool as read",
            vec![classify("update_record", v1::ToolAction::Read)],
            owned(&[("Sales read-only", &[("salesforce_update_record", 3)], &[])]),
        ),
        (
            "approve one write tool no profile reaches yet",
            vec![Change::UpdateTool(v1::UpdateToolRequest {
                id: id("create_record"),
                state: Some(approved),
                classification: None,
            })],
            owned(&[]),
        ),
        (
            "add a tool to a bound custom toolset",
            vec![Change::AddToolsetTools(v1::AddToolsetToolsRequest {
                expected_revision: None,
                toolset_id: ops_tools.clone(),
                tool_ids: vec![id("get_record")],
            })],
            owned(&[("Ops", &[("salesforce_get_record", 1)], &[])]),
        ),
        (
            "bind All approved to a profile",
            vec![Change::BindToolsets(v1::BindToolsetsRequest {
                expected_revision: None,
                profile_id: admins.clone(),
                toolset_ids: vec![all_approved.clone()],
            })],
            owned(&[(
                "Admins",
                &[
                    ("salesforce_create_record", 1),
                    ("salesforce_update_record", 1),
                ],
                &[],
            )]),
        ),
        (
            "bulk-approve a read tool and a delete tool",
            vec![Change::BatchUpdateTools(v1::BatchUpdateToolsRequest {
                ids: vec![id("search"), id("delete_record")],
                state: approved,
            })],
            owned(&[
                (
                    "Admins",
                    &[("salesforce_delete_record", 1), ("salesforce_search", 1)],
                    &[],
                ),
                ("Sales read-only", &[("salesforce_search", 3)], &[]),
            ]),
        ),
        (
            "grant a profile to a user",
            vec![Change::GrantUser(v1::GrantUserRequest {
                expected_revision: None,
                profile_id: admins.clone(),
                user_id: user_ids["ana@example.com"].clone(),
                expires_at: None,
            })],
            owned(&[(
                "Admins",
                &[
                    ("salesforce_create_record", 1),
                    ("salesforce_delete_record", 1),
                ],
                &[],
            )]),
        ),
        (
            "reclassify a read tool as write: losses too",
            vec![classify("query", v1::ToolAction::Write)],
            // ana keeps it through Admins, dan through Ops and Admins.
            owned(&[("Sales read-only", &[], &[("salesforce_query", 2)])]),
        ),
        (
            "several changes in order, as the console sends a picker's edits",
            vec![
                Change::RemoveToolsetTools(v1::RemoveToolsetToolsRequest {
                    expected_revision: None,
                    toolset_id: ops_tools.clone(),
                    tool_ids: vec![id("query")],
                }),
                Change::UnbindToolsets(v1::UnbindToolsetsRequest {
                    expected_revision: None,
                    profile_id: admins.clone(),
                    toolset_ids: vec![all_approved.clone()],
                }),
            ],
            owned(&[
                (
                    "Admins",
                    &[],
                    &[
                        ("salesforce_create_record", 2),
                        ("salesforce_delete_record", 2),
                        ("salesforce_query", 2),
                        // ana keeps search and update_record through Sales.
                        ("salesforce_search", 1),
                        ("salesforce_update_record", 1),
                    ],
                ),
                ("Ops", &[], &[("salesforce_query", 1)]),
            ]),
        ),
    ];
    for (step, changes, expected) in steps {
        let before = w.lists().await;
        let preview = w.preview(changes.clone()).await;
        // A preview writes nothing.
        assert_eq!(w.lists().await, before, "{step}: preview changed access");
        for change in changes {
            apply(&mut w.gate.admin, change).await;
        }
        let after = w.lists().await;
        let real = diff(&before, &after);
        assert_agrees(step, &preview, &real);
        assert_eq!(shown(&preview), expected, "{step}");
    }
}

/// Sends `change` through its own RPC.
async fn apply(c: &mut Clients, change: Change) {
    match change {
        Change::UpdateTool(r) => {
            c.tools.update_tool(r).await.unwrap();
        }
        Change::BatchUpdateTools(r) => {
            c.tools.batch_update_tools(r).await.unwrap();
        }
        Change::AddToolsetTools(r) => {
            c.toolsets.add_toolset_tools(r).await.unwrap();
        }
        Change::RemoveToolsetTools(r) => {
            c.toolsets.remove_toolset_tools(r).await.unwrap();
        }
        Change::BindToolsets(r) => {
            c.profiles.bind_toolsets(r).await.unwrap();
        }
        Change::UnbindToolsets(r) => {
            c.profiles.unbind_toolsets(r).await.unwrap();
        }
        Change::GrantUser(r) => {
            c.profiles.grant_user(r).await.unwrap();
        }
        Change::RevokeUser(r) => {
            c.profiles.revoke_user(r).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_preview_refuses_what_the_write_would_refuse() {
    let mut w = world().await;
    let c = &mut w.gate.admin;
    common::register(c, "Salesforce", "").await;
    let pending = c
        .tools
        .list_tools(v1::ListToolsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tools[0]
        .clone();
    let toolset = c
        .toolsets
        .create_toolset(v1::CreateToolsetRequest {
            name: "Mine".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .toolset
        .unwrap();
    let add_pending = Change::AddToolsetTools(v1::AddToolsetToolsRequest {
        expected_revision: None,
        toolset_id: toolset.id.clone(),
        tool_ids: vec![pending.id.clone()],
    });
    let previewed = c
        .profiles
        .preview_access_change(request(vec![add_pending.clone()]))
        .await
        .unwrap_err();
    let written = c
        .toolsets
        .add_toolset_tools(v1::AddToolsetToolsRequest {
            expected_revision: None,
            toolset_id: toolset.id.clone(),
            tool_ids: vec![pending.id.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(previewed.code(), Code::FailedPrecondition);
    assert_eq!(previewed.message(), written.message());

    // In order: approving first makes the same addition acceptable.
    let ok = c
        .profiles
        .preview_access_change(request(vec![
            Change::UpdateTool(v1::UpdateToolRequest {
                id: pending.id.clone(),
                state: Some(v1::ToolState::Approved.into()),
                classification: None,
            }),
            add_pending,
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.users_gaining, 0);

    for (req, field) in [
        (v1::PreviewAccessChangeRequest::default(), "changes"),
        (
            v1::PreviewAccessChangeRequest {
                changes: vec![v1::AccessChange { change: None }],
            },
            "changes[0]",
        ),
        (
            request(vec![Change::BindToolsets(v1::BindToolsetsRequest {
                expected_revision: None,
                profile_id: "p".into(),
                toolset_ids: vec![],
            })]),
            "changes[0].bind_toolsets.toolset_ids",
        ),
    ] {
        let err = c.profiles.preview_access_change(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(
            err.message().starts_with(&format!("{field}:")),
            "{field}: {}",
            err.message()
        );
    }
    let err = c
        .profiles
        .preview_access_change(request(vec![Change::GrantUser(v1::GrantUserRequest {
            expected_revision: None,
            profile_id: "nope".into(),
            user_id: "nobody".into(),
            expires_at: None,
        })]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "access profile nope not found");
}
