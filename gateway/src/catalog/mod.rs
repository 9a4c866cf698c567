//! The built-in catalog of MCP server kinds (today: Salesforce) and their
//! tool definitions.
//!
//! The Salesforce tool definitions (names, descriptions, JSON Schemas, MCP
//! annotations) live as data in `salesforce_tools.json`, the one place they
//! are written: discovery, the control API and the MCP `tools/list` all read
//! them from here. This module does no I/O.

use std::sync::OnceLock;

use crate::model::{Classification, LoginHost, ToolAction, ToolDefinition};

/// The catalog kind of the Salesforce server.
pub const SALESFORCE: &str = "salesforce";

/// The default OAuth scopes for Salesforce: REST API access, and a refresh
/// token usable at any time (Salesforce Help: "OAuth Tokens and Scopes").
pub(crate) const SALESFORCE_DEFAULT_SCOPES: [&str; 3] = ["api", "refresh_token", "offline_access"];

/// The default Salesforce REST API version (Spring '26).
pub(crate) const SALESFORCE_DEFAULT_API_VERSION: &str = "66.0";

/// One kind of server an admin can register.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    /// Stable identifier, e.g. `salesforce`.
    pub kind: &'static str,
    /// Human name.
    pub display_name: &'static str,
    /// One paragraph for a human.
    pub description: &'static str,
    /// Default OAuth scopes.
    pub default_scopes: &'static [&'static str],
    /// The login hosts an admin chooses from (My Domain takes a URL).
    pub login_hosts: Vec<LoginHost>,
    /// Default tool prefix.
    pub default_tool_prefix: &'static str,
    /// Default API version.
    pub default_api_version: &'static str,
    /// The tools a server of this kind offers.
    pub tools: &'static [ToolDefinition],
}

fn salesforce_tools() -> &'static [ToolDefinition] {
    static TOOLS: OnceLock<Vec<ToolDefinition>> = OnceLock::new();
    TOOLS.get_or_init(|| {
        // The file is compiled in and checked by `catalog_definitions_parse`.
        serde_json::from_str(include_str!("salesforce_tools.json"))
            .expect("salesforce_tools.json is valid")
    })
}

/// Every catalog entry, ordered by kind.
pub(crate) fn entries() -> Vec<CatalogEntry> {
    vec![CatalogEntry {
        kind: SALESFORCE,
        display_name: "Salesforce",
        description: "The Salesforce Customer Platform (accounts, contacts, opportunities, cases, custom objects) through the Salesforce REST API, with per-user OAuth: each user authorizes with their own Salesforce account and every call runs under that user's permissions.",
        default_scopes: &SALESFORCE_DEFAULT_SCOPES,
        login_hosts: vec![
            LoginHost::Production,
            LoginHost::Sandbox,
            LoginHost::MyDomain(String::new()),
        ],
        default_tool_prefix: "salesforce",
        default_api_version: SALESFORCE_DEFAULT_API_VERSION,
        tools: salesforce_tools(),
    }]
}

/// The catalog entry of `kind`, if there is one.
pub fn entry(kind: &str) -> Option<CatalogEntry> {
    entries().into_iter().find(|e| e.kind == kind)
}

/// The classification a newly discovered tool gets from its MCP annotations
/// (MCP specification 2025-06-18, "ToolAnnotations"): `readOnlyHint` true is
/// READ; `destructiveHint` true is DELETE, flagged dangerous; both false is
/// WRITE. Annotations that say neither fall back to `default`.
pub(crate) fn default_classification(
    definition: &ToolDefinition,
    default: Classification,
) -> Classification {
    let hints = &definition.annotations;
    let action = match (hints.read_only_hint, hints.destructive_hint) {
        (Some(true), _) => ToolAction::Read,
        (_, Some(true)) => ToolAction::Delete,
        (Some(false), Some(false)) => ToolAction::Write,
        _ => return default,
    };
    Classification {
        action,
        sensitive: false,
        dangerous: action == ToolAction::Delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_definitions_parse_and_cover_the_salesforce_tools() {
        let entry = entry(SALESFORCE).unwrap();
        let names: Vec<&str> = entry.tools.iter().map(|t| t.name.as_str()).collect();
        // Every catalog tool is implemented, and nothing else is.
        assert_eq!(names, crate::salesforce::TOOL_NAMES);
        for tool in entry.tools {
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
            assert!(!tool.description.is_empty());
            assert!(tool.annotations.read_only_hint.is_some(), "{}", tool.name);
        }
    }

    #[test]
    fn classification_follows_annotations() {
        let fallback = Classification {
            action: ToolAction::Write,
            sensitive: true,
            dangerous: false,
        };
        let by_name = |name: &str| {
            let entry = entry(SALESFORCE).unwrap();
            let def = entry.tools.iter().find(|t| t.name == name).unwrap().clone();
            default_classification(&def, fallback).action
        };
        assert_eq!(by_name("query"), ToolAction::Read);
        assert_eq!(by_name("create_record"), ToolAction::Write);
        assert_eq!(by_name("delete_record"), ToolAction::Delete);
        let mut bare = entry(SALESFORCE).unwrap().tools[0].clone();
        bare.annotations = Default::default();
        assert_eq!(default_classification(&bare, fallback), fallback);
    }
}
