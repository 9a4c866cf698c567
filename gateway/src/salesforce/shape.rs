//! Salesforce records as tools return them, and their text rendering.
//!
//! Owns: dropping each record's `attributes` while keeping its type and
//! Id (`{"type": "Account", "Id": "001...", "Name": ...}`), for nested
//! parent records too; child subquery results as `{"total_size", "done",
//! "records"}` (plus `next_cursor` when Salesforce paged them and the
//! caller can sign one, see [`record_with`]); and the
//! compact, size-bounded text lines (`Account 001... Name=Acme,
//! Industry=Energy`).
//!
//! Must not: fetch anything or change field values.
//!
//! Source: REST API Developer Guide, "Query" (records carry
//! `attributes {type, url}`; parents are nested records or null; child
//! subqueries are nested query results or null).

use serde_json::{Map, Value};

use super::cursor;

/// The most characters of text a tool returns (about 16 KiB).
pub(crate) const TEXT_BUDGET: usize = 16 * 1024;

/// The most characters of one record's text line.
pub(crate) const LINE_BUDGET: usize = 600;

/// The most characters of one value in a text line.
const VALUE_BUDGET: usize = 120;

/// Shapes one record (or any value holding records): `attributes`
/// dropped, `type` from it kept, `Id` kept (taken from `attributes.url`
/// when the query did not select it), child subquery results renamed to
/// snake_case keys. Child pages get no `next_cursor` (see
/// [`record_with`]).
pub(crate) fn record(value: Value) -> Value {
    record_with(value, &|_| None)
}

/// Turns a child subquery's `nextRecordsUrl` into the `next_cursor` the
/// agent continues it with, or `None` to leave it out.
pub(crate) type Signer<'s> = &'s dyn Fn(&str) -> Option<String>;

/// As [`record`], with `sign` turning a child subquery's
/// `nextRecordsUrl` (already checked by [`cursor::check_query_path`])
/// into the `next_cursor` the agent continues it with.
pub(crate) fn record_with(value: Value, sign: Signer<'_>) -> Value {
    match value {
        Value::Object(map) => object(map, sign, &|_, v| record_with(v, sign)),
        Value::Array(list) => {
            Value::Array(list.into_iter().map(|v| record_with(v, sign)).collect())
        }
        other => other,
    }
}

/// Shapes one object whose values `shape(key, value)` finishes: the
/// `attributes`, `totalSize` and `done` values arrive as Salesforce sent
/// them (a child result keeps its `totalSize` and `done` as they are),
/// the others as `shape` leaves them.
fn object(
    mut map: Map<String, Value>,
    sign: Signer<'_>,
    shape: &dyn Fn(&str, Value) -> Value,
) -> Value {
    if is_query_result(&map) {
        return child_result(map, sign, shape);
    }
    let mut out = Map::new();
    if let Some(Value::Object(attributes)) = map.remove("attributes") {
        if let Some(t) = attributes.get("type") {
            out.insert("type".into(), t.clone());
        }
        if !map.contains_key("Id")
            && let Some(id) = attributes
                .get("url")
                .and_then(Value::as_str)
                .and_then(id_from_url)
        {
            out.insert("Id".into(), Value::String(id));
        }
    }
    for (k, v) in map {
        let v = shape(&k, v);
        out.insert(k, v);
    }
    Value::Object(out)
}

fn is_query_result(map: &Map<String, Value>) -> bool {
    map.get("records").is_some_and(Value::is_array)
        && map.contains_key("totalSize")
        && map.contains_key("done")
}

fn child_result(
    mut map: Map<String, Value>,
    sign: Signer<'_>,
    shape: &dyn Fn(&str, Value) -> Value,
) -> Value {
    let mut out = Map::new();
    out.insert(
        "total_size".into(),
        map.remove("totalSize").unwrap_or(Value::Null),
    );
    out.insert("done".into(), map.remove("done").unwrap_or(Value::Null));
    if let Some(next) = map.get("nextRecordsUrl").and_then(Value::as_str)
        && cursor::check_query_path(next).is_ok()
        && let Some(signed) = sign(next)
    {
        out.insert("next_cursor".into(), Value::String(signed));
    }
    out.insert(
        "records".into(),
        shape("records", map.remove("records").unwrap_or(Value::Null)),
    );
    Value::Object(out)
}

/// Decodes one record from Salesforce's JSON and shapes it in the same
/// pass, without building the raw record first: the result is the
/// [`record_with`] of the decoded value, key order included (the values
/// of `attributes`, `totalSize` and `done` are decoded as they are and
/// shaped, when they must be, once their object is complete).
///
/// Errors: serde_json's, for text that is not JSON.
pub(crate) fn decode_record(json: &[u8], sign: Signer<'_>) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = serde::de::DeserializeSeed::deserialize(Shaping { sign }, &mut de)?;
    de.end()?;
    Ok(value)
}

/// The serde seed and visitor of [`decode_record`].
#[derive(Clone, Copy)]
struct Shaping<'s> {
    sign: Signer<'s>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Shaping<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Shaping<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As serde_json's own `Value` does.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(self)? {
            list.push(v);
        }
        Ok(Value::Array(list))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = if is_kept_raw(&key) {
                access.next_value::<Value>()?
            } else {
                access.next_value_seed(self)?
            };
            map.insert(key, value);
        }
        let sign = self.sign;
        Ok(object(map, sign, &|k, v| {
            if k != "attributes" && is_kept_raw(k) {
                record_with(v, sign)
            } else {
                v
            }
        }))
    }
}

/// The keys whose values [`object`] may need as Salesforce sent them.
fn is_kept_raw(key: &str) -> bool {
    matches!(key, "attributes" | "totalSize" | "done")
}

/// The length in bytes of `value` as compact JSON
/// (`serde_json::to_string(value).len()`), counted without building the
/// text.
pub(crate) fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => 0,
    }
}

/// The last path segment of a record URL when it looks like an Id.
fn id_from_url(url: &str) -> Option<String> {
    let last = url.rsplit('/').next()?;
    (matches!(last.len(), 15 | 18) && last.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| last.to_owned())
}

/// One line for a shaped record: `Type Id Field=value, Parent.Field=value,
/// Children=[n records]`, at most [`LINE_BUDGET`] characters.
pub(crate) fn record_line(record: &Value) -> String {
    let Some(map) = record.as_object() else {
        return clip(&record.to_string(), LINE_BUDGET);
    };
    let mut head: Vec<String> = Vec::new();
    for key in ["type", "Id"] {
        if let Some(v) = map.get(key).and_then(Value::as_str) {
            head.push(v.to_owned());
        }
    }
    let mut pairs = Vec::new();
    flatten("", map, &mut pairs);
    let line = match (head.is_empty(), pairs.is_empty()) {
        (true, _) => pairs.join(", "),
        (false, true) => head.join(" "),
        (false, false) => format!("{} {}", head.join(" "), pairs.join(", ")),
    };
    clip(&line, LINE_BUDGET)
}

/// `Field=value` pairs of a shaped record (parents flattened as
/// `Parent.Field=value`, children summarised), without `type` and `Id`.
pub(crate) fn field_pairs(record: &Value) -> Vec<String> {
    let mut pairs = Vec::new();
    if let Some(map) = record.as_object() {
        flatten("", map, &mut pairs);
    }
    pairs
}

fn flatten(prefix: &str, map: &Map<String, Value>, out: &mut Vec<String>) {
    for (key, value) in map {
        if key == "type" || (prefix.is_empty() && key == "Id") {
            continue;
        }
        let name = format!("{prefix}{key}");
        match value {
            Value::Object(child) if child.contains_key("records") => {
                let records = child
                    .get("records")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let total = child
                    .get("total_size")
                    .and_then(Value::as_u64)
                    .unwrap_or(records.len() as u64);
                let shown: Vec<String> = records.iter().take(3).map(record_line).collect();
                let more = if records.len() > 3 { "; ..." } else { "" };
                out.push(format!(
                    "{name}=[{total} {}: {}{more}]",
                    plural(total, "record"),
                    shown.join("; ")
                ));
            }
            Value::Object(child) => flatten(&format!("{name}."), child, out),
            other => out.push(format!("{name}={}", value_text(other))),
        }
    }
}

/// A value as text: strings unquoted with newlines shown as `\n`, at most
/// about 120 characters.
pub(crate) fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => clip(&s.replace('\r', "").replace('\n', "\\n"), VALUE_BUDGET),
        other => clip(&other.to_string(), VALUE_BUDGET),
    }
}

/// `text` cut to `max` characters, with `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `word` or `words` for `n`.
pub(crate) fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

/// A header line then one line per item, stopping near [`TEXT_BUDGET`]
/// with a note of how many lines were left out.
pub(crate) fn bounded_lines(header: &str, lines: impl IntoIterator<Item = String>) -> String {
    let mut text = header.to_owned();
    let mut lines = lines.into_iter().peekable();
    while let Some(line) = lines.next() {
        if text.len() + line.len() + 1 > TEXT_BUDGET {
            let left = 1 + lines.count();
            text.push_str(&format!(
                "\n... {left} more not shown here (they are in the structured result)"
            ));
            break;
        }
        text.push('\n');
        text.push_str(&line);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn relationships_page() -> Value {
        // The shape of query_relationships.json (REST API, "Query").
        json!([
            {
                "attributes": {"type": "Contact", "url": "/services/data/v66.0/sobjects/Contact/0035g00000K9xYzAAJ"},
                "Id": "0035g00000K9xYzAAJ",
                "Name": "Rita Souza",
                "Account": {
                    "attributes": {"type": "Account", "url": "/services/data/v66.0/sobjects/Account/0015g00000Q1aACAAZ"},
                    "Name": "Edge Communications"
                },
                "Cases": {
                    "totalSize": 1, "done": true,
                    "records": [{
                        "attributes": {"type": "Case", "url": "/services/data/v66.0/sobjects/Case/5005g00000A1b2cAAB"},
                        "Id": "5005g00000A1b2cAAB", "Subject": "Router keeps rebooting"
                    }]
                }
            },
            {
                "attributes": {"type": "Contact", "url": "/services/data/v66.0/sobjects/Contact/0035g00000K9xZ0AAJ"},
                "Id": "0035g00000K9xZ0AAJ", "Name": "João Souza", "Account": null, "Cases": null
            }
        ])
    }

    #[test]
    fn attributes_go_but_type_and_id_stay_at_every_level() {
        let shaped = record(relationships_page());
        assert_eq!(
            shaped,
            json!([
                {
                    "type": "Contact", "Id": "0035g00000K9xYzAAJ", "Name": "Rita Souza",
                    "Account": {"type": "Account", "Id": "0015g00000Q1aACAAZ", "Name": "Edge Communications"},
                    "Cases": {"total_size": 1, "done": true, "records": [
                        {"type": "Case", "Id": "5005g00000A1b2cAAB", "Subject": "Router keeps rebooting"}
                    ]}
                },
                {"type": "Contact", "Id": "0035g00000K9xZ0AAJ", "Name": "João Souza", "Account": null, "Cases": null}
            ])
        );
    }

    #[test]
    fn aggregate_rows_keep_their_type_without_an_id() {
        let shaped = record(
            json!({"attributes": {"type": "AggregateResult"}, "StageName": "Closed Won", "n": 4}),
        );
        assert_eq!(
            shaped,
            json!({"type": "AggregateResult", "StageName": "Closed Won", "n": 4})
        );
        let line = record_line(&shaped);
        assert!(line.starts_with("AggregateResult "), "{line}");
        assert!(
            line.contains("StageName=Closed Won") && line.contains("n=4"),
            "{line}"
        );
    }

    #[test]
    fn child_pages_get_a_cursor_from_the_signer() {
        let raw = json!({
            "attributes": {"type": "Account"}, "Id": "0015g00000Q1aACAAZ",
            "Contacts": {"totalSize": 300, "done": false, "nextRecordsUrl": "/services/data/v66.0/query/01gX-200", "records": []},
            "Cases": {"totalSize": 3, "done": false, "nextRecordsUrl": "https://evil.example/x", "records": []}
        });
        let shaped = record_with(raw.clone(), &|next| Some(format!("signed:{next}")));
        assert_eq!(
            shaped["Contacts"]["next_cursor"],
            "signed:/services/data/v66.0/query/01gX-200"
        );
        assert!(
            shaped["Cases"].get("next_cursor").is_none(),
            "not a query path"
        );
        assert!(record(raw)["Contacts"].get("next_cursor").is_none());
    }

    #[test]
    fn lines_are_compact_and_flatten_parents_and_children() {
        let shaped = record(relationships_page());
        // Key order follows serde_json's map (Salesforce's order with
        // `preserve_order`), so check the parts.
        let line = record_line(&shaped[0]);
        assert!(line.starts_with("Contact 0035g00000K9xYzAAJ "), "{line}");
        for part in [
            "Name=Rita Souza",
            "Account.Id=0015g00000Q1aACAAZ",
            "Account.Name=Edge Communications",
            "Cases=[1 record: Case 5005g00000A1b2cAAB Subject=Router keeps rebooting]",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
        assert!(!line.contains("type="), "{line}");
        let line = record_line(&shaped[1]);
        assert!(line.starts_with("Contact 0035g00000K9xZ0AAJ "), "{line}");
        assert!(
            line.contains("Account=null") && line.contains("Cases=null"),
            "{line}"
        );
    }

    #[test]
    fn long_values_and_long_texts_are_bounded() {
        let long = json!({"type": "Account", "Id": "0015g00000Q1aACAAZ", "Description": "x\n".repeat(500)});
        let line = record_line(&long);
        assert!(line.chars().count() < 200, "{line}");
        assert!(line.contains("x\\nx"));
        let text = bounded_lines(
            "header",
            (0..5000).map(|i| format!("line {i} {}", "y".repeat(50))),
        );
        assert!(text.len() <= TEXT_BUDGET + 100);
        assert!(text.ends_with("more not shown here (they are in the structured result)"));
        assert!(text.starts_with("header\nline 0 "));
    }
}
