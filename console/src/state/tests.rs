//! Unit tests of the update step: a fake worker answers requests by hand.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use tonic::Code;
use toolgate_proto::v1;

use super::*;
use crate::action::{Command, Data, Reply};
use crate::client::ApiError;

fn key(c: char) -> Action {
    let modifiers = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    Action::Key(KeyEvent::new(KeyCode::Char(c), modifiers))
}

fn code(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn tool(id: &str, name: &str, state: v1::ToolState, discovered: i64) -> v1::Tool {
    v1::Tool {
        id: id.into(),
        server_id: "s1".into(),
        name: name.into(),
        state: state as i32,
        discovered_at: ts(discovered),
        ..Default::default()
    }
}

/// Answers every queued request: loads with empty data except tools.
fn answer(app: &mut App, tools: &[v1::Tool]) {
    for request in app.take_requests() {
        let result = match request.command {
            Command::LoadSettings => Ok(Data::Settings(v1::Settings::default())),
            Command::LoadCatalog => Ok(Data::Catalog(vec![])),
            Command::LoadServers => Ok(Data::Servers(vec![])),
            Command::LoadToolsets => Ok(Data::Toolsets(vec![])),
            Command::LoadProfiles => Ok(Data::Profiles(vec![])),
            Command::LoadUsers => Ok(Data::Users(vec![])),
            Command::LoadClients { .. } => Ok(Data::Clients(vec![])),
            Command::LoadAccessRequests { .. } => Ok(Data::AccessRequests {
                requests: vec![],
                pending: 0,
            }),
            Command::LoadHeldCalls { .. } => Ok(Data::HeldCalls {
                calls: vec![],
                pending: 0,
            }),
            Command::LoadHooks => Ok(Data::Hooks(vec![])),
            Command::LoadTools => Ok(Data::ToolsPage {
                tools: tools.to_vec(),
                total: tools.len(),
            }),
            _ => continue,
        };
        app.update(Action::Reply(Box::new(Reply {
            id: request.id,
            last: true,
            result,
        })));
    }
}

fn app_with(tools: &[v1::Tool]) -> App {
    let mut app = App::new("http://127.0.0.1:50051", Rect::new(0, 0, 80, 24));
    answer(&mut app, tools);
    app
}

#[test]
fn the_review_queue_is_pending_tools_newest_first() {
    let app = app_with(&[
        tool("a", "sf_a", v1::ToolState::PendingReview, 100),
        tool("b", "sf_b", v1::ToolState::Approved, 300),
        tool("c", "sf_c", v1::ToolState::PendingReview, 200),
        tool("d", "sf_d", v1::ToolState::PendingReview, 200),
    ]);
    let names: Vec<&str> = app
        .tools
        .shown
        .iter()
        .map(|i| app.tools.all[*i].name.as_str())
        .collect();
    assert_eq!(names, ["sf_c", "sf_d", "sf_a"]);
    assert_eq!(app.busy(), 0);
    assert_eq!(app.link, Link::Up);
}

/// Takes the queued requests, which must be one access preview, and
/// answers it with `preview`; returns what was asked.
fn answer_preview(
    app: &mut App,
    preview: v1::PreviewAccessChangeResponse,
) -> Vec<v1::access_change::Change> {
    let requests = app.take_requests();
    let [
        Request {
            id,
            command: Command::PreviewAccess(request),
        },
    ] = &requests[..]
    else {
        panic!("expected one access preview, got {requests:?}");
    };
    app.update(Action::Reply(Box::new(Reply {
        id: *id,
        last: true,
        result: Ok(Data::AccessPreview(preview)),
    })));
    request
        .changes
        .iter()
        .map(|c| c.change.clone().unwrap())
        .collect()
}

/// A preview answer: one profile whose `users` users gain `tools`.
fn gains(profile: &str, users: u32, tools: &[&str]) -> v1::PreviewAccessChangeResponse {
    v1::PreviewAccessChangeResponse {
        profiles: vec![v1::ProfileAccessChange {
            profile_id: "p1".into(),
            profile_name: profile.into(),
            gained: tools
                .iter()
                .map(|t| v1::ToolAccessCount {
                    tool_id: format!("id-{t}"),
                    tool_name: (*t).into(),
                    users,
                })
                .collect(),
            lost: vec![],
            users_gaining: users,
            users_losing: 0,
        }],
        users_gaining: users,
        users_losing: 0,
    }
}

fn classified(mut t: v1::Tool, action: v1::ToolAction, dangerous: bool) -> v1::Tool {
    t.classification = Some(v1::Classification {
        action: action as i32,
        sensitive: false,
        dangerous,
    });
    t
}

fn confirm_lines(app: &App) -> Vec<String> {
    let Some(Overlay::Confirm(confirm)) = &app.overlay else {
        panic!("expected a confirmation, got {:?}", app.overlay);
    };
    let mut lines = vec![confirm.title.clone()];
    lines.extend(confirm.lines.iter().cloned());
    if let Some(Loadable::Ready(shown)) = app.preview.as_ref().map(|p| &p.lines) {
        lines.extend(shown.iter().cloned());
    }
    lines
}

#[test]
fn a_read_tool_no_one_gains_is_approved_at_once_and_many_after_confirmation() {
    let mut app = app_with(&[
        classified(
            tool("a", "sf_a", v1::ToolState::PendingReview, 1),
            v1::ToolAction::Read,
            false,
        ),
        tool("b", "sf_b", v1::ToolState::PendingReview, 1),
        tool("c", "sf_c", v1::ToolState::PendingReview, 1),
    ]);
    app.update(key('a'));
    // The daemon is asked first; no one gains, so it is sent at once.
    let asked = answer_preview(&mut app, v1::PreviewAccessChangeResponse::default());
    assert!(matches!(
        &asked[..],
        [v1::access_change::Change::UpdateTool(v1::UpdateToolRequest { id, state: Some(2), classification: None })]
            if id == "a"
    ));
    assert!(app.overlay.is_none());
    let requests = app.take_requests();
    assert!(matches!(
        &requests[..],
        [Request { command: Command::SetToolState { ids, state: v1::ToolState::Approved }, .. }]
            if ids == &["a".to_owned()]
    ));
    app.update(key(' '));
    app.update(key(' '));
    assert_eq!(app.tools.marked.len(), 2);
    app.update(key('a'));
    let asked = answer_preview(&mut app, v1::PreviewAccessChangeResponse::default());
    assert!(matches!(
        &asked[..],
        [v1::access_change::Change::BatchUpdateTools(v1::BatchUpdateToolsRequest { ids, state: 2 })]
            if ids == &["a".to_owned(), "b".to_owned()]
    ));
    // Bulk actions ask even when no one gains, and say so.
    assert!(app.take_requests().is_empty(), "bulk actions ask first");
    let lines = confirm_lines(&app);
    assert_eq!(lines[0], "Approve 2 tools");
    assert_eq!(lines.last().unwrap(), "No one gains access.");
    app.update(key('y'));
    assert!(app.preview.is_none());
    let requests = app.take_requests();
    let [
        Request {
            id,
            command: Command::SetToolState { ids, .. },
        },
    ] = &requests[..]
    else {
        panic!("{requests:?}");
    };
    assert_eq!(ids, &["a".to_owned(), "b".to_owned()]);
    // The change succeeds: marks clear, the tools reload.
    app.update(Action::Reply(Box::new(Reply {
        id: *id,
        last: true,
        result: Ok(Data::Changed {
            message: "2 tools approved".into(),
            scope: Scope::Tools,
        }),
    })));
    assert!(app.tools.marked.is_empty());
    assert_eq!(
        app.status.as_ref().map(|s| s.text.as_str()),
        Some("2 tools approved")
    );
    assert!(
        app.take_requests()
            .iter()
            .any(|r| matches!(r.command, Command::LoadTools))
    );
}

#[test]
fn approving_a_tool_someone_gains_says_who_before_it_is_sent() {
    let mut app = app_with(&[classified(
        tool("a", "salesforce_search", v1::ToolState::PendingReview, 1),
        v1::ToolAction::Read,
        false,
    )]);
    app.update(key('a'));
    // While the preview is on its way, y waits.
    app.update(key('y'));
    assert!(matches!(app.overlay, Some(Overlay::Confirm(_))));
    answer_preview(
        &mut app,
        gains("Sales read-only", 12, &["salesforce_search"]),
    );
    assert_eq!(
        confirm_lines(&app),
        [
            "Approve salesforce_search",
            "  salesforce_search  (Pending review, read)",
            "Profile Sales read-only: 12 users gain salesforce_search",
        ]
    );
    app.update(key('y'));
    let requests = app.take_requests();
    assert!(matches!(
        &requests[..],
        [Request { command: Command::SetToolState { ids, state: v1::ToolState::Approved }, .. }]
            if ids == &["a".to_owned()]
    ));
}

#[test]
fn approving_one_write_delete_or_dangerous_tool_always_asks() {
    for (action, dangerous) in [
        (v1::ToolAction::Write, false),
        (v1::ToolAction::Delete, false),
        (v1::ToolAction::Read, true),
    ] {
        let mut app = app_with(&[classified(
            tool(
                "a",
                "salesforce_update_record",
                v1::ToolState::PendingReview,
                1,
            ),
            action,
            dangerous,
        )]);
        app.update(key('a'));
        answer_preview(&mut app, v1::PreviewAccessChangeResponse::default());
        assert!(app.take_requests().is_empty(), "{action:?} asks first");
        let lines = confirm_lines(&app);
        assert_eq!(lines[0], "Approve salesforce_update_record");
        assert!(
            lines
                .contains(&"It changes or deletes Salesforce data, or is marked dangerous.".into()),
            "{lines:?}"
        );
        assert_eq!(lines.last().unwrap(), "No one gains access.");
        app.update(key('n'));
        assert!(app.take_requests().is_empty());
        assert!(app.overlay.is_none() && app.preview.is_none());
    }
}

#[test]
fn a_failed_preview_is_shown_and_y_still_sends() {
    let mut app = app_with(&[classified(
        tool("a", "sf_a", v1::ToolState::PendingReview, 1),
        v1::ToolAction::Read,
        false,
    )]);
    app.update(key('a'));
    let requests = app.take_requests();
    app.update(Action::Reply(Box::new(Reply {
        id: requests[0].id,
        last: true,
        result: Err(ApiError {
            code: Code::Unimplemented,
            message: "unknown method".into(),
        }),
    })));
    assert_eq!(
        app.preview.as_ref().map(|p| &p.lines),
        Some(&Loadable::Failed(
            "Could not preview who gains access: unknown method".into()
        ))
    );
    app.update(key('y'));
    assert!(matches!(
        &app.take_requests()[..],
        [Request {
            command: Command::SetToolState { .. },
            ..
        }]
    ));
}

#[test]
fn classifying_confirms_with_who_gains_and_the_form_no_longer_says_metadata() {
    let mut app = app_with(&[classified(
        tool("u", "salesforce_update_record", v1::ToolState::Approved, 1),
        v1::ToolAction::Write,
        false,
    )]);
    app.update(key('v'));
    app.update(key('c'));
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("expected the classification form, got {:?}", app.overlay);
    };
    assert!(
        !format!("{:?}", form).contains("never changes a tool's state"),
        "the wrong sentence is gone"
    );
    // Action: write -> read.
    app.update(code(KeyCode::Left));
    app.update(code(KeyCode::Enter));
    let asked = answer_preview(
        &mut app,
        gains("Sales read-only", 12, &["salesforce_update_record"]),
    );
    assert!(matches!(
        &asked[..],
        [v1::access_change::Change::UpdateTool(v1::UpdateToolRequest {
            id,
            state: None,
            classification: Some(v1::Classification { action: 1, sensitive: false, dangerous: false }),
        })] if id == "u"
    ));
    assert_eq!(
        confirm_lines(&app),
        [
            "Classify salesforce_update_record",
            "  salesforce_update_record",
            "Action read, sensitive no, dangerous no.",
            "",
            "Profile Sales read-only: 12 users gain salesforce_update_record",
        ]
    );
    app.update(key('y'));
    assert!(matches!(
        &app.take_requests()[..],
        [Request {
            command: Command::SetClassification { ids, classification: v1::Classification { action: 1, .. } },
            ..
        }] if ids == &["u".to_owned()]
    ));
}

#[test]
fn preview_lines_name_profiles_users_and_tools() {
    let profile = |name: &str, gained: &[(&str, u32)], lost: &[(&str, u32)]| {
        let counts = |c: &[(&str, u32)]| {
            c.iter()
                .map(|(t, n)| v1::ToolAccessCount {
                    tool_id: String::new(),
                    tool_name: (*t).into(),
                    users: *n,
                })
                .collect()
        };
        v1::ProfileAccessChange {
            profile_id: name.to_lowercase(),
            profile_name: name.into(),
            gained: counts(gained),
            lost: counts(lost),
            users_gaining: 0,
            users_losing: 0,
        }
    };
    let preview = v1::PreviewAccessChangeResponse {
        profiles: vec![
            profile(
                "Admins",
                &[("t_a", 1), ("t_b", 1), ("t_c", 1), ("t_d", 1), ("t_e", 1)],
                &[],
            ),
            profile("Sales", &[("t_x", 12), ("t_y", 3)], &[("t_z", 2)]),
        ],
        users_gaining: 14,
        users_losing: 2,
    };
    assert_eq!(
        describe_access(&preview),
        [
            "Profile Admins: 1 user gains t_a, t_b, t_c, t_d and 1 more",
            "Profile Sales: 12 users gain t_x",
            "Profile Sales: 3 users gain t_y",
            "In all 14 users gain access.",
            "Profile Sales: 2 users lose t_z",
        ]
    );
    assert_eq!(
        describe_access(&v1::PreviewAccessChangeResponse::default()),
        ["No one gains access."]
    );
}

#[test]
fn the_preview_asks_for_the_same_calls_the_worker_makes() {
    use v1::access_change::Change;
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let kinds = |command: Command| {
        preview_request(&command).map(|r| {
            r.changes
                .into_iter()
                .map(|c| match c.change.unwrap() {
                    Change::UpdateTool(_) => "update_tool",
                    Change::BatchUpdateTools(_) => "batch_update_tools",
                    Change::AddToolsetTools(_) => "add_toolset_tools",
                    Change::RemoveToolsetTools(_) => "remove_toolset_tools",
                    Change::BindToolsets(_) => "bind_toolsets",
                    Change::UnbindToolsets(_) => "unbind_toolsets",
                    Change::GrantUser(_) => "grant_user",
                    Change::RevokeUser(_) => "revoke_user",
                })
                .collect::<Vec<_>>()
        })
    };
    let state = v1::ToolState::Approved;
    assert_eq!(
        kinds(Command::SetToolState {
            ids: ids(&["a"]),
            state
        }),
        Some(vec!["update_tool"])
    );
    assert_eq!(
        kinds(Command::SetToolState {
            ids: ids(&["a", "b"]),
            state
        }),
        Some(vec!["batch_update_tools"])
    );
    assert_eq!(
        kinds(Command::SetClassification {
            ids: ids(&["a", "b"]),
            classification: v1::Classification::default(),
        }),
        Some(vec!["update_tool", "update_tool"])
    );
    assert_eq!(
        kinds(Command::EditToolsetTools {
            toolset_id: "t".into(),
            add: ids(&["a"]),
            remove: ids(&["b"]),
        }),
        Some(vec!["add_toolset_tools", "remove_toolset_tools"])
    );
    assert_eq!(
        kinds(Command::EditBindings {
            profile_id: "p".into(),
            bind: vec![],
            unbind: ids(&["t"]),
        }),
        Some(vec!["unbind_toolsets"])
    );
    assert_eq!(kinds(Command::DeleteToolset { id: "t".into() }), None);
}

#[test]
fn binding_a_toolset_confirms_with_who_gains() {
    let mut app = app_with(&[]);
    for (load, data) in [
        (
            Load::Toolsets,
            Data::Toolsets(vec![v1::Toolset {
                id: "ts1".into(),
                name: "Salesforce: All approved".into(),
                kind: v1::ToolsetKind::AllApproved as i32,
                ..Default::default()
            }]),
        ),
        (
            Load::Profiles,
            Data::Profiles(vec![v1::AccessProfile {
                id: "p1".into(),
                name: "Sales".into(),
                ..Default::default()
            }]),
        ),
    ] {
        app.load(load);
        let request = app.take_requests().pop().unwrap();
        app.update(Action::Reply(Box::new(Reply {
            id: request.id,
            last: true,
            result: Ok(data),
        })));
    }
    app.update(key(':'));
    for c in "profiles".chars() {
        app.update(key(c));
    }
    app.update(code(KeyCode::Enter));
    app.update(key('b'));
    assert!(
        matches!(app.overlay, Some(Overlay::Picker(_))),
        "{:?}",
        app.overlay
    );
    app.update(key(' '));
    app.update(code(KeyCode::Enter));
    let asked = answer_preview(
        &mut app,
        gains(
            "Sales",
            3,
            &["salesforce_create_record", "salesforce_query"],
        ),
    );
    assert!(matches!(
        &asked[..],
        [v1::access_change::Change::BindToolsets(v1::BindToolsetsRequest { profile_id, toolset_ids, .. })]
            if profile_id == "p1" && toolset_ids == &["ts1".to_owned()]
    ));
    assert_eq!(
        confirm_lines(&app),
        [
            "Change the toolsets bound to Sales",
            "Add: Salesforce: All approved",
            "",
            "Profile Sales: 3 users gain salesforce_create_record, salesforce_query",
        ]
    );
    app.update(key('y'));
    assert!(matches!(
        &app.take_requests()[..],
        [Request { command: Command::EditBindings { bind, .. }, .. }] if bind == &["ts1".to_owned()]
    ));
}

#[test]
fn a_refused_form_keeps_its_values_and_shows_the_daemons_message() {
    let mut app = app_with(&[]);
    app.update(key('5'));
    app.take_requests();
    app.update(key('n'));
    for c in "not-an-email".chars() {
        app.update(key(c));
    }
    app.update(code(KeyCode::Enter));
    let requests = app.take_requests();
    let [Request { id, .. }] = &requests[..] else {
        panic!("{requests:?}");
    };
    app.update(Action::Reply(Box::new(Reply {
        id: *id,
        last: true,
        result: Err(ApiError {
            code: Code::InvalidArgument,
            message: "email: must contain @".into(),
        }),
    })));
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("the form stays open");
    };
    assert_eq!(form.error.as_deref(), Some("email: must contain @"));
    assert_eq!(form.text("email"), "not-an-email");
    assert!(form.busy.is_none());
}

#[test]
fn an_unreachable_daemon_is_a_status_not_a_crash_and_r_retries() {
    let mut app = App::new("http://127.0.0.1:9", Rect::new(0, 0, 80, 24));
    for request in app.take_requests() {
        app.update(Action::Reply(Box::new(Reply {
            id: request.id,
            last: true,
            result: Err(ApiError {
                code: Code::Unavailable,
                message: "daemon unreachable (connection refused)".into(),
            }),
        })));
    }
    assert_eq!(
        app.link,
        Link::Down("daemon unreachable (connection refused)".into())
    );
    assert!(matches!(app.servers, Loadable::Failed(_)));
    assert_eq!(app.busy(), 0);
    app.update(Action::Tick);
    let retried = app.take_requests();
    assert!(
        retried.len() >= 7,
        "a tick retries while the daemon is down"
    );
    app.update(Action::Tick);
    assert!(app.take_requests().is_empty(), "one round at a time");
    for request in retried {
        app.update(Action::Reply(Box::new(Reply {
            id: request.id,
            last: true,
            result: Ok(match request.command {
                Command::LoadTools => Data::ToolsPage {
                    tools: vec![],
                    total: 0,
                },
                _ => Data::Users(vec![]),
            }),
        })));
    }
    assert_eq!(app.link, Link::Up);
    app.update(Action::Tick);
    // Once it answers a tick only refreshes the approval queues.
    assert!(
        app.take_requests().iter().all(|r| matches!(
            r.command,
            Command::LoadAccessRequests { .. } | Command::LoadHeldCalls { .. }
        )),
        "no retries once it answers"
    );
    app.update(key('r'));
    assert!(app.take_requests().len() >= 7, "r reloads everything");
}

#[test]
fn stale_replies_are_ignored() {
    let mut app = App::new("x", Rect::new(0, 0, 80, 24));
    let first: Vec<_> = app.take_requests();
    app.update(key('r'));
    let second = app.take_requests();
    let old = first
        .iter()
        .find(|r| matches!(r.command, Command::LoadUsers))
        .unwrap();
    let new = second
        .iter()
        .find(|r| matches!(r.command, Command::LoadUsers))
        .unwrap();
    let user = |email: &str| v1::User {
        id: email.into(),
        email: email.into(),
        ..Default::default()
    };
    app.update(Action::Reply(Box::new(Reply {
        id: new.id,
        last: true,
        result: Ok(Data::Users(vec![user("new@example.com")])),
    })));
    app.update(Action::Reply(Box::new(Reply {
        id: old.id,
        last: true,
        result: Ok(Data::Users(vec![user("old@example.com")])),
    })));
    assert_eq!(
        app.users.ready().unwrap()[0].email,
        "new@example.com",
        "an older reply arriving late must not win"
    );
}

#[test]
fn the_audit_tail_drops_duplicates_and_keeps_the_selection_on_its_event() {
    let mut app = app_with(&[]);
    app.update(key('6'));
    let requests = app.take_requests();
    let tail = requests
        .iter()
        .find(|r| matches!(r.command, Command::TailAudit { .. }))
        .expect("opening the audit screen starts the tail");
    let event = |sequence: u64| v1::AuditEvent {
        sequence,
        action: format!("a{sequence}"),
        ..Default::default()
    };
    let send = |app: &mut App, data: Data| {
        app.update(Action::Reply(Box::new(Reply {
            id: tail.id,
            last: false,
            result: Ok(data),
        })))
    };
    send(&mut app, Data::AuditEvent(event(3)));
    send(
        &mut app,
        Data::AuditBacklog(vec![event(3), event(2), event(1)]),
    );
    let sequences: Vec<u64> = app.audit.events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        sequences,
        [3],
        "the backlog overlaps what the tail already sent"
    );
    send(&mut app, Data::AuditEvent(event(4)));
    assert_eq!(
        app.selected_event().map(|e| e.sequence),
        Some(4),
        "following"
    );
    app.update(key('j'));
    assert_eq!(app.selected_event().map(|e| e.sequence), Some(3));
    send(&mut app, Data::AuditEvent(event(5)));
    assert_eq!(
        app.selected_event().map(|e| e.sequence),
        Some(3),
        "not following: the selection stays on its event"
    );
    assert_eq!(app.audit.tail, Tail::Live);
}

#[test]
fn colon_jumps_to_a_screen_by_name() {
    let mut app = app_with(&[]);
    for action in [key(':'), key('p'), key('r'), code(KeyCode::Enter)] {
        app.update(action);
    }
    assert_eq!(app.screen, Screen::Profiles);
    for action in [key(':'), key('z'), code(KeyCode::Enter)] {
        app.update(action);
    }
    assert_eq!(app.screen, Screen::Profiles);
    assert!(app.status.as_ref().is_some_and(|s| s.error));
    assert_eq!(Screen::by_name("queue"), Some(Screen::Tools));
    assert_eq!(Screen::by_name("to"), Some(Screen::Tools));
    assert_eq!(Screen::by_name("tools"), Some(Screen::Tools));
    assert_eq!(Screen::by_name("toolsets"), Some(Screen::Toolsets));
}

#[test]
fn slash_filters_and_esc_clears() {
    let mut app = app_with(&[
        tool("a", "sf_query", v1::ToolState::PendingReview, 1),
        tool("b", "sf_search", v1::ToolState::PendingReview, 1),
    ]);
    for action in [key('/'), key('q'), key('u')] {
        app.update(action);
    }
    assert_eq!(app.tools.shown.len(), 1);
    app.update(code(KeyCode::Enter));
    assert_eq!(app.tools.shown.len(), 1, "Enter keeps the filter");
    app.update(code(KeyCode::Esc));
    assert_eq!(app.tools.shown.len(), 2, "Esc clears it");
}

#[test]
fn cursor_pages_and_stays_visible() {
    let mut cursor = Cursor::default();
    cursor.navigate(Intent::PageDown, 100, 10);
    assert_eq!(
        cursor,
        Cursor {
            selected: 10,
            offset: 1
        }
    );
    cursor.navigate(Intent::Bottom, 100, 10);
    assert_eq!(
        cursor,
        Cursor {
            selected: 99,
            offset: 90
        }
    );
    cursor.navigate(Intent::Top, 100, 10);
    assert_eq!(
        cursor,
        Cursor {
            selected: 0,
            offset: 0
        }
    );
    cursor.navigate(Intent::Up, 0, 10);
    assert_eq!(
        cursor,
        Cursor {
            selected: 0,
            offset: 0
        }
    );
}

#[test]
fn expiries_parse_as_durations_or_dates() {
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    assert_eq!(parse_expiry("", now), Ok(None));
    assert_eq!(
        parse_expiry("30d", now).unwrap().unwrap().seconds,
        1_800_000_000 + 30 * 86_400
    );
    assert_eq!(
        parse_expiry("12h", now).unwrap().unwrap().seconds,
        1_800_000_000 + 12 * 3600
    );
    assert_eq!(
        parse_expiry("2030-01-31", now).unwrap().unwrap().seconds,
        chrono::NaiveDate::from_ymd_opt(2030, 1, 31)
            .unwrap()
            .and_hms_opt(23, 59, 59)
            .unwrap()
            .and_utc()
            .timestamp()
    );
    assert!(
        parse_expiry("2020-01-01", now)
            .unwrap_err()
            .contains("past")
    );
    assert!(
        parse_expiry("soon", now)
            .unwrap_err()
            .starts_with("expires:")
    );
    assert!(parse_expiry("0d", now).is_err());
    for huge in ["99999999999999d", "1000000000d", "9223372036854775807h"] {
        assert!(
            parse_expiry(huge, now).unwrap_err().contains("too far"),
            "{huge}"
        );
    }
}

#[test]
fn the_token_overlay_copies_and_forgets() {
    let mut app = app_with(&[]);
    app.overlay = Some(Overlay::Token(IssuedToken {
        user_id: "u".into(),
        name: "laptop".into(),
        secret: zeroize::Zeroizing::new("tgp_secretvalue".into()),
        mcp_url: "https://gw.example.com/mcp".into(),
    }));
    app.update(key('y'));
    assert_eq!(
        app.take_effects(),
        [Effect::Copy(zeroize::Zeroizing::new(
            "claude mcp add --transport http toolgate https://gw.example.com/mcp --header \"Authorization: Bearer tgp_secretvalue\"".into()
        ))]
    );
    app.update(code(KeyCode::Esc));
    assert!(app.overlay.is_none());
    assert!(!format!("{app:?}").contains("tgp_secretvalue"));
}

#[test]
fn ctrl_c_quits_even_inside_a_form() {
    let mut app = app_with(&[]);
    app.update(key('1'));
    app.update(key('n'));
    assert!(matches!(app.overlay, Some(Overlay::Form(_))));
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert!(app.quit);
}

/// Answers the one queued tools load with `tools`.
fn reload_tools(app: &mut App, tools: &[v1::Tool]) {
    app.update(key('r'));
    answer(app, tools);
}

#[test]
fn the_selection_stays_on_its_tool_when_the_list_reloads() {
    let mut app = app_with(&[
        tool("a", "sf_a", v1::ToolState::PendingReview, 1),
        tool("b", "sf_b", v1::ToolState::PendingReview, 1),
        tool("c", "sf_c", v1::ToolState::PendingReview, 1),
    ]);
    app.update(key('j'));
    app.update(key('j'));
    assert_eq!(app.tools.selected().map(|t| t.id.as_str()), Some("c"));
    reload_tools(
        &mut app,
        &[
            tool("0", "sf_0", v1::ToolState::PendingReview, 1),
            tool("a", "sf_a", v1::ToolState::PendingReview, 1),
            tool("b", "sf_b", v1::ToolState::PendingReview, 1),
            tool("c", "sf_c", v1::ToolState::PendingReview, 1),
        ],
    );
    assert_eq!(app.tools.selected().map(|t| t.id.as_str()), Some("c"));
}

#[test]
fn a_first_load_that_restarts_does_not_list_tools_twice() {
    let mut app = App::new("x", Rect::new(0, 0, 80, 24));
    let first = app.take_requests();
    let load = first
        .iter()
        .find(|r| matches!(r.command, Command::LoadTools))
        .unwrap();
    app.update(Action::Reply(Box::new(Reply {
        id: load.id,
        last: false,
        result: Ok(Data::ToolsPage {
            tools: vec![tool("a", "sf_a", v1::ToolState::PendingReview, 1)],
            total: 2,
        }),
    })));
    assert_eq!(app.tools.all.len(), 1, "the first page shows at once");
    reload_tools(
        &mut app,
        &[
            tool("a", "sf_a", v1::ToolState::PendingReview, 1),
            tool("b", "sf_b", v1::ToolState::PendingReview, 1),
        ],
    );
    let ids: Vec<&str> = app.tools.all.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn a_late_failure_for_another_user_leaves_the_shown_detail_alone() {
    let mut app = app_with(&[]);
    let user = |id: &str| v1::User {
        id: id.into(),
        email: format!("{id}@example.com"),
        ..Default::default()
    };
    app.users = Loadable::Ready(vec![user("a"), user("b")]);
    app.update(key('5'));
    let for_a = app.take_requests();
    app.update(key('j'));
    let for_b = app.take_requests();
    let detail = |user_id: &str| UserDetail {
        user_id: user_id.into(),
        tokens: vec![],
        connections: vec![],
        tools: vec!["sf_query".into()],
    };
    app.update(Action::Reply(Box::new(Reply {
        id: for_b[0].id,
        last: true,
        result: Ok(Data::UserDetail(detail("b"))),
    })));
    app.update(Action::Reply(Box::new(Reply {
        id: for_a[0].id,
        last: true,
        result: Err(ApiError {
            code: Code::Internal,
            message: "boom".into(),
        }),
    })));
    assert!(matches!(&app.user_detail, Some((id, Loadable::Ready(_))) if id == "b"));
}

#[test]
fn hidden_audit_events_do_not_move_the_selection() {
    let mut app = app_with(&[]);
    app.update(key('6'));
    let tail = app.take_requests().into_iter().next().unwrap();
    let event = |sequence: u64, action: &str| v1::AuditEvent {
        sequence,
        action: action.into(),
        ..Default::default()
    };
    let send = |app: &mut App, data: Data| {
        app.update(Action::Reply(Box::new(Reply {
            id: tail.id,
            last: false,
            result: Ok(data),
        })))
    };
    send(
        &mut app,
        Data::AuditBacklog(vec![
            event(3, "tool.update"),
            event(2, "tool.update"),
            event(1, "x"),
        ]),
    );
    for action in [
        key('/'),
        key('t'),
        key('o'),
        key('o'),
        key('l'),
        code(KeyCode::Enter),
    ] {
        app.update(action);
    }
    app.update(key('j'));
    assert_eq!(app.selected_event().map(|e| e.sequence), Some(2));
    send(&mut app, Data::AuditEvent(event(4, "tokens/list")));
    assert_eq!(app.selected_event().map(|e| e.sequence), Some(2));
    send(&mut app, Data::AuditEvent(event(5, "tool.update")));
    assert_eq!(app.selected_event().map(|e| e.sequence), Some(2));
}

#[test]
fn a_refused_token_is_not_retried() {
    let mut app = App::new("x", Rect::new(0, 0, 80, 24));
    for request in app.take_requests() {
        app.update(Action::Reply(Box::new(Reply {
            id: request.id,
            last: true,
            result: Err(ApiError {
                code: Code::Unauthenticated,
                message: "the daemon refused the admin token".into(),
            }),
        })));
    }
    assert!(matches!(app.link, Link::Refused(_)));
    app.update(Action::Tick);
    assert!(app.take_requests().is_empty());
}

#[test]
fn quick_presses_on_a_setting_each_take_effect() {
    let mut app = app_with(&[]);
    app.update(key('7'));
    app.update(key('j'));
    app.update(key(' '));
    app.update(key(' '));
    let sent: Vec<Option<bool>> = app
        .take_requests()
        .into_iter()
        .filter_map(|r| match r.command {
            Command::UpdateSettings(u) => Some(u.require_tool_approval),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [Some(true), Some(false)],
        "the second press undoes the first"
    );
}

#[test]
fn colon_queue_and_colon_tools_pick_the_view() {
    let mut app = app_with(&[]);
    for action in [key(':'), key('t'), key('o'), key('o'), key('l'), key('s')] {
        app.update(action);
    }
    app.update(code(KeyCode::Enter));
    assert_eq!(
        (app.screen, app.tools.view),
        (Screen::Tools, ToolsView::All)
    );
    for action in [key(':'), key('q'), key('u'), key('e'), key('u'), key('e')] {
        app.update(action);
    }
    app.update(code(KeyCode::Enter));
    assert_eq!(app.tools.view, ToolsView::Queue);
}

#[test]
fn a_created_item_is_selected_and_unreachable_keeps_the_last_list() {
    let mut app = app_with(&[]);
    let toolset = |name: &str| v1::Toolset {
        id: name.into(),
        name: name.into(),
        ..Default::default()
    };
    app.toolsets = Loadable::Ready(vec![toolset("A"), toolset("C")]);
    app.update(key('3'));
    app.update(key('n'));
    for c in "B".chars() {
        app.update(key(c));
    }
    app.update(code(KeyCode::Enter));
    let create = app.take_requests();
    app.update(Action::Reply(Box::new(Reply {
        id: create[0].id,
        last: true,
        result: Ok(Data::Changed {
            message: "toolset B created".into(),
            scope: Scope::Toolsets,
        }),
    })));
    let reload = app.take_requests();
    let load = reload
        .iter()
        .find(|r| matches!(r.command, Command::LoadToolsets))
        .unwrap();
    app.update(Action::Reply(Box::new(Reply {
        id: load.id,
        last: true,
        result: Ok(Data::Toolsets(vec![
            toolset("A"),
            toolset("B"),
            toolset("C"),
        ])),
    })));
    assert_eq!(app.selected_toolset().map(|t| t.name.as_str()), Some("B"));
    app.update(key('r'));
    for request in app.take_requests() {
        app.update(Action::Reply(Box::new(Reply {
            id: request.id,
            last: true,
            result: Err(ApiError {
                code: Code::Unavailable,
                message: "daemon unreachable".into(),
            }),
        })));
    }
    assert_eq!(app.toolsets.ready().map(Vec::len), Some(3));
    assert!(matches!(app.link, Link::Down(_)));
}

#[test]
fn l_issues_a_sign_in_link_for_an_active_user_and_shows_it_once() {
    let mut app = App::new("x", Rect::new(0, 0, 80, 24));
    let user = |email: &str, status: v1::UserStatus| v1::User {
        id: email.into(),
        email: email.into(),
        status: status.into(),
        ..Default::default()
    };
    for request in app.take_requests() {
        let result = match request.command {
            Command::LoadUsers => Ok(Data::Users(vec![
                user("ana@example.com", v1::UserStatus::Active),
                user("ben@example.com", v1::UserStatus::Disabled),
            ])),
            _ => continue,
        };
        app.update(Action::Reply(Box::new(Reply {
            id: request.id,
            last: true,
            result,
        })));
    }
    app.update(key('5'));
    app.take_requests();
    app.update(key('l'));
    let requests = app.take_requests();
    let sent = requests
        .iter()
        .find(|r| {
            matches!(&r.command, Command::IssueSignInLink { user_id, .. } if user_id == "ana@example.com")
        })
        .expect("l asks the daemon for a link");
    app.update(Action::Reply(Box::new(Reply {
        id: sent.id,
        last: true,
        result: Ok(Data::SignInLinkIssued(crate::action::IssuedLink {
            email: "ana@example.com".into(),
            url: zeroize::Zeroizing::new("https://gw.example.com/signin/link/secretcode".into()),
            expires_at: "2026-12-07 08:00 UTC".into(),
        })),
    })));
    assert!(matches!(app.overlay, Some(Overlay::SignInLink(_))));
    app.update(key('y'));
    assert_eq!(
        app.take_effects(),
        [Effect::Copy(zeroize::Zeroizing::new(
            "https://gw.example.com/signin/link/secretcode".into()
        ))]
    );
    app.update(code(KeyCode::Esc));
    assert!(app.overlay.is_none());
    assert!(!format!("{app:?}").contains("secretcode"));

    // A disabled user gets no link.
    app.update(key('j'));
    app.take_requests();
    app.update(key('l'));
    assert!(
        !app.take_requests()
            .iter()
            .any(|r| matches!(r.command, Command::IssueSignInLink { .. }))
    );
}
