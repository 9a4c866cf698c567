//! Unit tests of the update step for issue 15's screens: the access request
//! and held call queues (each decision carries the right id and the
//! revision the admin saw), hooks (forms to requests, toggling, the dry
//! run), the governance settings and the profile form's way of obtaining.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use toolgate_proto::v1;

use super::*;
use crate::action::{Command, Data, Reply};

fn key(c: char) -> Action {
    let modifiers = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    Action::Key(KeyEvent::new(KeyCode::Char(c), modifiers))
}

fn press(app: &mut App, code: KeyCode) {
    app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(key(c));
    }
}

fn access_request(
    id: &str,
    email: &str,
    state: v1::AccessRequestState,
    revision: u64,
) -> v1::AccessRequest {
    v1::AccessRequest {
        id: id.into(),
        user_id: format!("u-{email}"),
        user_email: email.into(),
        profile_id: "p1".into(),
        profile_name: "Sales".into(),
        tool: "salesforce_query".into(),
        state: state as i32,
        requested_duration_secs: Some(86_400),
        revision,
        ..Default::default()
    }
}

fn held(id: &str, revision: u64) -> v1::HeldCall {
    v1::HeldCall {
        id: id.into(),
        user_email: "ana@example.com".into(),
        client_name: "Claude".into(),
        tool: "salesforce_delete_record".into(),
        state: v1::HeldCallState::Pending as i32,
        revision,
        ..Default::default()
    }
}

fn hook(id: &str, name: &str, enabled: bool) -> v1::Hook {
    v1::Hook {
        id: id.into(),
        name: name.into(),
        phase: v1::HookPhase::Before as i32,
        priority: 10,
        enabled,
        timeout_ms: 2000,
        filter: Some(v1::HookFilter {
            tools: vec!["salesforce_query".into()],
            ..Default::default()
        }),
        config: Some(v1::hook::Config::QueryScope(v1::QueryScopeConfig {
            deny_objects: vec!["User".into()],
            ..Default::default()
        })),
        revision: 7,
        ..Default::default()
    }
}

/// A console whose loads are answered with fixed governance data.
fn app() -> App {
    let mut app = App::new("http://127.0.0.1:50051", Rect::new(0, 0, 120, 40));
    for request in app.take_requests() {
        let result = match request.command {
            Command::LoadSettings => Data::Settings(v1::Settings {
                mcp_traffic_enabled: true,
                governance: Some(v1::GovernanceSettings {
                    show_requestable_tools: true,
                    access_request_ttl_secs: 604_800,
                    held_call_ttl_secs: 3_600,
                    call_approval: Some(v1::CallApprovalRule {
                        tools: vec!["salesforce_delete_*".into()],
                        classifications: vec![v1::ClassificationTag::Dangerous as i32],
                    }),
                    audit_verbosity: v1::AuditVerbosity::Standard as i32,
                }),
                ..Default::default()
            }),
            Command::LoadCatalog => Data::Catalog(vec![]),
            Command::LoadServers => Data::Servers(vec![v1::Server {
                id: "s1".into(),
                name: "Salesforce".into(),
                ..Default::default()
            }]),
            Command::LoadToolsets => Data::Toolsets(vec![]),
            Command::LoadProfiles => Data::Profiles(vec![v1::AccessProfile {
                id: "p1".into(),
                name: "Sales".into(),
                obtain: v1::ProfileObtain::RequestWithApproval as i32,
                max_request_duration_secs: Some(604_800),
                ..Default::default()
            }]),
            Command::LoadUsers => Data::Users(vec![v1::User {
                id: "u1".into(),
                email: "ana@example.com".into(),
                ..Default::default()
            }]),
            Command::LoadClients { .. } => Data::Clients(vec![]),
            Command::LoadAccessRequests { all } => {
                assert!(!all, "pending only at first");
                Data::AccessRequests {
                    requests: vec![
                        access_request(
                            "r-new",
                            "bo@example.com",
                            v1::AccessRequestState::Pending,
                            4,
                        ),
                        access_request(
                            "r-old",
                            "ana@example.com",
                            v1::AccessRequestState::Pending,
                            1,
                        ),
                    ],
                    pending: 2,
                }
            }
            Command::LoadHeldCalls { .. } => Data::HeldCalls {
                calls: vec![held("h1", 2)],
                pending: 1,
            },
            Command::LoadHooks => Data::Hooks(vec![hook("k1", "no users", true)]),
            Command::LoadTools => Data::ToolsPage {
                tools: vec![],
                total: 0,
            },
            _ => continue,
        };
        app.update(Action::Reply(Box::new(Reply {
            id: request.id,
            last: true,
            result: Ok(result),
        })));
    }
    app
}

/// The one command queued (besides none), answered with nothing.
fn one_command(app: &mut App) -> Command {
    let mut requests = app.take_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.remove(0).command
}

#[test]
fn the_tabs_count_pending_requests_and_held_calls() {
    let mut app = app();
    app.update(Action::Resize(160, 45));
    let tabs = app.tabs();
    let labels: Vec<&str> = tabs.tabs.iter().map(|t| t.1.as_str()).collect();
    assert!(labels.contains(&" 9 Requests (2) "), "{labels:?}");
    assert!(labels.contains(&" 0 Held calls (1) "), "{labels:?}");
}

#[test]
fn approving_an_access_request_sends_its_id_revision_and_shorter_duration() {
    let mut app = app();
    app.update(key('9'));
    assert_eq!(app.screen, Screen::Requests);
    // Newest first: bo's request (revision 4).
    app.update(key('a'));
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("the approve form opens");
    };
    assert!(
        form.intro
            .iter()
            .any(|l| l.contains("bo@example.com asks for Sales"))
    );
    assert!(
        form.intro
            .iter()
            .any(|l| l.contains("Asked for: 1d; the profile allows at most: 1w")),
        "{:?}",
        form.intro
    );
    typed(&mut app, "tomorrow");
    press(&mut app, KeyCode::Enter);
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("a bad duration keeps the form");
    };
    assert!(form.error.as_deref().unwrap().starts_with("grant for:"));
    assert!(app.take_requests().is_empty());
    for _ in 0.."tomorrow".len() {
        press(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "2h");
    press(&mut app, KeyCode::Enter);
    let Command::ApproveAccessRequest(sent) = one_command(&mut app) else {
        panic!("an approval");
    };
    assert_eq!(
        sent,
        v1::ApproveAccessRequestRequest {
            id: "r-new".into(),
            duration_secs: Some(7_200),
            expected_revision: Some(4),
        }
    );
}

#[test]
fn denying_an_access_request_needs_a_reason_and_sends_it() {
    let mut app = app();
    app.update(key('9'));
    app.update(key('j'));
    app.update(key('d'));
    press(&mut app, KeyCode::Enter);
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("the deny form stays");
    };
    assert!(form.error.as_deref().unwrap().starts_with("reason:"));
    typed(&mut app, "not on the sales team");
    press(&mut app, KeyCode::Enter);
    let Command::DenyAccessRequest(sent) = one_command(&mut app) else {
        panic!("a denial");
    };
    assert_eq!(sent.id, "r-old");
    assert_eq!(sent.reason, "not on the sales team");
    assert_eq!(sent.expected_revision, Some(1));
}

#[test]
fn v_lists_decided_requests_too() {
    let mut app = app();
    app.update(key('9'));
    app.update(key('v'));
    assert!(matches!(
        one_command(&mut app),
        Command::LoadAccessRequests { all: true }
    ));
}

#[test]
fn a_held_call_is_approved_only_after_its_arguments_are_shown() {
    let mut app = app();
    app.update(key('0'));
    assert_eq!(app.screen, Screen::HeldCalls);
    let requests = app.take_requests();
    let [load] = &requests[..] else {
        panic!("{requests:?}");
    };
    assert!(matches!(&load.command, Command::LoadHeldCall { id } if id == "h1"));
    // Not yet: the arguments are loading.
    app.update(key('a'));
    assert!(app.overlay.is_none());
    let mut detail = held("h1", 3);
    detail.arguments_json = r#"{"object":"Account","id":"001000000000001AAA"}"#.into();
    app.update(Action::Reply(Box::new(Reply {
        id: load.id,
        last: true,
        result: Ok(Data::HeldCall(detail)),
    })));
    app.update(key('a'));
    let Some(Overlay::Confirm(confirm)) = &app.overlay else {
        panic!("the confirmation opens");
    };
    assert!(
        confirm
            .lines
            .contains(&"  \"object\": \"Account\",".to_owned()),
        "{:?}",
        confirm.lines
    );
    assert!(
        confirm
            .lines
            .contains(&"  \"id\": \"001000000000001AAA\"".to_owned())
    );
    app.update(key('y'));
    let Command::ApproveHeldCall(sent) = one_command(&mut app) else {
        panic!("an approval");
    };
    // The revision of the call as shown (the detail), not the list's.
    assert_eq!(
        sent,
        v1::ApproveHeldCallRequest {
            id: "h1".into(),
            expected_revision: Some(3),
        }
    );
}

#[test]
fn denying_a_held_call_sends_the_reason() {
    let mut app = app();
    app.update(key('0'));
    app.take_requests();
    app.update(key('d'));
    typed(&mut app, "use the sandbox");
    press(&mut app, KeyCode::Enter);
    let Command::DenyHeldCall(sent) = one_command(&mut app) else {
        panic!("a denial");
    };
    assert_eq!(
        sent,
        v1::DenyHeldCallRequest {
            id: "h1".into(),
            reason: "use the sandbox".into(),
            expected_revision: Some(2),
        }
    );
}

#[test]
fn a_new_query_scope_hook_is_sent_with_its_parsed_settings() {
    let mut app = app();
    app.update(key(':'));
    typed(&mut app, "hooks");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Hooks);
    app.update(key('n'));
    // PII redaction, card blocking, then query scope.
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Enter);
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("the query scope form opens");
    };
    assert_eq!(form.title, "New query scope hook");
    let focus = |app: &mut App, key: &str| {
        let Some(Overlay::Form(form)) = &mut app.overlay else {
            panic!("form");
        };
        form.focus = form.fields.iter().position(|f| f.key == key).unwrap();
    };
    typed(&mut app, "scope");
    focus(&mut app, "servers");
    typed(&mut app, "Nowhere");
    press(&mut app, KeyCode::Enter);
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("an unknown server keeps the form");
    };
    assert_eq!(
        form.error.as_deref(),
        Some("servers: no server named \"Nowhere\"")
    );
    for _ in 0.."Nowhere".len() {
        press(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "salesforce");
    focus(&mut app, "classes");
    typed(&mut app, "read");
    focus(&mut app, "deny");
    typed(&mut app, "User, Contact");
    focus(&mut app, "max_limit");
    typed(&mut app, "200");
    focus(&mut app, "deny_query_all");
    app.update(key(' '));
    press(&mut app, KeyCode::Enter);
    let Command::CreateHook { hook, secret } = one_command(&mut app) else {
        panic!("a create");
    };
    assert!(secret.is_none());
    assert_eq!(hook.name, "scope");
    assert_eq!(hook.phase, v1::HookPhase::Before as i32);
    assert_eq!(hook.timeout_ms, 2000);
    assert!(hook.enabled);
    let filter = hook.filter.unwrap();
    assert_eq!(filter.server_ids, ["s1"]);
    assert_eq!(filter.classifications, [v1::ClassificationTag::Read as i32]);
    assert_eq!(
        hook.config,
        Some(v1::hook::Config::QueryScope(v1::QueryScopeConfig {
            allow_objects: vec![],
            deny_objects: vec!["User".into(), "Contact".into()],
            max_limit: Some(200),
            deny_query_all: true,
        }))
    );
}

#[test]
fn a_new_webhook_needs_its_secret_and_never_shows_it() {
    let mut app = app();
    app.screen = Screen::Hooks;
    app.update(key('n'));
    for _ in 0..4 {
        press(&mut app, KeyCode::Right);
    }
    press(&mut app, KeyCode::Enter);
    let Some(Overlay::Form(form)) = &mut app.overlay else {
        panic!("the webhook form opens");
    };
    assert_eq!(form.title, "New webhook hook");
    typed(&mut app, "ask");
    let Some(Overlay::Form(form)) = &mut app.overlay else {
        panic!("form");
    };
    form.focus = form.fields.iter().position(|f| f.key == "url").unwrap();
    typed(&mut app, "https://hooks.example.com/toolgate");
    press(&mut app, KeyCode::Enter);
    let Some(Overlay::Form(form)) = &mut app.overlay else {
        panic!("form stays");
    };
    assert!(form.error.as_deref().unwrap().starts_with("secret:"));
    form.focus = form.fields.iter().position(|f| f.key == "secret").unwrap();
    typed(&mut app, "a-very-long-signing-secret");
    press(&mut app, KeyCode::Enter);
    let command = one_command(&mut app);
    assert!(!format!("{command:?}").contains("a-very-long-signing-secret"));
    let Command::CreateHook { hook, secret } = command else {
        panic!("a create");
    };
    assert_eq!(secret.unwrap().0.as_str(), "a-very-long-signing-secret");
    assert_eq!(
        hook.config,
        Some(v1::hook::Config::Webhook(v1::WebhookConfig {
            url: "https://hooks.example.com/toolgate".into(),
            ..Default::default()
        }))
    );
}

#[test]
fn space_disables_a_hook_at_its_revision_and_t_dry_runs_it() {
    let mut app = app();
    app.screen = Screen::Hooks;
    app.update(key(' '));
    let Command::UpdateHook {
        hook,
        secret,
        expected_revision,
    } = one_command(&mut app)
    else {
        panic!("an update");
    };
    assert_eq!((hook.id.as_str(), hook.enabled), ("k1", false));
    assert!(secret.is_none());
    assert_eq!(expected_revision, Some(7));
    assert!(!app.hooks.ready().unwrap()[0].enabled, "shown at once");
    app.update(key('t'));
    press(&mut app, KeyCode::Enter);
    let Command::TestHook(test) = one_command(&mut app) else {
        panic!("a dry run");
    };
    assert_eq!(test.id, "k1");
    assert_eq!(test.tool, "salesforce_query");
    assert_eq!(
        test.arguments_json,
        r#"{"soql": "SELECT Id FROM Account LIMIT 10"}"#
    );
    assert_eq!(test.result_json, "", "a BEFORE hook gets no result");
}

#[test]
fn governance_settings_change_one_at_a_time_and_keep_the_rest() {
    let mut app = app();
    app.update(key('7'));
    for _ in 0..7 {
        app.update(key('j'));
    }
    app.update(key(' '));
    let Command::UpdateSettings(sent) = one_command(&mut app) else {
        panic!("a settings update");
    };
    let governance = sent.governance.unwrap();
    assert!(!governance.show_requestable_tools);
    assert_eq!(governance.held_call_ttl_secs, 3_600);
    assert_eq!(
        governance.call_approval.unwrap().tools,
        ["salesforce_delete_*"]
    );
    // The form: expiry times and the per-call approval rule.
    app.update(key('j'));
    app.update(key('j'));
    app.update(key(' '));
    let Some(Overlay::Form(form)) = &mut app.overlay else {
        panic!("the governance form opens");
    };
    assert_eq!(form.text("request_ttl"), "1w");
    assert_eq!(form.text("held_ttl"), "1h");
    assert_eq!(form.text("approval_classes"), "dangerous");
    form.focus = 1;
    for _ in 0..2 {
        press(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "1h30m");
    let Some(Overlay::Form(form)) = &mut app.overlay else {
        panic!("form");
    };
    form.focus = 3;
    typed(&mut app, ", delete");
    press(&mut app, KeyCode::Enter);
    let Command::UpdateSettings(sent) = one_command(&mut app) else {
        panic!("a settings update");
    };
    let governance = sent.governance.unwrap();
    assert_eq!(governance.held_call_ttl_secs, 5_400);
    assert_eq!(governance.access_request_ttl_secs, 604_800);
    assert_eq!(
        governance.call_approval.unwrap().classifications,
        [
            v1::ClassificationTag::Dangerous as i32,
            v1::ClassificationTag::Delete as i32
        ]
    );
    assert!(
        !governance.show_requestable_tools,
        "the toggle shown at once is kept"
    );
}

#[test]
fn the_profile_form_sets_how_it_is_obtained_and_the_longest_grant() {
    let mut app = app();
    app.update(key('4'));
    app.update(key('n'));
    typed(&mut app, "Support");
    let Some(Overlay::Form(form)) = &mut app.overlay else {
        panic!("form");
    };
    form.focus = 2;
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Tab);
    typed(&mut app, "8h");
    press(&mut app, KeyCode::Enter);
    let Command::CreateProfile(sent) = one_command(&mut app) else {
        panic!("a create");
    };
    assert_eq!(sent.name, "Support");
    assert_eq!(sent.obtain, v1::ProfileObtain::RequestWithApproval as i32);
    assert_eq!(sent.max_request_duration_secs, Some(28_800));
    press(&mut app, KeyCode::Esc);
    // Editing a requestable profile back to no end clears the maximum.
    app.update(key('e'));
    let Some(Overlay::Form(form)) = &mut app.overlay else {
        panic!("form");
    };
    assert_eq!(form.choice("obtain"), "approval");
    assert_eq!(form.text("max_duration"), "1w");
    form.focus = 3;
    for _ in 0..2 {
        press(&mut app, KeyCode::Backspace);
    }
    press(&mut app, KeyCode::Enter);
    let Command::UpdateProfile(sent) = one_command(&mut app) else {
        panic!("an update");
    };
    assert_eq!(sent.id, "p1");
    assert_eq!(sent.max_request_duration_secs, None);
    assert!(sent.clear_max_request_duration);
}

#[test]
fn a_daemon_without_the_new_services_says_so_on_their_screens_only() {
    let mut app = App::new("http://127.0.0.1:50051", Rect::new(0, 0, 80, 24));
    for request in app.take_requests() {
        if matches!(request.command, Command::LoadHooks) {
            app.update(Action::Reply(Box::new(Reply {
                id: request.id,
                last: true,
                result: Err(crate::client::ApiError {
                    code: tonic::Code::Unimplemented,
                    message: "Operation is not implemented or not supported".into(),
                }),
            })));
        }
    }
    assert!(app.status.is_none(), "{:?}", app.status);
    assert!(matches!(app.hooks, Loadable::Failed(_)));
}

#[test]
fn a_tick_refreshes_the_approval_queues_once_at_a_time() {
    let mut app = app();
    app.update(Action::Tick);
    let loads: Vec<bool> = app
        .take_requests()
        .iter()
        .map(|r| {
            matches!(
                r.command,
                Command::LoadAccessRequests { all: false } | Command::LoadHeldCalls { all: false }
            )
        })
        .collect();
    assert_eq!(loads, [true, true]);
    // Still in flight: the next tick asks for nothing more.
    app.update(Action::Tick);
    assert!(app.take_requests().is_empty());
}
