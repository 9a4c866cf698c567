//! Record Ids against the object they are given for: the first three
//! characters of a record Id are its object's key prefix (`001` Account,
//! `003` Contact, `a0B...` a custom object), so an Id of another object
//! can be refused with a clear message before Salesforce answers a bare
//! `NOT_FOUND`.
//!
//! Must not: refuse an Id when the object has no key prefix in describe
//! global (some system objects), or guess prefixes: they come from the
//! org's describe global (`keyPrefix`).
//!
//! Source: REST API Developer Guide, "Describe Global" (`keyPrefix`);
//! Salesforce Help, "Find the Salesforce ID for a Record" (the first
//! three characters name the object).

use serde_json::Value;

use super::describe::{self, Name};
use super::{Ctx, SfError};

/// The object (Salesforce's spelling) whose key prefix is `prefix`,
/// among describe global's `sobjects`.
fn owner_of<'v>(objects: &'v Value, prefix: &str) -> Option<&'v str> {
    objects
        .get("sobjects")?
        .as_array()?
        .iter()
        .find(|o| o.get("keyPrefix").and_then(Value::as_str) == Some(prefix))
        .and_then(|o| o.get("name").and_then(Value::as_str))
}

/// The key prefix of `object` in describe global, if it has one.
fn prefix_of<'v>(objects: &'v Value, object: &Name) -> Option<&'v str> {
    objects
        .get("sobjects")?
        .as_array()?
        .iter()
        .find(|o| o.get("name").and_then(Value::as_str) == Some(object.as_str()))
        .and_then(|o| o.get("keyPrefix").and_then(Value::as_str))
        .filter(|p| p.len() == 3)
}

/// The message for an Id of the wrong object, or `None` when `id` fits.
pub(crate) fn mismatch(objects: &Value, field: &str, id: &str, object: &Name) -> Option<SfError> {
    let prefix = prefix_of(objects, object)?;
    let given = id.get(..3)?;
    if given == prefix {
        return None;
    }
    let whose = match owner_of(objects, given) {
        Some(other) => format!(
            "{id} is a{} {other} Id, not a{} {object} Id",
            article(other),
            article(object.as_str())
        ),
        None => format!("{id} is not a{} {object} Id", article(object.as_str())),
    };
    Some(SfError::invalid(
        field,
        format!(
            "{whose} ({object} Ids start with {prefix}); pass an Id of the object you name, or name the object this Id belongs to"
        ),
    ))
}

/// `n` when "a" before `word` must be "an" (it starts with a vowel).
fn article(word: &str) -> &'static str {
    match word.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "n",
        _ => "",
    }
}

/// Checks that record Id `id` (argument `field`) belongs to `object`, by
/// key prefix from describe global (cached). Errors:
/// [`SfError::InvalidArgument`] naming `field`, the object the Id belongs
/// to when known, and the expected prefix.
pub(crate) async fn check_prefix(
    ctx: &Ctx<'_>,
    field: &str,
    id: &str,
    object: &Name,
) -> Result<(), SfError> {
    let (objects, _) = describe::objects_list(ctx, false).await?;
    match mismatch(&objects, field, id, object) {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn global() -> Value {
        json!({"sobjects": [
            {"name": "Account", "keyPrefix": "001"},
            {"name": "Contact", "keyPrefix": "003"},
            {"name": "Invoice__c", "keyPrefix": "a0B"},
            {"name": "AccountShare", "keyPrefix": null},
        ]})
    }

    #[test]
    fn ids_of_another_object_are_named() {
        let account = Name::for_tests("Account");
        let err = mismatch(&global(), "record_id", "0035g00000K9xYzAAJ", &account)
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "invalid argument record_id: 0035g00000K9xYzAAJ is a Contact Id, not an Account Id (Account Ids start with 001); pass an Id of the object you name, or name the object this Id belongs to"
        );
        let invoice = Name::for_tests("Invoice__c");
        let err = mismatch(&global(), "record_id", "0zz000000000001", &invoice)
            .unwrap()
            .to_string();
        assert!(
            err.contains("0zz000000000001 is not an Invoice__c Id (Invoice__c Ids start with a0B)"),
            "{err}"
        );
        assert!(mismatch(&global(), "record_id", "0015g00000Q1aACAAZ", &account).is_none());
        let share = Name::for_tests("AccountShare");
        assert!(mismatch(&global(), "record_id", "0015g00000Q1aACAAZ", &share).is_none());
    }
}
