//! Screen geometry, shared by the views (to draw) and the update step (to
//! page by the visible height and to hit-test mouse clicks). Pure functions
//! of the terminal size.

use ratatui::layout::{Constraint, Direction, Layout, Rect};

use crate::state::Screen;

/// Terminals at least this wide show the detail pane beside the list.
pub const WIDE: u16 = 120;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// The top line: product name, screen tabs, connection state.
    pub tabs: Rect,
    /// The list (table with a border and a header row).
    pub list: Rect,
    /// The detail pane (empty when zoomed out of view).
    pub detail: Rect,
    /// The status line (messages, errors, loading).
    pub status: Rect,
    /// The key hints of the current screen.
    pub footer: Rect,
}

impl Areas {
    /// Rows of the list that show data (without border and header).
    pub fn list_rows(&self) -> usize {
        usize::from(self.list.height.saturating_sub(3)).max(1)
    }

    /// The data row index (from the top of the visible rows) at terminal
    /// row `y`, if `(x, y)` is on a list row.
    pub fn list_row_at(&self, x: u16, y: u16) -> Option<usize> {
        let inside = x > self.list.x
            && x < self.list.right().saturating_sub(1)
            && y >= self.list.y + 2
            && y < self.list.bottom().saturating_sub(1);
        inside.then(|| usize::from(y - self.list.y - 2))
    }
}

/// Splits a terminal of `size`. With `zoomed`, the detail pane takes the
/// whole body and the list is empty.
pub fn areas(size: Rect, zoomed: bool) -> Areas {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .split(size);
    let body = rows[1];
    let (list, detail) = if zoomed {
        (Rect::new(body.x, body.y, 0, 0), body)
    } else if size.width >= WIDE {
        let cols = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Percentage(58), Constraint::Percentage(42)])
            .split(body);
        (cols[0], cols[1])
    } else {
        let split = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Percentage(60), Constraint::Percentage(40)])
            .split(body);
        (split[0], split[1])
    };
    Areas {
        tabs: rows[0],
        list,
        detail,
        status: rows[2],
        footer: rows[3],
    }
}

/// Tab labels as drawn on the top line of a terminal `width` columns wide,
/// with the columns each covers. Narrow terminals (under [`WIDE_TABS`])
/// leave out the product name so every tab fits in 80 columns.
pub fn tab_labels(width: u16) -> Vec<(Screen, String, u16, u16)> {
    let mut x = tabs_start(width);
    Screen::ALL
        .iter()
        .enumerate()
        .map(|(i, screen)| {
            let label = format!(" {} {} ", i + 1, screen.title());
            let w = label.chars().count() as u16;
            let start = x;
            x += w;
            (*screen, label, start, x)
        })
        .collect()
}

/// Terminals at least this wide show the product name before the tabs.
pub const WIDE_TABS: u16 = 100;

/// The product name drawn before the tabs on wide terminals.
pub const PRODUCT_LABEL: &str = " toolgate │";

/// Column where the first tab starts on a terminal `width` columns wide.
pub fn tabs_start(width: u16) -> u16 {
    if width >= WIDE_TABS {
        PRODUCT_LABEL.chars().count() as u16
    } else {
        0
    }
}

/// The screen whose tab covers `column`.
pub fn tab_at(width: u16, column: u16) -> Option<Screen> {
    tab_labels(width)
        .into_iter()
        .find(|(_, _, start, end)| column >= *start && column < *end)
        .map(|(screen, ..)| screen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_terminals_stack_and_wide_ones_split_side_by_side() {
        let narrow = areas(Rect::new(0, 0, 80, 24), false);
        assert_eq!(narrow.tabs.height, 1);
        assert_eq!(narrow.list.width, 80);
        assert_eq!(narrow.list.height + narrow.detail.height, 21);
        assert_eq!(narrow.footer.y, 23);
        let wide = areas(Rect::new(0, 0, 200, 50), false);
        assert_eq!(wide.list.height, 47);
        assert_eq!(wide.list.width + wide.detail.width, 200);
        let zoomed = areas(Rect::new(0, 0, 80, 24), true);
        assert_eq!(zoomed.detail.height, 21);
        assert_eq!(zoomed.list.height, 0);
    }

    #[test]
    fn clicks_map_to_data_rows() {
        let a = areas(Rect::new(0, 0, 80, 24), false);
        assert_eq!(a.list_row_at(5, a.list.y + 2), Some(0));
        assert_eq!(a.list_row_at(5, a.list.y + 1), None);
        assert_eq!(a.list_row_at(0, a.list.y + 3), None);
    }
}
