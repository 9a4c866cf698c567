//! Tool discovery: reconciles the tools a server offers with the tools
//! already known for it.
//!
//! [`reconcile`] is pure: it takes the server, its known tools and the
//! offered definitions, and returns the tools to write, a report and the
//! audit events. New tools get their first state from the server's tool
//! enablement, else the gateway default; a tool whose definition changed
//! since it was approved goes back to `PENDING_REVIEW` (drift) with the
//! changed parts named; a tool no longer offered becomes `REMOVED`.

use std::sync::Arc;

use serde_json::json;

use crate::audit::Action;
use crate::catalog;
use crate::crypto::sha256_hex;
use crate::model::{
    AuditEvent, Millis, Server, Settings, Tool, ToolDefinition, ToolEnablement, ToolState, new_id,
};

/// What one discovery run changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DiscoveryReport {
    /// Exposed names of tools seen for the first time (or offered again
    /// after being removed).
    pub added: Vec<String>,
    /// Approved tools whose definition changed: exposed name and the
    /// changed parts.
    pub drifted: Vec<(String, Vec<String>)>,
    /// Exposed names of tools no longer offered.
    pub removed: Vec<String>,
    /// Tools offered and unchanged.
    pub unchanged: u32,
}

/// The result of [`reconcile`]: tools to write, the report, audit events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reconciled {
    /// New and changed tools, to be written.
    pub tools: Vec<Tool>,
    /// What changed.
    pub report: DiscoveryReport,
    /// Audit events describing the changes.
    pub events: Vec<AuditEvent>,
}

/// SHA-256 (hex) of a definition's canonical JSON: object keys sorted at
/// every level, no whitespace. Independent of serde_json's map ordering
/// feature, so the hash is stable across builds.
pub(crate) fn definition_hash(definition: &ToolDefinition) -> String {
    let value = serde_json::to_value(definition).unwrap_or_default();
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    sha256_hex(canonical.as_bytes())
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The exposed name of upstream tool `name` on a server with `prefix`.
pub(crate) fn exposed_name(prefix: &str, name: &str) -> String {
    format!("{prefix}_{name}")
}

/// The first state of a newly discovered tool on `server`.
pub(crate) fn initial_state(server: &Server, settings: &Settings) -> ToolState {
    let require = match server.tool_enablement {
        ToolEnablement::Inherit => settings.require_tool_approval,
        ToolEnablement::RequireApproval => true,
        ToolEnablement::AutoApprove => false,
    };
    if require {
        ToolState::PendingReview
    } else {
        ToolState::Approved
    }
}

/// The parts of a definition that differ: `title`, `description`,
/// `input_schema`, `output_schema`, `annotations`.
pub(crate) fn changed_parts(old: &ToolDefinition, new: &ToolDefinition) -> Vec<String> {
    let mut parts = Vec::new();
    if old.title != new.title {
        parts.push("title");
    }
    if old.description != new.description {
        parts.push("description");
    }
    if old.input_schema != new.input_schema {
        parts.push("input_schema");
    }
    if old.output_schema != new.output_schema {
        parts.push("output_schema");
    }
    if old.annotations != new.annotations {
        parts.push("annotations");
    }
    parts.into_iter().map(String::from).collect()
}

/// Reconciles `known` (the server's tools) with `offered`.
pub(crate) fn reconcile(
    server: &Server,
    known: &[Tool],
    offered: &[ToolDefinition],
    settings: &Settings,
    actor: &str,
    now: Millis,
) -> Reconciled {
    let mut out = Reconciled::default();
    for definition in offered {
        let hash = definition_hash(definition);
        let name = exposed_name(&server.tool_prefix, &definition.name);
        let existing = known.iter().find(|t| t.definition.name == definition.name);
        match existing {
            Some(tool) if tool.state != ToolState::Removed && tool.definition_hash == hash => {
                out.report.unchanged += 1;
            }
            Some(tool)
                if tool.state == ToolState::PendingReview
                    && tool.approved_hash.as_deref() == Some(hash.as_str()) =>
            {
                // Drifted, then changed back to what was approved: approved again.
                let mut tool = tool.clone();
                tool.definition = Arc::new(definition.clone());
                tool.definition_hash = hash;
                tool.name = name.clone();
                tool.state = ToolState::Approved;
                tool.drift.clear();
                tool.updated_at = now;
                tool.updated_by = actor.to_owned();
                out.events.push(
                    AuditEvent::allowed(actor, Action::ToolDrift, format!("tool/{}", tool.id))
                        .with_reason(format!(
                            "definition of {name} is back to the approved one; APPROVED again"
                        ))
                        .with_details(json!({"tool": name, "changed": []})),
                );
                out.report.unchanged += 1;
                out.tools.push(tool);
            }
            Some(tool) if tool.state != ToolState::Removed => {
                let mut tool = tool.clone();
                let baseline = tool
                    .approved_definition
                    .clone()
                    .unwrap_or_else(|| tool.definition.clone());
                let changed = changed_parts(&baseline, definition);
                let was_approved = tool.state == ToolState::Approved;
                tool.definition = Arc::new(definition.clone());
                tool.definition_hash = hash;
                tool.name = name.clone();
                if tool.approved_definition.is_some() {
                    tool.drift = changed.clone();
                }
                if was_approved {
                    tool.state = ToolState::PendingReview;
                    tool.updated_at = now;
                    tool.updated_by = actor.to_owned();
                    out.report.drifted.push((name.clone(), changed.clone()));
                }
                out.events.push(
                    AuditEvent::allowed(actor, Action::ToolDrift, format!("tool/{}", tool.id))
                        .with_reason(if was_approved {
                            format!(
                                "definition of {name} changed since approval ({}); back to PENDING_REVIEW",
                                changed.join(", ")
                            )
                        } else {
                            format!("definition of {name} changed; state stays {}", tool.state.as_str())
                        })
                        .with_details(json!({"tool": name, "changed": changed})),
                );
                out.tools.push(tool);
            }
            _ => {
                let state = initial_state(server, settings);
                let approved = state == ToolState::Approved;
                let shared = Arc::new(definition.clone());
                let tool = Tool {
                    id: existing.map_or_else(new_id, |t| t.id.clone()),
                    server_id: server.id.clone(),
                    name: name.clone(),
                    approved_definition: approved.then(|| shared.clone()),
                    definition: shared,
                    approved_hash: approved.then(|| hash.clone()),
                    definition_hash: hash,
                    state,
                    classification: existing.map_or_else(
                        || {
                            catalog::default_classification(
                                definition,
                                settings.default_classification,
                            )
                        },
                        |t| t.classification,
                    ),
                    discovered_at: existing.map_or(now, |t| t.discovered_at),
                    updated_at: now,
                    updated_by: actor.to_owned(),
                    drift: Vec::new(),
                };
                out.events.push(
                    AuditEvent::allowed(actor, Action::ToolDiscover, format!("tool/{}", tool.id))
                        .with_reason(format!("discovered {name}; state {}", state.as_str()))
                        .with_details(json!({"tool": name, "state": state.as_str()})),
                );
                out.report.added.push(name);
                out.tools.push(tool);
            }
        }
    }
    for tool in known {
        let still_offered = offered.iter().any(|d| d.name == tool.definition.name);
        if !still_offered && tool.state != ToolState::Removed {
            let mut tool = tool.clone();
            tool.state = ToolState::Removed;
            tool.updated_at = now;
            tool.updated_by = actor.to_owned();
            out.events.push(
                AuditEvent::allowed(actor, Action::ToolRemove, format!("tool/{}", tool.id))
                    .with_reason(format!("{} is no longer offered; now REMOVED", tool.name))
                    .with_details(json!({"tool": tool.name})),
            );
            out.report.removed.push(tool.name.clone());
            out.tools.push(tool);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LoginHost;

    fn server(enablement: ToolEnablement) -> Server {
        Server {
            id: "srv".into(),
            name: "sf".into(),
            catalog_kind: "salesforce".into(),
            tool_prefix: "sf".into(),
            login_host: LoginHost::Production,
            api_version: "66.0".into(),
            tool_enablement: enablement,
            disabled: false,
            auth: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn offered() -> Vec<ToolDefinition> {
        catalog::entry("salesforce").unwrap().tools.to_vec()
    }

    #[test]
    fn the_definition_hash_ignores_key_order() {
        let mut a = offered()[0].clone();
        let mut b = a.clone();
        a.input_schema =
            json!({"type": "object", "properties": {"x": {"type": "string", "maxLength": 3}}});
        b.input_schema = serde_json::from_str(
            r#"{"properties": {"x": {"maxLength": 3, "type": "string"}}, "type": "object"}"#,
        )
        .unwrap();
        assert_eq!(definition_hash(&a), definition_hash(&b));
        b.input_schema["properties"]["x"]["maxLength"] = json!(4);
        assert_ne!(definition_hash(&a), definition_hash(&b));
    }

    #[test]
    fn first_discovery_follows_enablement_and_settings() {
        let settings = Settings::default();
        let pending = reconcile(
            &server(ToolEnablement::Inherit),
            &[],
            &offered(),
            &settings,
            "system",
            1,
        );
        assert_eq!(pending.report.added.len(), offered().len());
        assert!(
            pending
                .tools
                .iter()
                .all(|t| t.state == ToolState::PendingReview)
        );
        assert!(pending.report.added.contains(&"sf_query".to_string()));

        let auto = Settings {
            require_tool_approval: false,
            ..Settings::default()
        };
        let approved = reconcile(
            &server(ToolEnablement::Inherit),
            &[],
            &offered(),
            &auto,
            "system",
            1,
        );
        assert!(
            approved
                .tools
                .iter()
                .all(|t| t.state == ToolState::Approved)
        );
        let forced = reconcile(
            &server(ToolEnablement::RequireApproval),
            &[],
            &offered(),
            &auto,
            "system",
            1,
        );
        assert!(
            forced
                .tools
                .iter()
                .all(|t| t.state == ToolState::PendingReview)
        );
    }

    #[test]
    fn drift_sends_an_approved_tool_back_to_review_and_says_what_changed() {
        let settings = Settings {
            require_tool_approval: false,
            ..Settings::default()
        };
        let srv = server(ToolEnablement::Inherit);
        let first = reconcile(&srv, &[], &offered(), &settings, "system", 1).tools;
        let again = reconcile(&srv, &first, &offered(), &settings, "system", 2);
        assert!(again.tools.is_empty());
        assert_eq!(again.report.unchanged as usize, offered().len());

        let mut changed = offered();
        changed[2].description.push_str(" Now also deletes things.");
        changed[2].input_schema["properties"]["extra"] = json!({"type": "string"});
        let drift = reconcile(&srv, &first, &changed, &settings, "system", 3);
        // Changing back to the approved definition approves it again.
        let back = reconcile(&srv, &drift.tools, &offered(), &settings, "system", 4);
        assert_eq!(back.tools[0].state, ToolState::Approved);
        assert!(back.tools[0].drift.is_empty());
        assert_eq!(
            drift.report.drifted,
            vec![(
                "sf_query".to_string(),
                vec!["description".to_string(), "input_schema".to_string()]
            )]
        );
        let tool = &drift.tools[0];
        assert_eq!(tool.state, ToolState::PendingReview);
        assert_eq!(tool.drift, ["description", "input_schema"]);
        assert_eq!(drift.events[0].action, Action::ToolDrift.as_str());
        assert!(drift.events[0].reason.contains("description, input_schema"));
    }

    #[test]
    fn tools_no_longer_offered_become_removed_and_can_come_back() {
        let settings = Settings::default();
        let srv = server(ToolEnablement::Inherit);
        let first = reconcile(&srv, &[], &offered(), &settings, "system", 1).tools;
        let fewer: Vec<_> = offered()
            .into_iter()
            .filter(|d| d.name != "search")
            .collect();
        let removed = reconcile(&srv, &first, &fewer, &settings, "system", 2);
        assert_eq!(removed.report.removed, ["sf_search"]);
        assert_eq!(removed.tools[0].state, ToolState::Removed);

        let mut known = first.clone();
        for tool in &mut known {
            if tool.definition.name == "search" {
                *tool = removed.tools[0].clone();
            }
        }
        let back = reconcile(&srv, &known, &offered(), &settings, "system", 3);
        assert_eq!(back.report.added, ["sf_search"]);
        assert_eq!(back.tools[0].id, removed.tools[0].id);
        assert_eq!(back.tools[0].state, ToolState::PendingReview);
    }
}
