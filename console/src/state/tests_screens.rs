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
