//! Unit tests of the update step for the status line, the servers screen's
//! confirmations and registration form, and the detail pane's scrolling.

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

fn server(id: &str, name: &str, prefix: &str, disabled: bool) -> v1::Server {
    v1::Server {
        id: id.into(),
        name: name.into(),
        tool_prefix: prefix.into(),
        disabled,
        ..Default::default()
    }
}

/// A console whose loads are answered: these servers, nothing else.
fn app_with(servers: &[v1::Server]) -> App {
    let mut app = App::new("http://127.0.0.1:50051", Rect::new(0, 0, 80, 24));
    for request in app.take_requests() {
        let result = match request.command {
            Command::LoadSettings => Data::Settings(v1::Settings {
                mcp_traffic_enabled: true,
                ..Default::default()
            }),
            Command::LoadCatalog => Data::Catalog(vec![]),
            Command::LoadServers => Data::Servers(servers.to_vec()),
            Command::LoadToolsets => Data::Toolsets(vec![]),
            Command::LoadProfiles => Data::Profiles(vec![]),
            Command::LoadUsers => Data::Users(vec![]),
            Command::LoadClients { .. } => Data::Clients(vec![]),
            Command::LoadAccessRequests { .. } => Data::AccessRequests {
                requests: vec![],
                pending: 0,
            },
            Command::LoadHeldCalls { .. } => Data::HeldCalls {
                calls: vec![],
                pending: 0,
            },
            Command::LoadHooks => Data::Hooks(vec![]),
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

#[test]
fn a_status_message_goes_when_the_screen_changes() {
    let mut app = app_with(&[]);
    app.info("no tool selected");
    app.update(key('2'));
    assert!(app.status.is_some(), "same screen: the message stays");
    app.update(key('5'));
    assert_eq!(app.status, None);
    app.error("could not save");
    app.update(Action::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
    assert_eq!(app.screen, Screen::Audit);
    assert_eq!(app.status, None);
}

#[test]
fn enabling_a_server_asks_first_as_disabling_does() {
    let mut app = app_with(&[server("s1", "Sandbox", "sandbox", true)]);
    app.update(key('1'));
    app.take_requests();
    app.update(key('t'));
    assert!(app.take_requests().is_empty(), "nothing is sent before y");
    let Some(Overlay::Confirm(confirm)) = &app.overlay else {
        panic!("expected a confirmation, got {:?}", app.overlay);
    };
    assert_eq!(confirm.title, "Enable Sandbox");
    assert!(
        confirm.lines[0].contains("0 approved tools can be listed and called again"),
        "{:?}",
        confirm.lines
    );
    app.update(key('y'));
    let requests = app.take_requests();
    assert!(
        matches!(
            &requests[..],
            [Request { command: Command::UpdateServer(r), .. }]
                if r.id == "s1" && r.disabled == Some(false)
        ),
        "{requests:?}"
    );
}

#[test]
fn free_names_and_prefixes_skip_taken_ones() {
    let none: [v1::Server; 0] = [];
    assert_eq!(
        free_name_and_prefix(&none, "Salesforce", "salesforce"),
        ("Salesforce".to_owned(), "salesforce".to_owned())
    );
    let taken = [
        server("a", "salesforce", "sf", false),
        server("b", "Other", "salesforce2", false),
    ];
    // The name clashes ignoring case, then the prefix: number 3 is free.
    assert_eq!(
        free_name_and_prefix(&taken, "Salesforce", "salesforce"),
        ("Salesforce 3".to_owned(), "salesforce3".to_owned())
    );
    // A prefix stays within 32 characters (gateway `validate::tool_prefix`).
    let long = "a".repeat(32);
    let full = [server("a", "Salesforce", &long, false)];
    let (_, prefix) = free_name_and_prefix(&full, "Salesforce", &long);
    assert_eq!(prefix, format!("{}2", "a".repeat(31)));
}

#[test]
fn the_register_form_prefills_a_free_name_and_prefix_or_nothing() {
    let mut app = app_with(&[server("s1", "Salesforce", "salesforce", false)]);
    app.update(key('1'));
    app.update(key('n'));
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("expected the register form, got {:?}", app.overlay);
    };
    assert_eq!(form.text("name"), "Salesforce 2");
    assert_eq!(form.text("tool_prefix"), "salesforce2");
    // While the servers are unknown, nothing is guessed.
    let mut loading = App::new("http://127.0.0.1:50051", Rect::new(0, 0, 80, 24));
    loading.update(key('1'));
    loading.update(key('n'));
    let Some(Overlay::Form(form)) = &loading.overlay else {
        panic!("expected the register form, got {:?}", loading.overlay);
    };
    assert_eq!(
        (form.text("name"), form.text("tool_prefix")),
        (String::new(), String::new())
    );
}

#[test]
fn the_detail_pane_scrolls_within_what_the_last_draw_measured() {
    let mut app = app_with(&[]);
    app.detail_max.set(2);
    app.update(key('J'));
    app.update(key('J'));
    app.update(key('J'));
    assert_eq!(app.detail_scroll, 2, "stops at the end");
    app.update(key('K'));
    assert_eq!(app.detail_scroll, 1);
    // A new screen starts at the top.
    app.update(key('3'));
    assert_eq!(app.detail_scroll, 0);
}

fn ai_client(id: &str, name: &str, state: v1::ClientState, on: bool) -> v1::AiClient {
    v1::AiClient {
        id: id.into(),
        name: name.into(),
        owner_email: "ana@example.com".into(),
        client_type: v1::ClientType::Personal.into(),
        state: state.into(),
        traffic_enabled: on,
        revision: 4,
        ..Default::default()
    }
}

/// Answers the AI client load(s) queued with `clients`; returns whether
/// the load asked for hidden and deleted clients too.
fn answer_clients(app: &mut App, clients: &[v1::AiClient]) -> Option<bool> {
    let mut all = None;
    for request in app.take_requests() {
        if let Command::LoadClients { all: a } = request.command {
            all = Some(a);
            app.update(Action::Reply(Box::new(Reply {
                id: request.id,
                last: true,
                result: Ok(Data::Clients(clients.to_vec())),
            })));
        }
    }
    all
}

#[test]
fn the_ai_clients_screen_changes_type_state_and_kill_switch_and_revokes_after_asking() {
    let mut app = app_with(&[]);
    app.update(key('8'));
    assert_eq!(app.screen, Screen::Clients);
    app.update(key('r'));
    assert_eq!(
        answer_clients(
            &mut app,
            &[
                ai_client("c1", "Claude Desktop", v1::ClientState::Active, true),
                ai_client("c2", "old ci", v1::ClientState::Deleted, false),
            ]
        ),
        Some(false)
    );
    app.take_requests();

    // t: the next type, at the revision read.
    app.update(key('t'));
    let sent = app.take_requests();
    let [
        Request {
            command: Command::UpdateClient(update),
            ..
        },
    ] = &sent[..]
    else {
        panic!("{sent:?}");
    };
    assert_eq!(update.id, "c1");
    assert_eq!(update.client_type, Some(v1::ClientType::Shared.into()));
    assert_eq!(update.expected_revision, Some(4));

    // Space: turning tool calls off asks first.
    app.update(key(' '));
    assert!(app.take_requests().is_empty());
    assert!(matches!(&app.overlay, Some(Overlay::Confirm(c)) if c.title.contains("off")));
    app.update(key('y'));
    let sent = app.take_requests();
    let [
        Request {
            command: Command::UpdateClient(update),
            ..
        },
    ] = &sent[..]
    else {
        panic!("{sent:?}");
    };
    assert_eq!(update.traffic_enabled, Some(false));

    // x: revoke after y; n cancels.
    app.update(key('x'));
    app.update(key('n'));
    assert!(app.take_requests().is_empty());
    app.update(key('x'));
    app.update(key('y'));
    let sent = app.take_requests();
    let [
        Request {
            command: Command::RevokeClient(revoke),
            ..
        },
    ] = &sent[..]
    else {
        panic!("{sent:?}");
    };
    assert_eq!((revoke.id.as_str(), revoke.state), ("c1", None));

    // A deleted client cannot change.
    app.update(key('j'));
    app.update(key('s'));
    assert!(app.take_requests().is_empty());
    assert!(app.status.as_ref().unwrap().text.contains("deleted"));

    // h lists hidden and deleted clients too.
    app.update(key('h'));
    assert_eq!(answer_clients(&mut app, &[]), Some(true));
}

#[test]
fn the_identity_provider_form_sends_the_masked_secret_and_never_shows_it() {
    let mut app = app_with(&[]);
    app.update(key('7'));
    for _ in 0..5 {
        app.update(key('j'));
    }
    app.update(key(' '));
    assert!(matches!(&app.overlay, Some(Overlay::Form(f)) if f.kind == FormKind::IdentityProvider));
    for c in "https://login.acme.example".chars() {
        app.update(key(c));
    }
    app.update(Action::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
    for c in "toolgate".chars() {
        app.update(key(c));
    }
    app.update(Action::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
    for c in "s3cr3t-value".chars() {
        app.update(key(c));
    }
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    let sent = app.take_requests();
    let [
        Request {
            command: Command::UpdateSettings(update),
            ..
        },
    ] = &sent[..]
    else {
        panic!("{sent:?}");
    };
    let provider = update.identity_provider.as_ref().unwrap();
    assert_eq!(provider.issuer_url, "https://login.acme.example");
    assert_eq!(provider.client_id, "toolgate");
    assert_eq!(provider.client_secret.as_deref(), Some("s3cr3t-value"));
    assert!(!format!("{sent:?}").contains("s3cr3t-value"));
}

#[test]
fn the_registration_form_refuses_an_unknown_type_in_the_form() {
    let mut app = app_with(&[]);
    app.update(key('7'));
    for _ in 0..6 {
        app.update(key('j'));
    }
    app.update(key(' '));
    for c in ", robots".chars() {
        app.update(key(c));
    }
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    assert!(app.take_requests().is_empty());
    let Some(Overlay::Form(form)) = &app.overlay else {
        panic!("the form stays open");
    };
    assert!(form.error.as_deref().unwrap().contains("\"robots\""));
}
