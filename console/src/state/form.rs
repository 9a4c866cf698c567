//! A form overlay: labelled fields (text, masked secret, choice, toggle),
//! one focused at a time, an error line, and a busy flag while its request
//! runs. What the form is for is [`FormKind`]; turning its values into a
//! request is the screen's business.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;
use zeroize::Zeroizing;

/// What a form is for (and the ids it works on).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum FormKind {
    RegisterServer,
    EditServer {
        id: String,
    },
    Credentials {
        server_id: String,
    },
    NewToolset,
    EditToolset {
        id: String,
    },
    NewProfile,
    EditProfile {
        id: String,
    },
    /// Grant a user a profile (one of the two may be fixed by the screen).
    Grant,
    NewUser,
    IssueToken {
        user_id: String,
    },
    ToolFilter,
    AuditFilter,
    Classify {
        ids: Vec<String>,
    },
    /// The OpenID Connect provider of the sign-in settings.
    IdentityProvider,
    /// The registration policy of the sign-in settings.
    Registration,
    /// Access requests, per-call approval and audit verbosity.
    Governance,
    /// Approve an access request (optionally for a shorter time).
    ApproveRequest {
        id: String,
        revision: u64,
    },
    /// Deny an access request with a reason.
    DenyRequest {
        id: String,
        revision: u64,
    },
    /// Deny a held call with a reason.
    DenyHeldCall {
        id: String,
        revision: u64,
    },
    /// Choose the kind of a new hook.
    NewHookKind,
    /// A new hook of a kind.
    NewHook {
        kind: super::HookKindName,
    },
    /// Edit a hook.
    EditHook {
        id: String,
        revision: u64,
        kind: super::HookKindName,
    },
    /// A dry run of a stored hook on a sample call.
    TestHook {
        id: String,
    },
}

/// A field's value.
#[derive(Debug)]
pub enum FieldKind {
    /// Free text.
    Text(Input),
    /// Masked text: drawn as `•`, wiped from memory when replaced or dropped.
    Secret(Zeroizing<String>),
    /// One of `options` (label, value); Left/Right/Space cycle.
    Choice {
        /// (label shown, value used).
        options: Vec<(String, String)>,
        /// Index into `options`.
        selected: usize,
    },
    /// On/off; Space toggles.
    Toggle(bool),
}

/// One labelled field.
#[derive(Debug)]
pub struct Field {
    /// A stable key the screen reads values by.
    pub key: &'static str,
    /// Shown before the value.
    pub label: String,
    /// The value.
    pub kind: FieldKind,
    /// Shown under the field when focused.
    pub help: String,
    /// When false the field is drawn dimmed and skipped by Tab (e.g. the My
    /// Domain URL unless the login host is My Domain).
    pub enabled: bool,
}

impl Field {
    /// A text field with an initial value.
    pub fn text(key: &'static str, label: &str, value: &str, help: &str) -> Self {
        Self {
            key,
            label: label.into(),
            kind: FieldKind::Text(Input::new(value.into())),
            help: help.into(),
            enabled: true,
        }
    }

    /// A masked secret field, empty.
    pub fn secret(key: &'static str, label: &str, help: &str) -> Self {
        Self {
            key,
            label: label.into(),
            // Room for any consumer secret, so typing never reallocates (which
            // would leave an unwiped copy behind).
            kind: FieldKind::Secret(Zeroizing::new(String::with_capacity(256))),
            help: help.into(),
            enabled: true,
        }
    }

    /// A choice among (label, value) options; `selected` is the value to
    /// start on (the first option when absent).
    pub fn choice(
        key: &'static str,
        label: &str,
        options: Vec<(String, String)>,
        selected: &str,
        help: &str,
    ) -> Self {
        let selected = options.iter().position(|(_, v)| v == selected).unwrap_or(0);
        Self {
            key,
            label: label.into(),
            kind: FieldKind::Choice { options, selected },
            help: help.into(),
            enabled: true,
        }
    }

    /// An on/off field.
    pub fn toggle(key: &'static str, label: &str, on: bool, help: &str) -> Self {
        Self {
            key,
            label: label.into(),
            kind: FieldKind::Toggle(on),
            help: help.into(),
            enabled: true,
        }
    }
}

/// A form overlay.
#[derive(Debug)]
pub struct Form {
    /// What it is for.
    pub kind: FormKind,
    /// Title of the box.
    pub title: String,
    /// Lines shown above the fields (e.g. the callback URL to paste).
    pub intro: Vec<String>,
    /// The fields, in order.
    pub fields: Vec<Field>,
    /// The focused field.
    pub focus: usize,
    /// The last error (from validation or the daemon); the values stay.
    pub error: Option<String>,
    /// The id of the request in flight, while saving.
    pub busy: Option<u64>,
}

/// What a key did to a form.
#[derive(Debug, PartialEq, Eq)]
pub enum FormInput {
    /// Nothing more to do.
    Handled,
    /// Enter: the screen should validate and submit.
    Submit,
    /// Esc: close the form.
    Cancel,
}

impl Form {
    /// A form with no intro, focus on the first field.
    pub fn new(kind: FormKind, title: &str, fields: Vec<Field>) -> Self {
        Self {
            kind,
            title: title.into(),
            intro: Vec::new(),
            fields,
            focus: 0,
            error: None,
            busy: None,
        }
    }

    /// Adds intro lines.
    pub fn with_intro(mut self, intro: Vec<String>) -> Self {
        self.intro = intro;
        self
    }

    fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The trimmed text of a text field ("" when absent).
    pub fn text(&self, key: &str) -> String {
        match self.field(key).map(|f| &f.kind) {
            Some(FieldKind::Text(input)) => input.value().trim().to_owned(),
            _ => String::new(),
        }
    }

    /// Takes the value of a secret field, leaving it empty.
    pub fn take_secret(&mut self, key: &str) -> Zeroizing<String> {
        match self
            .fields
            .iter_mut()
            .find(|f| f.key == key)
            .map(|f| &mut f.kind)
        {
            Some(FieldKind::Secret(value)) => std::mem::take(value),
            _ => Zeroizing::new(String::new()),
        }
    }

    /// How many characters a secret field holds (for drawing the mask).
    pub fn secret_len(&self, key: &str) -> usize {
        match self.field(key).map(|f| &f.kind) {
            Some(FieldKind::Secret(value)) => value.chars().count(),
            _ => 0,
        }
    }

    /// The value of the selected option of a choice field ("" when absent).
    pub fn choice(&self, key: &str) -> String {
        match self.field(key).map(|f| &f.kind) {
            Some(FieldKind::Choice { options, selected }) => options
                .get(*selected)
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// The value of a toggle field (false when absent).
    pub fn toggle(&self, key: &str) -> bool {
        matches!(
            self.field(key).map(|f| &f.kind),
            Some(FieldKind::Toggle(true))
        )
    }

    /// Enables or disables a field by key.
    pub fn set_enabled(&mut self, key: &str, enabled: bool) {
        if let Some(field) = self.fields.iter_mut().find(|f| f.key == key) {
            field.enabled = enabled;
        }
    }

    /// Shows an error, keeping every value.
    pub fn fail(&mut self, message: impl Into<String>) {
        self.busy = None;
        self.error = Some(message.into());
    }

    fn step(&mut self, forward: bool) {
        let n = self.fields.len();
        for _ in 0..n {
            self.focus = if forward {
                (self.focus + 1) % n
            } else {
                (self.focus + n - 1) % n
            };
            if self.fields[self.focus].enabled {
                return;
            }
        }
    }

    /// Applies a key. While busy only Esc works (and closes the form; the
    /// request still completes).
    pub fn key(&mut self, key: KeyEvent) -> FormInput {
        if key.code == KeyCode::Esc {
            return FormInput::Cancel;
        }
        if self.busy.is_some() {
            return FormInput::Handled;
        }
        match key.code {
            KeyCode::Enter => return FormInput::Submit,
            KeyCode::Tab | KeyCode::Down => {
                self.step(true);
                return FormInput::Handled;
            }
            KeyCode::BackTab | KeyCode::Up => {
                self.step(false);
                return FormInput::Handled;
            }
            _ => {}
        }
        let Some(field) = self.fields.get_mut(self.focus) else {
            return FormInput::Handled;
        };
        match &mut field.kind {
            FieldKind::Text(input) => {
                input.handle_event(&Event::Key(key));
            }
            FieldKind::Secret(value) => match key.code {
                KeyCode::Backspace => {
                    value.pop();
                }
                KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    *value = Zeroizing::new(String::new());
                }
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    value.push(c);
                }
                _ => {}
            },
            FieldKind::Choice { options, selected } => {
                let n = options.len().max(1);
                match key.code {
                    KeyCode::Right | KeyCode::Char(' ') | KeyCode::Char('l') => {
                        *selected = (*selected + 1) % n;
                    }
                    KeyCode::Left | KeyCode::Char('h') => *selected = (*selected + n - 1) % n,
                    _ => {}
                }
            }
            FieldKind::Toggle(on) => {
                if matches!(
                    key.code,
                    KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right
                ) {
                    *on = !*on;
                }
            }
        }
        FormInput::Handled
    }

    /// Inserts pasted text into the focused text or secret field (newlines
    /// dropped).
    pub fn paste(&mut self, text: &str) {
        if self.busy.is_some() {
            return;
        }
        let Some(field) = self.fields.get_mut(self.focus) else {
            return;
        };
        let clean = text.chars().filter(|c| !c.is_control());
        match &mut field.kind {
            FieldKind::Text(input) => {
                for c in clean {
                    input.handle(tui_input::InputRequest::InsertChar(c));
                }
            }
            FieldKind::Secret(value) => value.extend(clean),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn sample() -> Form {
        Form::new(
            FormKind::NewUser,
            "t",
            vec![
                Field::text("name", "Name", "ab", ""),
                Field::secret("secret", "Secret", ""),
                Field::choice(
                    "host",
                    "Host",
                    vec![("P".into(), "p".into()), ("S".into(), "s".into())],
                    "s",
                    "",
                ),
                Field::toggle("on", "On", false, ""),
            ],
        )
    }

    #[test]
    fn typing_tabbing_and_cycling_edit_the_focused_field() {
        let mut form = sample();
        form.key(key(KeyCode::Char('c')));
        assert_eq!(form.text("name"), "abc");
        form.key(key(KeyCode::Tab));
        for c in "s3cr3t".chars() {
            form.key(key(KeyCode::Char(c)));
        }
        form.key(key(KeyCode::Backspace));
        assert_eq!(form.secret_len("secret"), 5);
        form.key(key(KeyCode::Tab));
        assert_eq!(form.choice("host"), "s");
        form.key(key(KeyCode::Right));
        assert_eq!(form.choice("host"), "p");
        form.key(key(KeyCode::Tab));
        form.key(key(KeyCode::Char(' ')));
        assert!(form.toggle("on"));
        assert_eq!(form.key(key(KeyCode::Enter)), FormInput::Submit);
        assert_eq!(form.take_secret("secret").as_str(), "s3cr3");
        assert_eq!(form.secret_len("secret"), 0);
    }

    #[test]
    fn disabled_fields_are_skipped_and_busy_forms_ignore_keys() {
        let mut form = sample();
        form.set_enabled("secret", false);
        form.key(key(KeyCode::Tab));
        assert_eq!(form.focus, 2);
        form.key(key(KeyCode::BackTab));
        assert_eq!(form.focus, 0);
        form.busy = Some(1);
        form.key(key(KeyCode::Char('x')));
        assert_eq!(form.text("name"), "ab");
        assert_eq!(form.key(key(KeyCode::Esc)), FormInput::Cancel);
    }

    #[test]
    fn paste_drops_newlines() {
        let mut form = sample();
        form.paste("cd\n");
        assert_eq!(form.text("name"), "abcd");
    }
}
