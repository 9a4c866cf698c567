//! The keymap, as data: which keys do what on which screen. The update step
//! looks keys up here, the footer and the `?` overlay are drawn from it, so
//! the three never disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::state::Screen;

/// What a key asks for. Screens interpret the ones they list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Intent {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    Search,
    Palette,
    Help,
    Quit,
    Reload,
    NextScreen,
    PrevScreen,
    New,
    Edit,
    Delete,
    Credentials,
    Rediscover,
    ToggleDisabled,
    Approve,
    Disable,
    Pending,
    Mark,
    MarkAll,
    Classify,
    Filter,
    ToggleView,
    Members,
    Bind,
    Grant,
    Revoke,
    IssueToken,
    IssueSignInLink,
    RevokeToken,
    Disconnect,
    Toggle,
    Copy,
    Follow,
    DetailDown,
    DetailUp,
    ClientType,
    ClientState,
    Deny,
    DryRun,
}

/// One binding: the keys (any of them), a label for the footer and help,
/// and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The keys, without modifiers except where `ctrl` is set.
    pub keys: &'static [KeyCode],
    /// Whether Ctrl must be held.
    pub ctrl: bool,
    /// How the key is written in the footer and help, e.g. `j/↓`.
    pub label: &'static str,
    /// What it does, in a few words.
    pub help: &'static str,
    /// The intent.
    pub intent: Intent,
    /// Whether the footer shows it (the help overlay shows all).
    pub footer: bool,
}

const fn b(
    keys: &'static [KeyCode],
    label: &'static str,
    help: &'static str,
    intent: Intent,
    footer: bool,
) -> Binding {
    Binding {
        keys,
        ctrl: false,
        label,
        help,
        intent,
        footer,
    }
}

use KeyCode::{Char, Down, End, Enter, Esc, Home, PageDown, PageUp, Up};

/// Keys that work on every screen (when no form or overlay has focus).
pub const GLOBAL: &[Binding] = &[
    b(&[Char('j'), Down], "j/↓", "next row", Intent::Down, false),
    b(&[Char('k'), Up], "k/↑", "previous row", Intent::Up, false),
    b(&[PageDown], "PgDn", "next page", Intent::PageDown, false),
    b(&[PageUp], "PgUp", "previous page", Intent::PageUp, false),
    b(
        &[Char('g'), Home],
        "g/Home",
        "first row",
        Intent::Top,
        false,
    ),
    b(
        &[Char('G'), End],
        "G/End",
        "last row",
        Intent::Bottom,
        false,
    ),
    b(&[Enter], "Enter", "open", Intent::Open, false),
    b(
        &[Char('J')],
        "J",
        "scroll the detail down",
        Intent::DetailDown,
        false,
    ),
    b(
        &[Char('K')],
        "K",
        "scroll the detail up",
        Intent::DetailUp,
        false,
    ),
    b(&[Esc], "Esc", "back / close / clear", Intent::Back, false),
    b(&[Char('/')], "/", "filter by text", Intent::Search, false),
    b(
        &[Char(':')],
        ":",
        "go to screen by name",
        Intent::Palette,
        true,
    ),
    b(
        &[KeyCode::Tab],
        "Tab",
        "next screen",
        Intent::NextScreen,
        false,
    ),
    b(
        &[KeyCode::BackTab],
        "S-Tab",
        "previous screen",
        Intent::PrevScreen,
        false,
    ),
    b(&[Char('r')], "r", "reload (retry)", Intent::Reload, false),
    b(&[Char('?')], "?", "help", Intent::Help, true),
    b(&[Char('q')], "q", "quit", Intent::Quit, true),
];

const SERVERS: &[Binding] = &[
    b(&[Char('n')], "n", "register a server", Intent::New, true),
    b(&[Char('e')], "e", "edit server", Intent::Edit, true),
    b(
        &[Char('c')],
        "c",
        "consumer key/secret (rotate)",
        Intent::Credentials,
        true,
    ),
    b(
        &[Char('R')],
        "R",
        "rediscover tools",
        Intent::Rediscover,
        true,
    ),
    b(
        &[Char('t')],
        "t",
        "disable / enable",
        Intent::ToggleDisabled,
        true,
    ),
    b(&[Char('D')], "D", "delete server", Intent::Delete, true),
    b(&[Char('y')], "y", "copy callback URL", Intent::Copy, false),
];

const TOOLS: &[Binding] = &[
    b(
        &[Char('v')],
        "v",
        "review queue / all tools",
        Intent::ToggleView,
        true,
    ),
    b(&[Char(' ')], "Space", "mark / unmark", Intent::Mark, true),
    b(
        &[Char('*')],
        "*",
        "mark all shown / none",
        Intent::MarkAll,
        false,
    ),
    b(&[Char('a')], "a", "approve", Intent::Approve, true),
    b(&[Char('d')], "d", "disable", Intent::Disable, true),
    b(&[Char('p')], "p", "back to review", Intent::Pending, false),
    b(&[Char('c')], "c", "classification", Intent::Classify, true),
    b(&[Char('f')], "f", "filters", Intent::Filter, true),
];

const TOOLSETS: &[Binding] = &[
    b(&[Char('n')], "n", "new toolset", Intent::New, true),
    b(
        &[Char('e')],
        "e",
        "edit name/description",
        Intent::Edit,
        true,
    ),
    b(
        &[Char('m')],
        "m",
        "choose member tools",
        Intent::Members,
        true,
    ),
    b(&[Char('D')], "D", "delete toolset", Intent::Delete, true),
];

const PROFILES: &[Binding] = &[
    b(&[Char('n')], "n", "new access profile", Intent::New, true),
    b(
        &[Char('e')],
        "e",
        "edit name/description",
        Intent::Edit,
        true,
    ),
    b(&[Char('b')], "b", "bind toolsets", Intent::Bind, true),
    b(&[Char('u')], "u", "grant a user", Intent::Grant, true),
    b(&[Char('x')], "x", "revoke a grant", Intent::Revoke, true),
    b(&[Char('D')], "D", "delete profile", Intent::Delete, true),
];

const USERS: &[Binding] = &[
    b(&[Char('n')], "n", "new user", Intent::New, true),
    b(
        &[Char('i')],
        "i",
        "issue MCP token",
        Intent::IssueToken,
        true,
    ),
    b(
        &[Char('x')],
        "x",
        "revoke a token",
        Intent::RevokeToken,
        true,
    ),
    b(&[Char('u')], "u", "grant a profile", Intent::Grant, true),
    b(
        &[Char('c')],
        "c",
        "delete a Salesforce connection",
        Intent::Disconnect,
        false,
    ),
    b(
        &[Char('t')],
        "t",
        "disable / enable",
        Intent::ToggleDisabled,
        true,
    ),
    b(
        &[Char('l')],
        "l",
        "one-time sign-in link",
        Intent::IssueSignInLink,
        true,
    ),
];

const AUDIT: &[Binding] = &[
    b(&[Char('f')], "f", "filters", Intent::Filter, true),
    b(&[Char('F')], "F", "follow newest", Intent::Follow, true),
];

const CLIENTS: &[Binding] = &[
    b(&[Char('t')], "t", "change type", Intent::ClientType, true),
    b(&[Char('s')], "s", "change state", Intent::ClientState, true),
    b(
        &[Char(' ')],
        "Space",
        "kill switch on / off",
        Intent::Toggle,
        true,
    ),
    b(&[Char('x')], "x", "revoke and close", Intent::Revoke, true),
    b(&[Char('D')], "D", "delete for good", Intent::Delete, false),
    b(
        &[Char('h')],
        "h",
        "show hidden and deleted",
        Intent::ToggleView,
        true,
    ),
];

const REQUESTS: &[Binding] = &[
    b(
        &[Char('a')],
        "a",
        "approve (shorter time optional)",
        Intent::Approve,
        true,
    ),
    b(&[Char('d')], "d", "deny with a reason", Intent::Deny, true),
    b(
        &[Char('v')],
        "v",
        "pending / all requests",
        Intent::ToggleView,
        true,
    ),
];

const HELD_CALLS: &[Binding] = &[
    b(
        &[Char('a')],
        "a",
        "approve this call",
        Intent::Approve,
        true,
    ),
    b(&[Char('d')], "d", "deny with a reason", Intent::Deny, true),
    b(
        &[Char('v')],
        "v",
        "pending / all held calls",
        Intent::ToggleView,
        true,
    ),
];

const HOOKS: &[Binding] = &[
    b(&[Char('n')], "n", "new hook", Intent::New, true),
    b(&[Char('e')], "e", "edit hook", Intent::Edit, true),
    b(
        &[Char(' ')],
        "Space",
        "enable / disable",
        Intent::Toggle,
        true,
    ),
    b(
        &[Char('t')],
        "t",
        "dry run on a sample call",
        Intent::DryRun,
        true,
    ),
    b(&[Char('D')], "D", "delete hook", Intent::Delete, true),
];

const SETTINGS: &[Binding] = &[
    b(
        &[Char(' ')],
        "Space",
        "change setting / edit",
        Intent::Toggle,
        true,
    ),
    b(
        &[Char('D')],
        "D",
        "remove identity provider",
        Intent::Delete,
        false,
    ),
];

/// The bindings of one screen (without the global ones).
pub fn screen(screen: Screen) -> &'static [Binding] {
    match screen {
        Screen::Servers => SERVERS,
        Screen::Tools => TOOLS,
        Screen::Toolsets => TOOLSETS,
        Screen::Profiles => PROFILES,
        Screen::Users => USERS,
        Screen::Audit => AUDIT,
        Screen::Settings => SETTINGS,
        Screen::Clients => CLIENTS,
        Screen::Requests => REQUESTS,
        Screen::HeldCalls => HELD_CALLS,
        Screen::Hooks => HOOKS,
    }
}

fn matches(binding: &Binding, key: &KeyEvent) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    ctrl == binding.ctrl && !alt && binding.keys.contains(&key.code)
}

/// What `key` means on `screen`: the screen's bindings first, then the
/// global ones.
pub fn lookup(on: Screen, key: &KeyEvent) -> Option<Intent> {
    screen(on)
        .iter()
        .chain(GLOBAL)
        .find(|binding| matches(binding, key))
        .map(|binding| binding.intent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_means_two_things_on_one_screen() {
        for on in Screen::ALL {
            let bindings: Vec<&Binding> = screen(on).iter().chain(GLOBAL).collect();
            for (i, a) in bindings.iter().enumerate() {
                for b in &bindings[i + 1..] {
                    for key in a.keys {
                        assert!(
                            !(b.keys.contains(key) && a.ctrl == b.ctrl),
                            "{on:?}: {key:?} is bound to both {:?} and {:?}",
                            a.intent,
                            b.intent
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn screen_keys_win_and_globals_apply() {
        let key = |c| KeyEvent::new(Char(c), KeyModifiers::NONE);
        assert_eq!(lookup(Screen::Tools, &key('a')), Some(Intent::Approve));
        assert_eq!(lookup(Screen::Servers, &key('a')), None);
        assert_eq!(lookup(Screen::Users, &key('j')), Some(Intent::Down));
        let shifted = KeyEvent::new(Char('D'), KeyModifiers::SHIFT);
        assert_eq!(lookup(Screen::Servers, &shifted), Some(Intent::Delete));
        let ctrl_a = KeyEvent::new(Char('a'), KeyModifiers::CONTROL);
        assert_eq!(lookup(Screen::Tools, &ctrl_a), None);
    }
}
