//! The settings screen: require tool approval, the default classification
//! of new tools, and the MCP traffic kill switch (turning traffic off asks
//! for confirmation).

use toolgate_proto::v1;

use super::{App, Confirm, Overlay, Purpose};
use crate::action::Command;
use crate::keymap::Intent;

/// Rows on the settings screen.
pub const ROWS: usize = 5;

/// The settings rows: (label, value in words, what it means).
pub fn rows(settings: &v1::Settings) -> [(&'static str, String, &'static str); ROWS] {
    let class = settings.default_classification.unwrap_or_default();
    let on_off = |b: bool| if b { "on" } else { "off" }.to_owned();
    [
        (
            "MCP traffic",
            if settings.mcp_traffic_enabled {
                "on (tools can be listed and called)".into()
            } else {
                "OFF (kill switch: every tools/list and tools/call is refused)".into()
            },
            "The kill switch for all MCP traffic. Turning it off refuses every tool call at once.",
        ),
        (
            "Require tool approval",
            on_off(settings.require_tool_approval),
            "When on, newly discovered tools start Pending review (servers may override).",
        ),
        (
            "Default action",
            super::tools::action_name(class.action).to_owned(),
            "Classification given to new tools whose catalog entry names none: read, write or delete.",
        ),
        (
            "Default: sensitive",
            on_off(class.sensitive),
            "Risk flag given to new tools: they touch sensitive data.",
        ),
        (
            "Default: dangerous",
            on_off(class.dangerous),
            "Risk flag given to new tools: misuse can do serious harm.",
        ),
    ]
}

impl App {
    pub(super) fn settings_intent(&mut self, intent: Intent) {
        if self.navigate(intent, ROWS) {
            return;
        }
        if intent != Intent::Toggle {
            return;
        }
        let Some(settings) = self.settings.ready().cloned() else {
            self.info("settings are not loaded yet (r to retry)");
            return;
        };
        let mut class = settings.default_classification.unwrap_or_default();
        let mut request = v1::UpdateSettingsRequest::default();
        match self.settings_cursor.selected {
            0 => {
                request.mcp_traffic_enabled = Some(!settings.mcp_traffic_enabled);
                if settings.mcp_traffic_enabled {
                    self.overlay = Some(Overlay::Confirm(Confirm {
                        title: "Turn MCP traffic off".into(),
                        lines: vec![
                            "Every AI client is refused at once: tools/list is empty and tools/call".into(),
                            "fails until you turn traffic back on. Admin access is not affected.".into(),
                        ],
                        command: Command::UpdateSettings(request),
                    }));
                    return;
                }
            }
            1 => request.require_tool_approval = Some(!settings.require_tool_approval),
            2 => {
                class.action = match v1::ToolAction::try_from(class.action).unwrap_or_default() {
                    v1::ToolAction::Read => v1::ToolAction::Write,
                    v1::ToolAction::Write => v1::ToolAction::Delete,
                    _ => v1::ToolAction::Read,
                } as i32;
                request.default_classification = Some(class);
            }
            3 => {
                class.sensitive = !class.sensitive;
                request.default_classification = Some(class);
            }
            _ => {
                class.dangerous = !class.dangerous;
                request.default_classification = Some(class);
            }
        }
        // Show the new value at once, so a second press works from it (the
        // reload after the change confirms it; a failure reloads too).
        let mut shown = settings;
        if let Some(v) = request.mcp_traffic_enabled {
            shown.mcp_traffic_enabled = v;
        }
        if let Some(v) = request.require_tool_approval {
            shown.require_tool_approval = v;
        }
        if let Some(v) = request.default_classification {
            shown.default_classification = Some(v);
        }
        self.settings = super::Loadable::Ready(shown);
        self.send(Command::UpdateSettings(request), Purpose::Change);
    }
}
