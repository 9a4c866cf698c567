//! What the top line and the status line say: the kill switch, the
//! daemon connection, the tabs that fit beside them, and the status
//! message by priority. Shared by the views (to draw) and the update step
//! (to lay out the status rows and hit-test the tabs).

use super::{App, Link};
use crate::layout;

/// What kind of message the status line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// A failure.
    Error,
    /// News.
    Info,
    /// A reminder (the kept `/` filter).
    Hint,
}

impl App {
    /// What the status line says (unless a `/` filter is being typed), and
    /// whether it is an error: an error message, else an unreachable or
    /// refusing daemon, else the last message, else the kept `/` filter.
    pub fn status_line(&self) -> Option<(String, StatusKind)> {
        let link = match &self.link {
            Link::Down(message) => Some(format!("✗ r to retry · {message} at {}", self.addr)),
            Link::Refused(message) => Some(format!(
                "✗ {message}; restart the console with the right token"
            )),
            _ => None,
        };
        if let Some(status) = self.status.as_ref().filter(|s| s.error) {
            Some((format!("✗ {}", status.text), StatusKind::Error))
        } else if let Some(text) = link {
            Some((text, StatusKind::Error))
        } else if let Some(status) = &self.status {
            Some((format!("• {}", status.text), StatusKind::Info))
        } else {
            self.search
                .get(&self.screen)
                .filter(|f| !f.is_empty())
                .map(|filter| (format!("filter: /{filter}  (Esc clears)"), StatusKind::Hint))
        }
    }

    /// Whether the MCP kill switch is on (traffic off), as last loaded.
    pub fn traffic_off(&self) -> bool {
        self.settings
            .ready()
            .is_some_and(|s| !s.mcp_traffic_enabled)
    }

    /// The connection state for the right end of the top line: what must
    /// always show, and the fuller form used where it fits. An unreachable
    /// daemon and a refused token are always written out (the glyph alone
    /// says too little); the healthy states shrink to a glyph.
    pub fn link_labels(&self) -> (String, String) {
        let busy = self.busy();
        match &self.link {
            Link::Connecting => ("… ".into(), format!("… connecting {} ", self.addr)),
            Link::Up if busy > 0 => ("⟳ ".into(), format!("⟳ working ({busy}) ● connected ")),
            Link::Up => ("● ".into(), "● connected ".into()),
            Link::Down(_) => {
                let text = "✗ daemon unreachable ".to_owned();
                (text.clone(), text)
            }
            Link::Refused(_) => {
                let text = "✗ admin token refused ".to_owned();
                (text.clone(), text)
            }
        }
    }

    /// The kill switch's word on the top line, when it is on.
    pub const TRAFFIC_OFF: &'static str = "MCP TRAFFIC OFF ";

    /// The tabs on the top line, leaving room for the kill switch and the
    /// connection state (see [`layout::tabs`]).
    pub fn tabs(&self) -> layout::Tabs {
        let off = if self.traffic_off() {
            Self::TRAFFIC_OFF.chars().count()
        } else {
            0
        };
        let reserve = off + self.link_labels().0.chars().count();
        let counts: Vec<(super::Screen, u32)> = [
            (super::Screen::Requests, self.requests_pending),
            (super::Screen::HeldCalls, self.held_pending),
        ]
        .into_iter()
        .filter_map(|(screen, n)| n.map(|n| (screen, n)))
        .collect();
        layout::tabs(
            self.size.width,
            self.screen,
            u16::try_from(reserve).unwrap_or(u16::MAX),
            &counts,
        )
    }
}
