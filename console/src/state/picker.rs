//! A picker overlay: a filterable list to check many items (toolset
//! members, bound toolsets) or to choose one (a grant, a token or a
//! connection to revoke). Typing filters; arrows move; Space checks; Enter
//! finishes; Esc cancels.

use crossterm::event::{Event, KeyCode, KeyEvent};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::Cursor;

/// What a picker is for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum PickerKind {
    ToolsetMembers { toolset_id: String },
    Bindings { profile_id: String },
    RevokeGrant { profile_id: String },
    RevokeToken { user_id: String },
    Disconnect { user_id: String },
}

/// One row of a picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickItem {
    /// The id the choice is about.
    pub id: String,
    /// What is shown.
    pub label: String,
    /// Checked now.
    pub checked: bool,
    /// Checked when the picker opened.
    pub original: bool,
}

/// A picker overlay.
#[derive(Debug)]
pub struct Picker {
    /// What it is for.
    pub kind: PickerKind,
    /// Box title.
    pub title: String,
    /// Every item.
    pub items: Vec<PickItem>,
    /// Many (checkboxes) or one.
    pub multi: bool,
    /// The filter text.
    pub filter: Input,
    /// Selection among the shown items.
    pub cursor: Cursor,
    /// Visible rows (set from the terminal size).
    pub rows: usize,
}

/// What a key did to a picker.
#[derive(Debug, PartialEq, Eq)]
pub enum PickerInput {
    /// Keep it open.
    Handled,
    /// Enter.
    Done,
    /// Esc.
    Cancel,
}

impl Picker {
    /// A picker over `items`.
    pub fn new(kind: PickerKind, title: &str, items: Vec<PickItem>, multi: bool) -> Self {
        Self {
            kind,
            title: title.into(),
            items,
            multi,
            filter: Input::default(),
            cursor: Cursor::default(),
            rows: 10,
        }
    }

    /// Indices of the items the filter keeps.
    pub fn shown(&self) -> Vec<usize> {
        let needle = self.filter.value().trim().to_lowercase();
        self.items
            .iter()
            .enumerate()
            .filter(|(_, item)| needle.is_empty() || item.label.to_lowercase().contains(&needle))
            .map(|(i, _)| i)
            .collect()
    }

    /// The item under the cursor.
    pub fn current(&self) -> Option<&PickItem> {
        self.shown()
            .get(self.cursor.selected)
            .map(|i| &self.items[*i])
    }

    /// Ids checked now but not at the start, and unchecked now but checked
    /// at the start.
    pub fn changes(&self) -> (Vec<String>, Vec<String>) {
        let added = self
            .items
            .iter()
            .filter(|i| i.checked && !i.original)
            .map(|i| i.id.clone())
            .collect();
        let removed = self
            .items
            .iter()
            .filter(|i| !i.checked && i.original)
            .map(|i| i.id.clone())
            .collect();
        (added, removed)
    }

    /// Applies a key.
    pub fn key(&mut self, key: KeyEvent) -> PickerInput {
        let len = self.shown().len();
        let rows = self.rows;
        let nav = match key.code {
            KeyCode::Esc => return PickerInput::Cancel,
            KeyCode::Enter => return PickerInput::Done,
            KeyCode::Up => Some(crate::keymap::Intent::Up),
            KeyCode::Down => Some(crate::keymap::Intent::Down),
            KeyCode::PageUp => Some(crate::keymap::Intent::PageUp),
            KeyCode::PageDown => Some(crate::keymap::Intent::PageDown),
            _ => None,
        };
        if let Some(intent) = nav {
            self.cursor.navigate(intent, len, rows);
            return PickerInput::Handled;
        }
        if key.code == KeyCode::Char(' ') {
            if self.multi
                && let Some(index) = self.shown().get(self.cursor.selected).copied()
            {
                self.items[index].checked = !self.items[index].checked;
                self.cursor.navigate(crate::keymap::Intent::Down, len, rows);
            }
            return PickerInput::Handled;
        }
        if self.filter.handle_event(&Event::Key(key)).is_some() {
            // A new filter: start from its first match.
            self.cursor = Cursor::default();
        }
        let len = self.shown().len();
        self.cursor.clamp(len, rows);
        PickerInput::Handled
    }

    /// Pasted text goes to the filter.
    pub fn paste(&mut self, text: &str) {
        for c in text.chars().filter(|c| !c.is_control()) {
            self.filter.handle(tui_input::InputRequest::InsertChar(c));
        }
        let len = self.shown().len();
        self.cursor.clamp(len, self.rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn item(id: &str, checked: bool) -> PickItem {
        PickItem {
            id: id.into(),
            label: format!("label {id}"),
            checked,
            original: checked,
        }
    }

    #[test]
    fn typing_filters_space_checks_and_changes_are_the_difference() {
        let mut picker = Picker::new(
            PickerKind::Bindings {
                profile_id: "p".into(),
            },
            "t",
            vec![item("a", true), item("b", false), item("c", false)],
            true,
        );
        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        picker.key(key(KeyCode::Char(' ')));
        assert_eq!(picker.current().map(|i| i.id.as_str()), Some("b"));
        picker.key(key(KeyCode::Char('c')));
        assert_eq!(picker.shown().len(), 1);
        picker.key(key(KeyCode::Char(' ')));
        assert_eq!(
            picker.changes(),
            (vec!["c".to_owned()], vec!["a".to_owned()])
        );
        assert_eq!(picker.key(key(KeyCode::Enter)), PickerInput::Done);
    }
}
