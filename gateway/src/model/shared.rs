//! Tool definitions shared between the tools that carry the same one.
//!
//! Every Salesforce server offers the same 13 catalog tools, so a store
//! with 770 servers holds 10,010 tools but only 13 distinct definitions
//! (and as many approved definitions, usually the same ones). Decoded as
//! one `serde_json::Value` tree per tool, those definitions were most of
//! the daemon's memory (BENCHMARKS.md, issue 17). [`Tool`](super::Tool)
//! holds its definitions as `Arc<ToolDefinition>`; decoding looks the
//! stored text up here first and reuses a definition still alive
//! elsewhere, parsing the text only when none is.
//!
//! Entries are weak: a definition no tool holds any more is freed, and its
//! entry is swept once the table has doubled since the last sweep.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::ToolDefinition;

/// Live definitions by the SHA-256 of their stored JSON text.
struct Table {
    live: HashMap<[u8; 32], Weak<ToolDefinition>>,
    /// Sweep dead entries when `live` reaches this many.
    sweep_at: usize,
}

const FIRST_SWEEP: usize = 1024;

static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(|| {
    Mutex::new(Table {
        live: HashMap::new(),
        sweep_at: FIRST_SWEEP,
    })
});

/// The definition whose JSON text is `text`: one still held elsewhere if
/// there is one, else parsed from `text` (and shared from then on).
///
/// Errors: `text` is not a valid definition (as serde_json reports it).
pub(super) fn intern(text: &str) -> Result<Arc<ToolDefinition>, serde_json::Error> {
    let key: [u8; 32] = Sha256::digest(text.as_bytes()).into();
    if let Some(found) = lock().live.get(&key).and_then(Weak::upgrade) {
        return Ok(found);
    }
    // Parsed without the lock; two threads decoding the same new text at
    // once each parse it, and the later one's entry stays.
    let parsed = Arc::new(serde_json::from_str::<ToolDefinition>(text)?);
    let mut table = lock();
    table.live.insert(key, Arc::downgrade(&parsed));
    if table.live.len() >= table.sweep_at {
        table.live.retain(|_, weak| weak.strong_count() > 0);
        table.sweep_at = (table.live.len() * 2).max(FIRST_SWEEP);
    }
    Ok(parsed)
}

fn lock() -> std::sync::MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// `deserialize_with` for [`Tool::definition`](super::Tool::definition).
pub(super) fn definition<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Arc<ToolDefinition>, D::Error> {
    let raw = <Box<RawValue>>::deserialize(deserializer)?;
    intern(raw.get()).map_err(serde::de::Error::custom)
}

/// `deserialize_with` for
/// [`Tool::approved_definition`](super::Tool::approved_definition).
pub(super) fn approved<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Arc<ToolDefinition>>, D::Error> {
    let raw = <Option<Box<RawValue>>>::deserialize(deserializer)?;
    raw.map(|raw| intern(raw.get()).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tool;

    fn tool_json(id: &str, schema_max: u32) -> String {
        serde_json::json!({
            "id": id, "server_id": "s", "name": format!("p_{id}"),
            "definition": {"name": "query", "title": "Query", "description": "Runs SOQL",
                "input_schema": {"type": "object", "properties": {"soql": {"type": "string", "maxLength": schema_max}}}},
            "definition_hash": "h", "approved_hash": "h",
            "approved_definition": {"name": "query", "title": "Query", "description": "Runs SOQL",
                "input_schema": {"type": "object", "properties": {"soql": {"type": "string", "maxLength": schema_max}}}},
            "state": "APPROVED",
            "classification": {"action": "READ", "sensitive": false, "dangerous": false},
            "discovered_at": 1, "updated_at": 2, "updated_by": "admin"
        })
        .to_string()
    }

    #[test]
    fn tools_with_the_same_stored_definition_share_one() {
        let a: Tool = serde_json::from_str(&tool_json("a", 7001)).unwrap();
        let b: Tool = serde_json::from_slice(tool_json("b", 7001).as_bytes()).unwrap();
        assert!(Arc::ptr_eq(&a.definition, &b.definition));
        assert!(Arc::ptr_eq(
            &a.definition,
            a.approved_definition.as_ref().unwrap()
        ));
        assert_eq!(
            a.definition.input_schema["properties"]["soql"]["maxLength"],
            7001
        );
        let c: Tool = serde_json::from_str(&tool_json("c", 7002)).unwrap();
        assert!(!Arc::ptr_eq(&a.definition, &c.definition));
        assert_eq!(
            c.definition.input_schema["properties"]["soql"]["maxLength"],
            7002
        );
    }

    #[test]
    fn a_definition_no_tool_holds_is_parsed_again() {
        let a: Tool = serde_json::from_str(&tool_json("a", 7003)).unwrap();
        let weak = Arc::downgrade(&a.definition);
        drop(a);
        assert!(weak.upgrade().is_none(), "freed with its last tool");
        let b: Tool = serde_json::from_str(&tool_json("b", 7003)).unwrap();
        assert_eq!(b.definition.name, "query");
        assert_eq!(
            b.definition.input_schema["properties"]["soql"]["maxLength"],
            7003
        );
    }

    #[test]
    fn a_tool_round_trips_through_json_and_a_value() {
        let a: Tool = serde_json::from_str(&tool_json("a", 7004)).unwrap();
        let text = serde_json::to_string(&a).unwrap();
        let b: Tool = serde_json::from_str(&text).unwrap();
        assert_eq!(a, b);
        let value = serde_json::to_value(&a).unwrap();
        let c: Tool = serde_json::from_value(value).unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn a_bad_definition_is_an_error() {
        let text = tool_json("a", 7005).replace("\"input_schema\"", "\"input_schemas\"");
        let err = serde_json::from_str::<Tool>(&text).unwrap_err();
        assert!(err.to_string().contains("input_schema"), "{err}");
    }
}
