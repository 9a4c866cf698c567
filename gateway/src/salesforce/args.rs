//! Reading tool arguments. The MCP layer validates them against the
//! catalog's input schemas first; these readers still check types so a
//! direct caller gets [`SfError::InvalidArgument`] naming the field
//! rather than a panic or a silent default.
//!
//! Must not: reach Salesforce or check names against describe (that is
//! `describe`'s job).

use serde_json::{Map, Value};

use super::SfError;
use super::describe::is_api_name;

fn wrong(field: &str, what: &str) -> SfError {
    SfError::invalid(field, format!("must be {what}"))
}

/// An optional string.
pub(crate) fn opt_str<'a>(args: &'a Value, field: &str) -> Result<Option<&'a str>, SfError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong(field, "a string")),
    }
}

/// A required, non-empty string.
pub(crate) fn req_str<'a>(args: &'a Value, field: &str) -> Result<&'a str, SfError> {
    match opt_str(args, field)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(SfError::invalid(field, "is required")),
    }
}

/// A required API name (`^[A-Za-z][A-Za-z0-9_]{0,79}$`).
pub(crate) fn req_name<'a>(args: &'a Value, field: &str) -> Result<&'a str, SfError> {
    let name = req_str(args, field)?;
    if is_api_name(name) {
        Ok(name)
    } else {
        Err(wrong(field, "an API name like Account or Invoice__c"))
    }
}

/// A required record Id (15 or 18 letters and digits).
pub(crate) fn req_id<'a>(args: &'a Value, field: &str) -> Result<&'a str, SfError> {
    let id = req_str(args, field)?;
    if matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(wrong(field, "a 15- or 18-character Salesforce record Id"))
    }
}

/// An optional boolean (`default` when absent).
pub(crate) fn opt_bool(args: &Value, field: &str, default: bool) -> Result<bool, SfError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(wrong(field, "true or false")),
    }
}

/// An optional integer in `min..=max`.
pub(crate) fn opt_count(
    args: &Value,
    field: &str,
    min: u64,
    max: u64,
) -> Result<Option<usize>, SfError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n as usize)),
            _ => Err(wrong(field, &format!("an integer from {min} to {max}"))),
        },
    }
}

/// An optional list of strings.
pub(crate) fn opt_str_list(args: &Value, field: &str) -> Result<Option<Vec<String>>, SfError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| wrong(field, "a list of strings")),
        Some(_) => Err(wrong(field, "a list of strings")),
    }
}

/// A required, non-empty JSON object of field values.
pub(crate) fn req_fields<'a>(
    args: &'a Value,
    field: &str,
) -> Result<&'a Map<String, Value>, SfError> {
    match args.get(field) {
        Some(Value::Object(map)) if !map.is_empty() => {
            if let Some(bad) = map.keys().find(|k| !is_api_name(k)) {
                return Err(SfError::invalid(
                    field,
                    format!("'{bad}' is not a field API name"),
                ));
            }
            Ok(map)
        }
        Some(Value::Object(_)) => Err(SfError::invalid(field, "must name at least one field")),
        _ => Err(wrong(field, "an object of field names and values")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(e: SfError) -> String {
        match e {
            SfError::InvalidArgument { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn readers_name_the_bad_field() {
        let args = json!({"object_name": "Acc'ount", "record_id": "short", "limit": 0, "fields": {}, "flag": "yes"});
        assert_eq!(
            field_of(req_name(&args, "object_name").unwrap_err()),
            "object_name"
        );
        assert_eq!(
            field_of(req_id(&args, "record_id").unwrap_err()),
            "record_id"
        );
        assert_eq!(
            field_of(opt_count(&args, "limit", 1, 200).unwrap_err()),
            "limit"
        );
        assert_eq!(field_of(req_fields(&args, "fields").unwrap_err()), "fields");
        assert_eq!(
            field_of(opt_bool(&args, "flag", false).unwrap_err()),
            "flag"
        );
        assert_eq!(field_of(req_str(&args, "missing").unwrap_err()), "missing");
    }

    #[test]
    fn readers_return_good_values() {
        let args = json!({"object_name": "Invoice__c", "record_id": "0015g00000Q1aACAAZ", "limit": 5,
            "fields": {"Name": "x"}, "list": ["Id", "Name"]});
        assert_eq!(req_name(&args, "object_name").unwrap(), "Invoice__c");
        assert_eq!(req_id(&args, "record_id").unwrap(), "0015g00000Q1aACAAZ");
        assert_eq!(opt_count(&args, "limit", 1, 200).unwrap(), Some(5));
        assert_eq!(opt_count(&args, "absent", 1, 200).unwrap(), None);
        assert!(opt_bool(&args, "absent", true).unwrap());
        assert_eq!(req_fields(&args, "fields").unwrap().len(), 1);
        assert_eq!(
            opt_str_list(&args, "list").unwrap().unwrap(),
            ["Id", "Name"]
        );
        assert!(req_fields(&json!({"fields": {"Bad Key": 1}}), "fields").is_err());
    }
}
