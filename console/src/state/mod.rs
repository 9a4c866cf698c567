//! The console's model and its update step: [`App`] holds everything the
//! screens show; [`App::update`] takes one [`Action`] and changes the model,
//! queueing [`Request`]s for the worker and [`Effect`]s for the terminal.
//! Nothing here does IO, so tests drive it directly.
//!
//! Per-screen state and key handling live in the submodules; this file holds
//! what they share (screens, loading states, cursors, overlays, reply
//! routing).

mod approvals;
mod audit;
mod chrome;
mod clients;
mod form;
mod governance;
mod hooks;
mod impact;
mod picker;
mod reply;
mod servers;
mod settings;
mod submit;
mod tools;
mod users;

use std::cell::Cell;
use std::collections::HashMap;

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;
use zeroize::Zeroizing;

pub use approvals::{
    describe_duration, held_call_state_name, parse_duration, pretty_json, request_state_name,
};
pub use audit::{ACTION_EXAMPLES, AUDIT_KEEP, AuditState, TARGET_EXAMPLE, Tail, outcome_name};
pub use chrome::StatusKind;
pub use clients::{client_state_name, client_type_name};
pub use form::{Field, FieldKind, Form, FormInput, FormKind};
pub use governance::{obtain_name, toolset_kind};
pub use hooks::{
    HookKindName, describe_config, hook_kind, outcome_name as hook_outcome_name, phase_name,
};
pub use impact::{AccessPreview, describe as describe_access, preview_request};
pub use picker::{PickItem, Picker, PickerKind};
pub use servers::{describe_login_host, free_name_and_prefix};
pub use settings::rows as settings_rows;
pub use submit::parse_expiry;
pub use tools::{ToolFilter, ToolsState, ToolsView, action_name, state_name};
pub use users::is_active;

use crate::action::{Action, Command, Effect, IssuedLink, IssuedToken, Request, Scope, UserDetail};
use crate::keymap::{self, Intent};
use crate::layout::{self, Areas};
use toolgate_proto::v1;

/// The console's screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Screen {
    Servers,
    Tools,
    Toolsets,
    Profiles,
    Users,
    Audit,
    Settings,
    Clients,
    Requests,
    HeldCalls,
    Hooks,
}

impl Screen {
    /// Every screen, in tab order.
    pub const ALL: [Screen; 11] = [
        Screen::Servers,
        Screen::Tools,
        Screen::Toolsets,
        Screen::Profiles,
        Screen::Users,
        Screen::Audit,
        Screen::Settings,
        Screen::Clients,
        Screen::Requests,
        Screen::HeldCalls,
        Screen::Hooks,
    ];

    /// The digit that jumps to the screen (`1`-`9`, then `0`); None for
    /// the screens after the tenth (reached with Tab or `:`).
    pub fn digit(self) -> Option<char> {
        match self.index() {
            i @ 0..=8 => char::from_digit(i as u32 + 1, 10),
            9 => Some('0'),
            _ => None,
        }
    }

    /// The screen a digit key jumps to.
    pub fn by_digit(c: char) -> Option<Screen> {
        Screen::ALL.into_iter().find(|s| s.digit() == Some(c))
    }

    /// The name `:` jumps by, lowercase.
    pub fn name(self) -> &'static str {
        match self {
            Screen::Servers => "servers",
            Screen::Tools => "tools",
            Screen::Toolsets => "toolsets",
            Screen::Profiles => "profiles",
            Screen::Users => "users",
            Screen::Audit => "audit",
            Screen::Settings => "settings",
            Screen::Clients => "clients",
            Screen::Requests => "requests",
            Screen::HeldCalls => "held",
            Screen::Hooks => "hooks",
        }
    }

    /// The tab title.
    pub fn title(self) -> &'static str {
        match self {
            Screen::Servers => "Servers",
            Screen::Tools => "Tools",
            Screen::Toolsets => "Toolsets",
            Screen::Profiles => "Profiles",
            Screen::Users => "Users",
            Screen::Audit => "Audit",
            Screen::Settings => "Settings",
            Screen::Clients => "AI clients",
            Screen::Requests => "Requests",
            Screen::HeldCalls => "Held calls",
            Screen::Hooks => "Hooks",
        }
    }

    fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }

    /// The screen whose name starts with `prefix` (case-insensitive), the
    /// first in tab order when several do; aliases: `queue`, `review`,
    /// `profile`, `log`.
    pub fn by_name(prefix: &str) -> Option<Screen> {
        let p = prefix.trim().to_lowercase();
        if p.is_empty() {
            return None;
        }
        match p.as_str() {
            "queue" | "review" => return Some(Screen::Tools),
            "access" | "access-profiles" => return Some(Screen::Profiles),
            "log" | "events" => return Some(Screen::Audit),
            "ai" | "ai-clients" | "sign-ins" => return Some(Screen::Clients),
            "access-requests" | "jit" => return Some(Screen::Requests),
            "held-calls" | "calls" | "approvals" => return Some(Screen::HeldCalls),
            _ => {}
        }
        Screen::ALL.into_iter().find(|s| s.name().starts_with(&p))
    }
}

/// The names `:` knows, as shown under the prompt.
pub const PALETTE_NAMES: [&str; 12] = [
    "servers", "queue", "tools", "toolsets", "profiles", "users", "audit", "settings", "clients",
    "requests", "held", "hooks",
];

/// Data that arrives from the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Loadable<T> {
    /// Requested, not arrived yet.
    Loading,
    /// Arrived.
    Ready(T),
    /// The request failed (the message says why).
    Failed(String),
}

impl<T> Loadable<T> {
    /// The data, when ready.
    pub fn ready(&self) -> Option<&T> {
        match self {
            Loadable::Ready(t) => Some(t),
            _ => None,
        }
    }
}

/// Selection and scroll position of a list.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Index of the selected row among the shown rows.
    pub selected: usize,
    /// Index of the first visible row.
    pub offset: usize,
}

impl Cursor {
    /// Moves for a navigation intent over `len` rows with `rows` visible.
    /// Returns false for intents that are not navigation.
    pub fn navigate(&mut self, intent: Intent, len: usize, rows: usize) -> bool {
        let last = len.saturating_sub(1);
        self.selected = match intent {
            Intent::Up => self.selected.saturating_sub(1),
            Intent::Down => (self.selected + 1).min(last),
            Intent::PageUp => self.selected.saturating_sub(rows),
            Intent::PageDown => (self.selected + rows).min(last),
            Intent::Top => 0,
            Intent::Bottom => last,
            _ => return false,
        };
        self.clamp(len, rows);
        true
    }

    /// Keeps the selection inside `len` rows and visible in `rows`.
    pub fn clamp(&mut self, len: usize, rows: usize) {
        let rows = rows.max(1);
        self.selected = self.selected.min(len.saturating_sub(1));
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + rows {
            self.offset = self.selected + 1 - rows;
        }
        self.offset = self.offset.min(len.saturating_sub(rows));
    }
}

/// The daemon connection as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// No answer yet.
    Connecting,
    /// The last call reached the daemon.
    Up,
    /// The last call could not reach the daemon (retried every
    /// [`crate::action::RETRY_EVERY`]).
    Down(String),
    /// The daemon refused the admin token (not retried: restart the
    /// console with the right token).
    Refused(String),
}

/// The status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The message.
    pub text: String,
    /// Whether it reports a failure.
    pub error: bool,
}

/// A destructive or bulk action waiting for `y`.
#[derive(Debug)]
pub struct Confirm {
    /// Box title.
    pub title: String,
    /// What will happen, line by line.
    pub lines: Vec<String>,
    /// What runs on `y`.
    pub command: Command,
}

/// An overlay drawn over the screen; it takes the keys while open.
#[derive(Debug)]
pub enum Overlay {
    /// The keymap; the number is the scroll offset.
    Help(usize),
    /// `:` — jump to a screen by name.
    Palette(Input),
    /// A form.
    Form(Form),
    /// A confirmation.
    Confirm(Confirm),
    /// A list to choose from (members, bindings, a grant to revoke ...).
    Picker(Picker),
    /// A just-issued MCP token, shown once.
    Token(IssuedToken),
    /// A just-issued one-time sign-in link, shown once.
    SignInLink(IssuedLink),
}

/// What a request in flight is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    Load(Load),
    Tools,
    /// The full definition of the tool with this id.
    Tool(String),
    /// The detail of the user with this id.
    UserDetail(String),
    Tail,
    Form,
    Change,
    /// The access preview of the open confirmation.
    Preview,
    /// The held call with this id, with its arguments.
    HeldCall(String),
}

/// The lists that load with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Load {
    Settings,
    Catalog,
    Servers,
    Toolsets,
    Profiles,
    Users,
    Clients,
    AccessRequests,
    HeldCalls,
    Hooks,
}

/// The whole console model.
#[derive(Debug)]
pub struct App {
    /// The daemon address, for messages.
    pub addr: String,
    /// The screen shown.
    pub screen: Screen,
    /// The terminal size.
    pub size: Rect,
    /// Whether the detail pane fills the body.
    pub zoomed: bool,
    /// How many rows the detail pane is scrolled down (`J`/`K`); back to
    /// the top when the selection or the screen changes.
    pub detail_scroll: usize,
    /// How far the detail pane can scroll, as measured by the last draw
    /// (like ratatui's stateful widgets, the view records what it laid
    /// out; nothing else writes it).
    pub detail_max: Cell<usize>,
    /// The daemon connection.
    pub link: Link,
    /// The status line.
    pub status: Option<Status>,
    /// The open overlay.
    pub overlay: Option<Overlay>,
    /// Who would gain or lose access by the open confirmation's change
    /// (None when its change does not touch access).
    pub preview: Option<AccessPreview>,
    /// Text filter per screen (`/`), and whether it is being typed.
    pub search: HashMap<Screen, String>,
    /// The filter being typed, when `/` is active.
    pub searching: Option<Input>,
    /// Gateway settings.
    pub settings: Loadable<v1::Settings>,
    /// Row on the settings screen.
    pub settings_cursor: Cursor,
    /// The catalog (for registration).
    pub catalog: Loadable<Vec<v1::CatalogEntry>>,
    /// Registered servers.
    pub servers: Loadable<Vec<v1::Server>>,
    /// Row on the servers screen.
    pub servers_cursor: Cursor,
    /// The tools screen.
    pub tools: ToolsState,
    /// Toolsets.
    pub toolsets: Loadable<Vec<v1::Toolset>>,
    /// Row on the toolsets screen.
    pub toolsets_cursor: Cursor,
    /// Access profiles.
    pub profiles: Loadable<Vec<v1::AccessProfile>>,
    /// Row on the profiles screen.
    pub profiles_cursor: Cursor,
    /// Users.
    pub users: Loadable<Vec<v1::User>>,
    /// Row on the users screen.
    pub users_cursor: Cursor,
    /// The selected user's tokens, connections and tools.
    pub user_detail: Option<(String, Loadable<UserDetail>)>,
    /// AI clients (ACTIVE and CLOSED; all of them with `clients_all`).
    pub clients: Loadable<Vec<v1::AiClient>>,
    /// Row on the AI clients screen.
    pub clients_cursor: Cursor,
    /// Whether the AI clients screen also lists HIDDEN and DELETED ones.
    pub clients_all: bool,
    /// Access requests (pending ones; all with `requests_all`).
    pub access_requests: Loadable<Vec<v1::AccessRequest>>,
    /// How many access requests are pending in all (the tab count).
    pub requests_pending: Option<u32>,
    /// Row on the requests screen.
    pub requests_cursor: Cursor,
    /// Whether the requests screen also lists decided requests.
    pub requests_all: bool,
    /// Held calls (pending ones; all with `held_all`), without arguments.
    pub held: Loadable<Vec<v1::HeldCall>>,
    /// How many held calls are pending in all (the tab count).
    pub held_pending: Option<u32>,
    /// Row on the held calls screen.
    pub held_cursor: Cursor,
    /// Whether the held calls screen also lists decided calls.
    pub held_all: bool,
    /// The selected held call with its arguments (GetHeldCall).
    pub held_detail: Option<(String, Loadable<v1::HeldCall>)>,
    /// Hooks, in run order.
    pub hooks: Loadable<Vec<v1::Hook>>,
    /// Row on the hooks screen.
    pub hooks_cursor: Cursor,
    /// The last dry run's answer (shown in the hooks detail pane).
    pub hook_test: Option<Loadable<v1::TestHookResponse>>,
    /// The audit screen.
    pub audit: AuditState,
    /// The time now (the ages on the approval queues); tests fix it.
    pub clock: fn() -> chrono::DateTime<chrono::Utc>,
    /// Set when the console should exit.
    pub quit: bool,
    /// A just-created item to select once its list reloads: (screen,
    /// name or email).
    select_after: Option<(Screen, String)>,
    next_id: u64,
    pending: HashMap<u64, Purpose>,
    latest: HashMap<Load, u64>,
    requests: Vec<Request>,
    effects: Vec<Effect>,
}

impl App {
    /// A fresh model for a daemon at `addr` and a terminal of `size`; it
    /// queues the first loads (take them with [`App::take_requests`]).
    pub fn new(addr: &str, size: Rect) -> Self {
        let mut app = Self {
            addr: addr.to_owned(),
            screen: Screen::Tools,
            size,
            zoomed: false,
            detail_scroll: 0,
            detail_max: Cell::new(0),
            link: Link::Connecting,
            status: None,
            overlay: None,
            preview: None,
            search: HashMap::new(),
            searching: None,
            settings: Loadable::Loading,
            settings_cursor: Cursor::default(),
            catalog: Loadable::Loading,
            servers: Loadable::Loading,
            servers_cursor: Cursor::default(),
            tools: ToolsState::default(),
            toolsets: Loadable::Loading,
            toolsets_cursor: Cursor::default(),
            profiles: Loadable::Loading,
            profiles_cursor: Cursor::default(),
            users: Loadable::Loading,
            users_cursor: Cursor::default(),
            user_detail: None,
            clients: Loadable::Loading,
            clients_cursor: Cursor::default(),
            clients_all: false,
            access_requests: Loadable::Loading,
            requests_pending: None,
            requests_cursor: Cursor::default(),
            requests_all: false,
            held: Loadable::Loading,
            held_pending: None,
            held_cursor: Cursor::default(),
            held_all: false,
            held_detail: None,
            hooks: Loadable::Loading,
            hooks_cursor: Cursor::default(),
            hook_test: None,
            audit: AuditState::default(),
            clock: chrono::Utc::now,
            quit: false,
            select_after: None,
            next_id: 1,
            pending: HashMap::new(),
            latest: HashMap::new(),
            requests: Vec::new(),
            effects: Vec::new(),
        };
        app.reload_all();
        app
    }

    /// The requests queued since the last call, for the worker.
    pub fn take_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.requests)
    }

    /// The effects queued since the last call, for the terminal loop.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// How many requests are in flight, not counting the audit tail (which
    /// never finishes while it works).
    pub fn busy(&self) -> usize {
        self.pending
            .values()
            .filter(|p| **p != Purpose::Tail)
            .count()
    }

    /// The current geometry.
    pub fn areas(&self) -> Areas {
        let rows = match (&self.searching, self.status_line()) {
            (None, Some((text, _))) => {
                let width = usize::from(self.size.width.max(1));
                u16::try_from(text.chars().count().div_ceil(width)).unwrap_or(u16::MAX)
            }
            _ => 1,
        };
        layout::areas(self.size, self.zoomed, rows)
    }

    fn send(&mut self, command: Command, purpose: Purpose) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if let Purpose::Load(load) = purpose {
            self.latest.insert(load, id);
        }
        self.pending.insert(id, purpose);
        self.requests.push(Request { id, command });
        id
    }

    fn load(&mut self, load: Load) {
        let command = match load {
            Load::Settings => Command::LoadSettings,
            Load::Catalog => Command::LoadCatalog,
            Load::Servers => Command::LoadServers,
            Load::Toolsets => Command::LoadToolsets,
            Load::Profiles => Command::LoadProfiles,
            Load::Users => Command::LoadUsers,
            Load::Clients => Command::LoadClients {
                all: self.clients_all,
            },
            Load::AccessRequests => Command::LoadAccessRequests {
                all: self.requests_all,
            },
            Load::HeldCalls => Command::LoadHeldCalls { all: self.held_all },
            Load::Hooks => Command::LoadHooks,
        };
        self.send(command, Purpose::Load(load));
    }

    fn reload_all(&mut self) {
        for load in [
            Load::Settings,
            Load::Catalog,
            Load::Servers,
            Load::Toolsets,
            Load::Profiles,
            Load::Users,
            Load::Clients,
            Load::AccessRequests,
            Load::HeldCalls,
            Load::Hooks,
        ] {
            self.load(load);
        }
        self.load_tools();
        if let Some(user_id) = self.user_detail.as_ref().map(|(id, _)| id.clone()) {
            self.load_user_detail(&user_id);
        }
    }

    /// Reloads what a change made stale.
    fn reload(&mut self, scope: &Scope) {
        match scope {
            Scope::Settings => {
                self.load(Load::Settings);
                self.load(Load::Catalog);
                self.refresh_user_detail();
            }
            Scope::Servers => {
                self.load(Load::Servers);
                self.load_tools();
                self.load(Load::Toolsets);
                self.refresh_user_detail();
            }
            Scope::Tools => {
                self.load_tools();
                self.load(Load::Toolsets);
                self.refresh_user_detail();
            }
            Scope::Toolsets => {
                self.load(Load::Toolsets);
                self.load(Load::Profiles);
                self.refresh_user_detail();
            }
            Scope::Profiles => {
                self.load(Load::Profiles);
                self.refresh_user_detail();
            }
            Scope::Users => {
                self.load(Load::Users);
                self.load(Load::Clients);
                self.refresh_user_detail();
            }
            Scope::Clients => {
                self.load(Load::Clients);
                self.refresh_user_detail();
            }
            Scope::AccessRequests => {
                // An approval grants a profile.
                self.load(Load::AccessRequests);
                self.load(Load::Profiles);
                self.refresh_user_detail();
            }
            Scope::HeldCalls => {
                self.load(Load::HeldCalls);
                self.refresh_held_detail();
            }
            Scope::Hooks => self.load(Load::Hooks),
            Scope::User(id) => {
                let id = id.clone();
                self.load_user_detail(&id);
            }
        }
    }

    fn refresh_user_detail(&mut self) {
        if let Some(user_id) = self.user_detail.as_ref().map(|(id, _)| id.clone()) {
            self.load_user_detail(&user_id);
        }
    }

    fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    fn go(&mut self, screen: Screen) {
        if self.screen != screen {
            self.screen = screen;
            self.zoomed = false;
            self.detail_scroll = 0;
            // A message was about the screen it was said on.
            self.status = None;
        }
        if screen == Screen::Audit && self.audit.tail_id.is_none() {
            self.start_tail();
        }
        if screen == Screen::Users {
            self.select_user_detail();
        }
        if screen == Screen::HeldCalls {
            self.select_held_detail();
        }
    }

    /// Applies one action.
    pub fn update(&mut self, action: Action) {
        match action {
            Action::Key(key) if key.kind != KeyEventKind::Release => self.key(key),
            Action::Key(_) => {}
            Action::Mouse(mouse) => self.mouse(mouse),
            Action::Paste(text) => match &mut self.overlay {
                Some(Overlay::Form(form)) => form.paste(&text.0),
                Some(Overlay::Picker(picker)) => picker.paste(&text.0),
                _ => {}
            },
            Action::Resize(w, h) => {
                self.size = Rect::new(0, 0, w, h);
                self.clamp_cursors();
                if let Some(Overlay::Picker(picker)) = &mut self.overlay {
                    picker.rows = picker_rows(self.size);
                }
            }
            Action::Reply(reply) => self.reply(*reply),
            Action::Tick => {
                // Retry quietly while the daemon is unreachable; one round
                // at a time.
                if matches!(self.link, Link::Down(_)) && self.busy() == 0 {
                    self.reload_all();
                    if self.screen == Screen::Audit && self.audit.tail_id.is_none() {
                        self.start_tail();
                    }
                } else if self.link == Link::Up {
                    // The approval queues fill while the console is open:
                    // their lists (and the counts on their tabs) refresh,
                    // one load at a time.
                    for load in [Load::AccessRequests, Load::HeldCalls] {
                        if !self.pending.values().any(|p| *p == Purpose::Load(load)) {
                            self.load(load);
                        }
                    }
                }
            }
        }
    }

    fn key(&mut self, key: KeyEvent) {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if self.overlay.is_some() {
            self.overlay_key(key);
            return;
        }
        if let Some(input) = &mut self.searching {
            match key.code {
                KeyCode::Enter => self.searching = None,
                KeyCode::Esc => {
                    self.searching = None;
                    self.search.remove(&self.screen);
                }
                _ => {
                    input.handle_event(&Event::Key(key));
                    let text = input.value().to_owned();
                    self.search.insert(self.screen, text);
                }
            }
            self.search_changed();
            return;
        }
        let Some(intent) = keymap::lookup(self.screen, &key) else {
            if let KeyCode::Char(c) = key.code
                && let Some(screen) = Screen::by_digit(c)
            {
                self.go(screen);
            }
            return;
        };
        self.intent(intent);
    }

    fn intent(&mut self, intent: Intent) {
        match intent {
            Intent::Quit => self.quit = true,
            Intent::Help => self.overlay = Some(Overlay::Help(0)),
            Intent::Palette => self.overlay = Some(Overlay::Palette(Input::default())),
            Intent::Search => {
                let current = self.search.get(&self.screen).cloned().unwrap_or_default();
                self.searching = Some(Input::new(current));
            }
            Intent::NextScreen => {
                self.go(Screen::ALL[(self.screen.index() + 1) % Screen::ALL.len()]);
            }
            Intent::PrevScreen => {
                let n = Screen::ALL.len();
                self.go(Screen::ALL[(self.screen.index() + n - 1) % n]);
            }
            Intent::Reload => {
                self.status = None;
                self.reload_all();
                if self.screen == Screen::Audit {
                    self.start_tail();
                }
            }
            Intent::Back => {
                if self.zoomed {
                    self.zoomed = false;
                } else if self.search.remove(&self.screen).is_some() {
                    self.search_changed();
                } else if self.screen == Screen::Tools && !self.tools.marked.is_empty() {
                    self.tools.marked.clear();
                } else {
                    self.status = None;
                }
            }
            Intent::DetailDown => {
                let max = self.detail_max.get();
                self.detail_scroll = (self.detail_scroll + 1).min(max);
            }
            Intent::DetailUp => {
                let max = self.detail_max.get();
                self.detail_scroll = self.detail_scroll.min(max).saturating_sub(1);
            }
            Intent::Open => {
                self.zoomed = !self.zoomed;
                self.detail_scroll = 0;
                if self.zoomed && self.screen == Screen::Tools {
                    self.load_selected_tool();
                }
            }
            _ => {
                let rows = self.areas().list_rows();
                match self.screen {
                    Screen::Servers => self.servers_intent(intent, rows),
                    Screen::Tools => self.tools_intent(intent, rows),
                    Screen::Toolsets => self.toolsets_intent(intent, rows),
                    Screen::Profiles => self.profiles_intent(intent, rows),
                    Screen::Users => self.users_intent(intent, rows),
                    Screen::Audit => self.audit_intent(intent, rows),
                    Screen::Settings => self.settings_intent(intent),
                    Screen::Clients => self.clients_intent(intent, rows),
                    Screen::Requests => self.requests_intent(intent, rows),
                    Screen::HeldCalls => self.held_intent(intent, rows),
                    Screen::Hooks => self.hooks_intent(intent, rows),
                }
            }
        }
    }

    fn search_changed(&mut self) {
        match self.screen {
            Screen::Tools => self.tools_refilter(),
            Screen::Users => self.select_user_detail(),
            Screen::HeldCalls => self.select_held_detail(),
            _ => {}
        }
        self.clamp_cursors();
    }

    /// The text filter of `screen`, lowercased ("" when none).
    pub fn filter_text(&self, screen: Screen) -> String {
        self.search
            .get(&screen)
            .map(|s| s.trim().to_lowercase())
            .unwrap_or_default()
    }

    fn clamp_cursors(&mut self) {
        let rows = self.areas().list_rows();
        let n = self.servers_shown().len();
        self.servers_cursor.clamp(n, rows);
        let n = self.tools.shown.len();
        self.tools.cursor.clamp(n, rows);
        let n = self.toolsets_shown().len();
        self.toolsets_cursor.clamp(n, rows);
        let n = self.profiles_shown().len();
        self.profiles_cursor.clamp(n, rows);
        let n = self.users_shown().len();
        self.users_cursor.clamp(n, rows);
        let n = self.audit_shown().len();
        self.audit.cursor.clamp(n, rows);
        let n = self.clients_shown().len();
        self.clients_cursor.clamp(n, rows);
        let n = self.requests_shown().len();
        self.requests_cursor.clamp(n, rows);
        let n = self.held_shown().len();
        self.held_cursor.clamp(n, rows);
        let n = self.hooks_shown().len();
        self.hooks_cursor.clamp(n, rows);
    }

    fn overlay_key(&mut self, key: KeyEvent) {
        let Some(overlay) = self.overlay.take() else {
            return;
        };
        match overlay {
            Overlay::Help(scroll) => {
                let scroll = match key.code {
                    KeyCode::Char('j') | KeyCode::Down => scroll + 1,
                    KeyCode::Char('k') | KeyCode::Up => scroll.saturating_sub(1),
                    KeyCode::PageDown => scroll + 10,
                    KeyCode::PageUp => scroll.saturating_sub(10),
                    _ => return,
                };
                self.overlay = Some(Overlay::Help(scroll));
            }
            Overlay::Palette(mut input) => match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter => match Screen::by_name(input.value()) {
                    Some(screen) => {
                        self.go(screen);
                        // `:queue` opens the review queue, `:tools` every tool.
                        let name = input.value().trim().to_lowercase();
                        let view = if ["queue", "review"].contains(&name.as_str()) {
                            Some(ToolsView::Queue)
                        } else if screen == Screen::Tools && "tools".starts_with(&name) {
                            Some(ToolsView::All)
                        } else {
                            None
                        };
                        if let Some(view) = view.filter(|v| *v != self.tools.view) {
                            self.tools.view = view;
                            self.tools.cursor = Cursor::default();
                            self.tools_refilter();
                        }
                    }
                    None => self.error(format!(
                        "no screen named {:?} (try {})",
                        input.value(),
                        PALETTE_NAMES.join(", ")
                    )),
                },
                _ => {
                    input.handle_event(&Event::Key(key));
                    self.overlay = Some(Overlay::Palette(input));
                }
            },
            Overlay::Confirm(confirm) => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') if self.preview_pending() => {
                    self.info("checking who gains access; y works once it shows");
                    self.overlay = Some(Overlay::Confirm(confirm));
                }
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.preview = None;
                    self.info(format!("{}…", confirm.title));
                    self.send(confirm.command, Purpose::Change);
                }
                KeyCode::Char('n') | KeyCode::Esc => {
                    self.preview = None;
                    self.info("cancelled");
                }
                _ => self.overlay = Some(Overlay::Confirm(confirm)),
            },
            Overlay::Token(token) => match key.code {
                KeyCode::Char('y') => {
                    self.effects.push(Effect::Copy(claude_config_line(&token)));
                    self.info(COPIED);
                    self.overlay = Some(Overlay::Token(token));
                }
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {
                    // Dropping the token wipes it from memory.
                    self.info("token closed; it cannot be shown again");
                }
                _ => self.overlay = Some(Overlay::Token(token)),
            },
            Overlay::SignInLink(link) => match key.code {
                KeyCode::Char('y') => {
                    self.effects.push(Effect::Copy(link.url.clone()));
                    self.info(COPIED);
                    self.overlay = Some(Overlay::SignInLink(link));
                }
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {
                    self.info("sign-in link closed; issue a new one if it was not passed on");
                }
                _ => self.overlay = Some(Overlay::SignInLink(link)),
            },
            Overlay::Form(mut form) => match form.key(key) {
                FormInput::Cancel => {}
                FormInput::Handled => {
                    if key.code != KeyCode::Tab && key.code != KeyCode::BackTab {
                        // The admin is fixing something: the old error goes.
                        form.error = None;
                    }
                    self.form_changed(&mut form);
                    self.overlay = Some(Overlay::Form(form));
                }
                FormInput::Submit => {
                    if let Some(command) = self.submit(&mut form) {
                        form.error = None;
                        form.busy = Some(self.send(command, Purpose::Form));
                        self.overlay = Some(Overlay::Form(form));
                    } else if form.error.is_some() {
                        self.overlay = Some(Overlay::Form(form));
                    }
                }
            },
            Overlay::Picker(mut picker) => match picker.key(key) {
                picker::PickerInput::Handled => self.overlay = Some(Overlay::Picker(picker)),
                picker::PickerInput::Cancel => {}
                picker::PickerInput::Done => self.picked(picker),
            },
        }
    }

    /// Reacts to a value change inside a form (e.g. enabling the My Domain
    /// field when that login host is chosen).
    fn form_changed(&mut self, form: &mut Form) {
        if form.kind == FormKind::RegisterServer || matches!(form.kind, FormKind::EditServer { .. })
        {
            let my_domain = form.choice("login_host") == "my_domain";
            form.set_enabled("my_domain_url", my_domain);
        }
    }

    /// Turns a submitted form into a command, or sets its error and returns
    /// None. Filter forms apply at once and return None. A created item is
    /// selected once its list reloads.
    fn submit(&mut self, form: &mut Form) -> Option<Command> {
        let command = self.form_command(form)?;
        self.select_after = match &command {
            Command::RegisterServer { request, .. } => {
                Some((Screen::Servers, request.name.clone()))
            }
            Command::CreateToolset(r) => Some((Screen::Toolsets, r.name.clone())),
            Command::CreateProfile(r) => Some((Screen::Profiles, r.name.clone())),
            Command::CreateUser(r) => Some((Screen::Users, r.email.clone())),
            Command::CreateHook { hook, .. } => Some((Screen::Hooks, hook.name.clone())),
            _ => self.select_after.take(),
        };
        Some(command)
    }

    /// Selects the item named in `select_after` once `screen`'s list holds
    /// it.
    fn select_created(&mut self, screen: Screen) {
        let Some((on, name)) = self.select_after.clone() else {
            return;
        };
        if on != screen {
            return;
        }
        let position = match screen {
            Screen::Servers => self.servers_shown().iter().position(|s| s.name == name),
            Screen::Toolsets => self.toolsets_shown().iter().position(|t| t.name == name),
            Screen::Profiles => self.profiles_shown().iter().position(|p| p.name == name),
            Screen::Users => self.users_shown().iter().position(|u| u.email == name),
            Screen::Hooks => self.hooks_shown().iter().position(|h| h.name == name),
            _ => None,
        };
        if let Some(position) = position {
            self.select_after = None;
            let rows = self.areas().list_rows();
            let len = match screen {
                Screen::Servers => self.servers_shown().len(),
                Screen::Toolsets => self.toolsets_shown().len(),
                Screen::Profiles => self.profiles_shown().len(),
                Screen::Hooks => self.hooks_shown().len(),
                _ => self.users_shown().len(),
            };
            let cursor = match screen {
                Screen::Servers => &mut self.servers_cursor,
                Screen::Toolsets => &mut self.toolsets_cursor,
                Screen::Profiles => &mut self.profiles_cursor,
                Screen::Hooks => &mut self.hooks_cursor,
                _ => &mut self.users_cursor,
            };
            cursor.selected = position;
            cursor.clamp(len, rows);
        }
    }

    fn form_command(&mut self, form: &mut Form) -> Option<Command> {
        match form.kind.clone() {
            FormKind::RegisterServer => self.submit_register(form),
            FormKind::EditServer { id } => self.submit_edit_server(form, id),
            FormKind::Credentials { server_id } => submit::submit_credentials(form, server_id),
            FormKind::NewToolset
            | FormKind::EditToolset { .. }
            | FormKind::NewProfile
            | FormKind::EditProfile { .. } => submit::submit_named(form),
            FormKind::Grant => submit::submit_grant(form),
            FormKind::NewUser => submit::submit_user(form),
            FormKind::IssueToken { user_id } => submit::submit_token(form, user_id),
            FormKind::Classify { ids } => {
                self.submit_classify(form, ids);
                None
            }
            FormKind::ToolFilter => {
                self.apply_tool_filter(form);
                None
            }
            FormKind::AuditFilter => {
                self.apply_audit_filter(form);
                None
            }
            FormKind::IdentityProvider => settings::submit_identity_provider(form),
            FormKind::Registration => settings::submit_registration(form),
            FormKind::Governance => {
                let current = self
                    .settings
                    .ready()
                    .and_then(|s| s.governance.clone())
                    .unwrap_or_default();
                settings::submit_governance_with(form, &current)
            }
            FormKind::ApproveRequest { .. }
            | FormKind::DenyRequest { .. }
            | FormKind::DenyHeldCall { .. } => approvals::submit(form),
            FormKind::NewHookKind => {
                self.open_hook_form(form);
                None
            }
            FormKind::NewHook { .. } | FormKind::EditHook { .. } => self.submit_hook(form),
            FormKind::TestHook { .. } => self.submit_hook_test(form),
        }
    }

    fn mouse(&mut self, mouse: MouseEvent) {
        if self.overlay.is_some() {
            return;
        }
        match mouse.kind {
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let over_detail = self
                    .areas()
                    .detail
                    .contains(ratatui::layout::Position::new(mouse.column, mouse.row));
                let down = mouse.kind == MouseEventKind::ScrollDown;
                let intent = match (over_detail, down) {
                    (true, true) => Intent::DetailDown,
                    (true, false) => Intent::DetailUp,
                    (false, true) => Intent::Down,
                    (false, false) => Intent::Up,
                };
                self.intent(intent);
            }
            MouseEventKind::Down(MouseButton::Left) => {
                let areas = self.areas();
                if mouse.row == areas.tabs.y {
                    if let Some(screen) = self.tabs().at(mouse.column) {
                        self.go(screen);
                    }
                } else if let Some(row) = areas.list_row_at(mouse.column, mouse.row) {
                    let len = self.shown_len();
                    let cursor = self.cursor_mut();
                    cursor.selected = (cursor.offset + row).min(len.saturating_sub(1));
                    self.clamp_cursors();
                    self.selection_changed();
                }
            }
            _ => {}
        }
    }

    /// How many rows the current screen's list shows.
    fn shown_len(&self) -> usize {
        match self.screen {
            Screen::Servers => self.servers_shown().len(),
            Screen::Tools => self.tools.shown.len(),
            Screen::Toolsets => self.toolsets_shown().len(),
            Screen::Profiles => self.profiles_shown().len(),
            Screen::Users => self.users_shown().len(),
            Screen::Audit => self.audit_shown().len(),
            Screen::Settings => settings::ROWS,
            Screen::Clients => self.clients_shown().len(),
            Screen::Requests => self.requests_shown().len(),
            Screen::HeldCalls => self.held_shown().len(),
            Screen::Hooks => self.hooks_shown().len(),
        }
    }

    /// Moves the current screen's cursor; false when `intent` is not
    /// navigation.
    fn navigate(&mut self, intent: Intent, rows: usize) -> bool {
        let len = self.shown_len();
        let moved = self.cursor_mut().navigate(intent, len, rows);
        if moved {
            self.selection_changed();
        }
        moved
    }

    fn cursor_mut(&mut self) -> &mut Cursor {
        match self.screen {
            Screen::Servers => &mut self.servers_cursor,
            Screen::Tools => &mut self.tools.cursor,
            Screen::Toolsets => &mut self.toolsets_cursor,
            Screen::Profiles => &mut self.profiles_cursor,
            Screen::Users => &mut self.users_cursor,
            Screen::Audit => &mut self.audit.cursor,
            Screen::Settings => &mut self.settings_cursor,
            Screen::Clients => &mut self.clients_cursor,
            Screen::Requests => &mut self.requests_cursor,
            Screen::HeldCalls => &mut self.held_cursor,
            Screen::Hooks => &mut self.hooks_cursor,
        }
    }

    fn selection_changed(&mut self) {
        self.detail_scroll = 0;
        match self.screen {
            Screen::Users => self.select_user_detail(),
            Screen::Audit => self.audit.follow = self.audit.cursor.selected == 0,
            Screen::HeldCalls => self.select_held_detail(),
            Screen::Hooks => self.hook_test = None,
            _ => {}
        }
    }
}

/// The `claude mcp add` line for a just-issued token (wiped from memory
/// when dropped: it holds the token).
pub fn claude_config_line(token: &IssuedToken) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "claude mcp add --transport http toolgate {} --header \"Authorization: Bearer {}\"",
        token.mcp_url,
        token.secret.as_str()
    ))
}

/// What the status line says after a copy: the console cannot know whether
/// the terminal honoured OSC 52.
pub const COPIED: &str =
    "sent to the clipboard (if your terminal supports OSC 52; Shift-drag selects text)";

/// Visible rows of a picker on a terminal of `size`.
pub fn picker_rows(size: Rect) -> usize {
    usize::from(size.height.saturating_sub(9)).max(3)
}

/// A discovery report in one line.
pub fn describe_report(report: &v1::DiscoveryReport) -> String {
    format!(
        "{} new, {} changed, {} removed, {} unchanged",
        report.added.len(),
        report.drifted.len(),
        report.removed.len(),
        report.unchanged
    )
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_governance;
#[cfg(test)]
mod tests_screens;
