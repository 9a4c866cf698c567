//! Screen geometry, shared by the views (to draw) and the update step (to
//! page by the visible height and to hit-test mouse clicks). Pure functions
//! of the terminal size.

use ratatui::layout::{Constraint, Direction, Layout, Rect};

use crate::state::Screen;

/// The most rows a long status message takes (it wraps onto them).
pub const MAX_STATUS_ROWS: u16 = 3;

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

/// Splits a terminal of `size`, with `status_rows` rows for the status
/// line (a long message wraps instead of being cut; at most
/// [`MAX_STATUS_ROWS`]). With `zoomed`, the detail pane takes the whole body
/// and the list is empty.
pub fn areas(size: Rect, zoomed: bool, status_rows: u16) -> Areas {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(status_rows.clamp(1, MAX_STATUS_ROWS)),
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

/// The tabs as drawn on the top line of a terminal `width` columns wide
/// that must keep `reserve` columns at its right end free (for the kill
/// switch and connection state, which must be read in full): each tab with
/// the columns it covers, and whether the product name comes first.
///
/// The widest form that leaves `reserve` free wins: the product name and
/// every tab's title (from [`WIDE_TABS`] columns), every title, then only
/// the current screen's title with the other tabs by number (`1`-`9`, `0`
/// still jump to them). A screen with a count (pending access requests,
/// held calls) shows it: `9 Requests (3)`, or `9:3` by number; when even
/// that does not fit, the numbers go without counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tabs {
    /// Whether [`PRODUCT_LABEL`] is drawn before the tabs.
    pub product: bool,
    /// Each tab: screen, label, first column, column after it.
    pub tabs: Vec<(Screen, String, u16, u16)>,
}

impl Tabs {
    /// The column after the last tab.
    pub fn end(&self) -> u16 {
        self.tabs.last().map_or(0, |t| t.3)
    }

    /// The screen whose tab covers `column`.
    pub fn at(&self, column: u16) -> Option<Screen> {
        self.tabs
            .iter()
            .find(|(_, _, start, end)| column >= *start && column < *end)
            .map(|(screen, ..)| *screen)
    }
}

/// Lays out the tabs (see [`Tabs`]); `counts` are the non-zero counts to
/// show on tabs.
pub fn tabs(width: u16, current: Screen, reserve: u16, counts: &[(Screen, u32)]) -> Tabs {
    let build = |product: bool, full: bool, with_counts: bool| {
        let mut x = if product {
            PRODUCT_LABEL.chars().count() as u16
        } else {
            0
        };
        let tabs = Screen::ALL
            .iter()
            .map(|screen| {
                let count = counts
                    .iter()
                    .find(|(s, n)| s == screen && *n > 0 && with_counts)
                    .map(|(_, n)| *n);
                let label = match (full || *screen == current, screen.digit(), count) {
                    (true, Some(d), Some(n)) => format!(" {d} {} ({n}) ", screen.title()),
                    (true, Some(d), None) => format!(" {d} {} ", screen.title()),
                    (true, None, Some(n)) => format!(" {} ({n}) ", screen.title()),
                    (true, None, None) => format!(" {} ", screen.title()),
                    (false, Some(d), Some(n)) => format!(" {d}:{n} "),
                    (false, Some(d), None) => format!(" {d} "),
                    (false, None, _) => format!(" {} ", &screen.title()[..1]),
                };
                let w = label.chars().count() as u16;
                let start = x;
                x += w;
                (*screen, label, start, x)
            })
            .collect();
        Tabs { product, tabs }
    };
    let forms = [
        (true, true, true),
        (false, true, true),
        (false, false, true),
        (false, false, false),
    ];
    forms
        .iter()
        .filter(|(product, ..)| !product || width >= WIDE_TABS)
        .map(|&(product, full, with_counts)| build(product, full, with_counts))
        .find(|t| t.end().saturating_add(reserve) <= width)
        .unwrap_or_else(|| build(false, false, false))
}

/// Terminals at least this wide may show the product name before the tabs.
pub const WIDE_TABS: u16 = 100;

/// The product name drawn before the tabs on wide terminals.
pub const PRODUCT_LABEL: &str = " toolgate │";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_terminals_stack_and_wide_ones_split_side_by_side() {
        let narrow = areas(Rect::new(0, 0, 80, 24), false, 1);
        assert_eq!(narrow.tabs.height, 1);
        assert_eq!(narrow.list.width, 80);
        assert_eq!(narrow.list.height + narrow.detail.height, 21);
        assert_eq!(narrow.footer.y, 23);
        let wide = areas(Rect::new(0, 0, 200, 50), false, 1);
        assert_eq!(wide.list.height, 47);
        assert_eq!(wide.list.width + wide.detail.width, 200);
        let zoomed = areas(Rect::new(0, 0, 80, 24), true, 1);
        assert_eq!(zoomed.detail.height, 21);
        assert_eq!(zoomed.list.height, 0);
    }

    #[test]
    fn clicks_map_to_data_rows() {
        let a = areas(Rect::new(0, 0, 80, 24), false, 1);
        assert_eq!(a.list_row_at(5, a.list.y + 2), Some(0));
        assert_eq!(a.list_row_at(5, a.list.y + 1), None);
        assert_eq!(a.list_row_at(0, a.list.y + 3), None);
    }

    #[test]
    fn a_long_status_takes_rows_from_the_body() {
        let two = areas(Rect::new(0, 0, 80, 24), false, 2);
        assert_eq!(two.status.height, 2);
        assert_eq!(two.list.height + two.detail.height, 20);
        assert_eq!(areas(Rect::new(0, 0, 80, 24), false, 9).status.height, 3);
    }

    #[test]
    fn tabs_give_way_to_the_state_on_the_right() {
        let width = |t: &Tabs| t.end();
        let counts = [(Screen::Requests, 3), (Screen::HeldCalls, 1)];
        // Wide: product name and every title.
        let wide = tabs(160, Screen::Users, 16, &[]);
        assert!(wide.product);
        assert_eq!(width(&wide), 132);
        // With pending requests and held calls: their counts.
        let counted = tabs(160, Screen::Users, 16, &counts);
        assert_eq!(counted.tabs[8].1, " 9 Requests (3) ");
        assert_eq!(counted.tabs[9].1, " 0 Held calls (1) ");
        assert_eq!(width(&counted), 140);
        // 130 columns with a short state: every title, no product name.
        let plain = tabs(130, Screen::Users, 2, &[]);
        assert!(!plain.product);
        assert_eq!(plain.tabs[0].1, " 1 Servers ");
        assert_eq!(plain.tabs[7].1, " 8 AI clients ");
        assert_eq!(plain.tabs[10].1, " Hooks ");
        assert_eq!(width(&plain), 121);
        // 80 columns with `MCP TRAFFIC OFF ✗ daemon unreachable `: only the
        // current title, the counts by number, and it all fits.
        let compact = tabs(80, Screen::Users, 37, &counts);
        assert_eq!(compact.tabs[0].1, " 1 ");
        assert_eq!(compact.tabs[4].1, " 5 Users ");
        assert_eq!(compact.tabs[8].1, " 9:3 ");
        assert_eq!(compact.tabs[9].1, " 0:1 ");
        assert_eq!(compact.tabs[10].1, " H ");
        assert!(width(&compact) + 37 <= 80);
        assert_eq!(compact.at(1), Some(Screen::Servers));
        assert_eq!(compact.at(width(&compact)), None);
        // Tighter still: the counts go, the numbers stay.
        let bare = tabs(80, Screen::Users, 40, &counts);
        assert_eq!(bare.tabs[8].1, " 9 ");
        assert!(width(&bare) + 40 <= 80);
    }
}
