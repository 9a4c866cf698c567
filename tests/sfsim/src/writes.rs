//! Record writes (create, update, delete, upsert) with Salesforce's
//! validation and error codes: read-only users, unknown and read-only
//! fields, required fields, types, lengths, restricted picklists, references
//! and unique external Ids.
//! Source: Salesforce REST API Developer Guide, "sObject Rows" and
//! "sObject Rows by External ID"; SOAP API Developer Guide, "StatusCode".

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use crate::config::UserProfile;
use crate::error::RestError;
use crate::ids;
use crate::record::{DataSource, Record};
use crate::schema::{FieldDef, FieldType, ObjectDef};
use crate::seed::{self, format_datetime};
use crate::state::{Sim, State};

fn bad(code: &'static str, message: String, fields: Vec<String>) -> RestError {
    RestError::new(StatusCode::BAD_REQUEST, code, message).with_fields(fields)
}

fn check_writer(state: &State, user: usize) -> Result<(), RestError> {
    if state.profile(user) == UserProfile::ReadOnly {
        return Err(RestError::read_only());
    }
    Ok(())
}

fn object_def(state: &State, object: &str) -> Result<ObjectDef, RestError> {
    state
        .schema
        .object(object)
        .cloned()
        .ok_or_else(RestError::not_found)
}

/// Parses an instant in the forms Salesforce accepts (RFC 3339, or
/// `+0000` offsets) and returns it in Salesforce's format.
fn datetime_value(text: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .or_else(|| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .map(|t| format_datetime(t.with_timezone(&Utc)))
}

/// Checks and normalises one value for `field`.
fn coerce(state: &State, field: &FieldDef, value: Value) -> Result<Value, RestError> {
    let parse_error = |value: &Value| {
        RestError::json(format!(
            "Cannot deserialize instance of {} from {} value {} or request may be missing a required field",
            field.field_type.as_str(),
            if value.is_string() {
                "VALUE_STRING"
            } else {
                "VALUE"
            },
            value
        ))
    };
    if value.is_null() {
        return Ok(Value::Null);
    }
    match field.field_type {
        t if t.is_text() => {
            let text = value.as_str().ok_or_else(|| parse_error(&value))?;
            if text.chars().count() > field.length as usize {
                return Err(bad(
                    "STRING_TOO_LONG",
                    format!(
                        "{}: data value too large: {text} (max length={})",
                        field.label, field.length
                    ),
                    vec![field.name.clone()],
                ));
            }
            if t == FieldType::Picklist && !field.picklist_values.iter().any(|p| p == text) {
                return Err(bad(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!(
                        "{}: bad value for restricted picklist field: {text}",
                        field.label
                    ),
                    vec![field.name.clone()],
                ));
            }
            if t == FieldType::Email && !text.is_empty() && !text.contains('@') {
                return Err(bad(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {text}", field.label),
                    vec![field.name.clone()],
                ));
            }
            Ok(value)
        }
        FieldType::Int => value
            .as_i64()
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
            .map(|n| json!(n))
            .ok_or_else(|| parse_error(&value)),
        // `"NaN"` and `"inf"` parse as f64 but are no numbers to Salesforce.
        t if t.is_numeric() => value
            .as_f64()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|n: &f64| n.is_finite())
            .map(|n| json!(n))
            .ok_or_else(|| parse_error(&value)),
        FieldType::Boolean => value
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| parse_error(&value)),
        FieldType::Date => value
            .as_str()
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(|d| json!(d.format("%Y-%m-%d").to_string()))
            .ok_or_else(|| parse_error(&value)),
        FieldType::DateTime => value
            .as_str()
            .and_then(datetime_value)
            .map(Value::String)
            .ok_or_else(|| parse_error(&value)),
        FieldType::Reference | FieldType::Id => {
            let text = value.as_str().ok_or_else(|| parse_error(&value))?;
            let id = ids::to_18(text).ok_or_else(|| {
                bad(
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {text}", field.label),
                    vec![field.name.clone()],
                )
            })?;
            let target_ok = state.record(&id).is_some_and(|r| {
                !r.deleted
                    && (field.reference_to.is_empty() || field.reference_to.contains(&r.object))
            });
            if !target_ok {
                return Err(bad(
                    "INVALID_CROSS_REFERENCE_KEY",
                    format!("{}: id value of incorrect type: {text}", field.label),
                    vec![field.name.clone()],
                ));
            }
            Ok(json!(id))
        }
        _ => Ok(value),
    }
}

/// Validates `input` for a create (`creating`) or update of `def` and
/// returns the canonical field values to write.
fn validate(
    state: &State,
    def: &ObjectDef,
    input: Map<String, Value>,
    creating: bool,
) -> Result<Vec<(String, Value)>, RestError> {
    let mut out = Vec::new();
    let mut locked = Vec::new();
    for (name, value) in input {
        if name == "attributes" {
            continue;
        }
        let field = def.field(&name).ok_or_else(|| {
            bad(
                "INVALID_FIELD",
                format!("No such column '{name}' on sobject of type {}", def.name),
                vec![],
            )
        })?;
        let writable = if creating {
            field.createable
        } else {
            field.updateable
        };
        if !writable {
            locked.push(field.name.clone());
            continue;
        }
        out.push((field.name.clone(), coerce(state, field, value)?));
    }
    if !locked.is_empty() {
        return Err(bad(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                locked.join(", ")
            ),
            locked,
        ));
    }
    let missing: Vec<String> = def
        .fields
        .iter()
        .filter(|f| f.required_on_create())
        .filter(|f| {
            let given = out.iter().find(|(n, _)| *n == f.name).map(|(_, v)| v);
            if creating {
                given.is_none_or(Value::is_null)
            } else {
                given.is_some_and(Value::is_null)
            }
        })
        .map(|f| f.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(bad(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", missing.join(", ")),
            missing,
        ));
    }
    Ok(out)
}

/// Whether two values of a field are the same for uniqueness and
/// external-Id matching: text case-insensitively (Salesforce's unique and
/// external-Id text fields are case-insensitive unless marked otherwise).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_str(), b.as_str()) {
        (Some(x), Some(y)) => x == y || x.to_lowercase() == y.to_lowercase(),
        _ => a == b,
    }
}

fn check_unique(
    state: &State,
    def: &ObjectDef,
    values: &[(String, Value)],
    except: Option<&str>,
) -> Result<(), RestError> {
    for (name, value) in values {
        let unique = def.field(name).is_some_and(|f| f.unique);
        if !unique || value.is_null() {
            continue;
        }
        if let Some(other) = state
            .records(&def.name)
            .into_iter()
            .find(|r| !r.deleted && Some(r.id.as_str()) != except && same_value(r.get(name), value))
        {
            return Err(bad(
                "DUPLICATE_VALUE",
                format!(
                    "duplicate value found: {name} duplicates value on record with id: {}",
                    other.id
                ),
                vec![],
            ));
        }
    }
    Ok(())
}

/// Recomputes derived fields: compound `Name` of Contact and Lead.
fn derive(def: &ObjectDef, record: &mut Record) {
    if matches!(def.name.as_str(), "Contact" | "Lead") {
        let first = record
            .get("FirstName")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let last = record
            .get("LastName")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = format!("{first} {last}").trim().to_owned();
        record.fields.insert("Name".into(), json!(name));
    }
}

/// Creates a record; returns its Id.
pub fn create(
    state: &mut State,
    sim: &Sim,
    user: usize,
    object: &str,
    input: Map<String, Value>,
) -> Result<String, RestError> {
    let def = object_def(state, object)?;
    check_writer(state, user)?;
    let values = validate(state, &def, input, true)?;
    check_unique(state, &def, &values, None)?;
    let id = state.new_id(&def.name);
    let now = format_datetime(Utc::now());
    let mut record = Record {
        id: id.clone(),
        object: def.name.clone(),
        fields: Default::default(),
        deleted: false,
    };
    for f in &def.fields {
        let default = match (f.name.as_str(), f.field_type) {
            ("Id", _) => json!(id),
            ("CreatedDate" | "LastModifiedDate", _) => json!(now),
            ("OwnerId", _) => json!(seed::user_id(&sim.config, user)),
            ("CaseNumber", _) => json!(format!("{:08}", 1000 + state.records(&def.name).len() + 1)),
            (_, FieldType::Boolean) => json!(false),
            (_, FieldType::Picklist) if f.defaulted_on_create => json!(f.picklist_values.first()),
            _ => Value::Null,
        };
        record.fields.insert(f.name.clone(), default);
    }
    for (name, value) in values {
        record.fields.insert(name, value);
    }
    derive(&def, &mut record);
    state.insert(record);
    Ok(id)
}

/// Updates fields of a live record.
pub fn update(
    state: &mut State,
    user: usize,
    object: &str,
    id: &str,
    input: Map<String, Value>,
) -> Result<(), RestError> {
    let def = object_def(state, object)?;
    live(state, &def, id)?;
    check_writer(state, user)?;
    let values = validate(state, &def, input, false)?;
    check_unique(state, &def, &values, Some(id))?;
    let now = format_datetime(Utc::now());
    let record = state.record_mut(id).ok_or_else(RestError::not_found)?;
    for (name, value) in values {
        record.fields.insert(name, value);
    }
    record.fields.insert("LastModifiedDate".into(), json!(now));
    derive(&def, record);
    Ok(())
}

fn live(state: &State, def: &ObjectDef, id: &str) -> Result<(), RestError> {
    match state.record(id) {
        Some(r) if r.object == def.name && !r.deleted => Ok(()),
        Some(r) if r.object == def.name => Err(RestError::new(
            StatusCode::NOT_FOUND,
            "ENTITY_IS_DELETED",
            "entity is deleted",
        )),
        _ => Err(RestError::not_found()),
    }
}

/// Deletes a record into the recycle bin, cascading to children whose
/// relationship cascades.
pub fn delete(state: &mut State, user: usize, object: &str, id: &str) -> Result<(), RestError> {
    let def = object_def(state, object)?;
    live(state, &def, id)?;
    check_writer(state, user)?;
    let mut doomed = vec![(def.name.clone(), id.to_owned())];
    let mut i = 0;
    while i < doomed.len() {
        let (obj, rid) = doomed[i].clone();
        if let Some(d) = state.schema.object(&obj) {
            for child in d.child_relationships.iter().filter(|c| c.cascade_delete) {
                for r in state.records(&child.child_sobject) {
                    if !r.deleted && r.get(&child.field).as_str() == Some(rid.as_str()) {
                        doomed.push((r.object.clone(), r.id.clone()));
                    }
                }
            }
        }
        i += 1;
    }
    for (_, rid) in doomed {
        if let Some(r) = state.record_mut(&rid) {
            r.deleted = true;
            r.fields.insert("IsDeleted".into(), json!(true));
        }
    }
    Ok(())
}

/// Upserts by external Id `field` = `value`; returns the Id and whether
/// the record was created.
pub fn upsert(
    state: &mut State,
    sim: &Sim,
    user: usize,
    object: &str,
    field: &str,
    value: &str,
    mut input: Map<String, Value>,
) -> Result<(String, bool), RestError> {
    let def = object_def(state, object)?;
    let ext = def
        .field(field)
        .filter(|f| f.external_id || f.name == "Id")
        .ok_or_else(|| {
            RestError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {field}"),
            )
        })?;
    let ext_name = ext.name.clone();
    if ext_name == "Id" {
        // Upsert by Id (15 or 18 characters) updates that record; there is
        // nothing to create.
        let id = ids::to_18(value)
            .filter(|id| {
                state
                    .record(id)
                    .is_some_and(|r| r.object == def.name && !r.deleted)
            })
            .ok_or_else(RestError::not_found)?;
        input.remove("Id");
        update(state, user, object, &id, input)?;
        return Ok((id, false));
    }
    let wanted = json!(value);
    let existing: Vec<String> = state
        .records(&def.name)
        .into_iter()
        .filter(|r| !r.deleted && same_value(r.get(&ext_name), &wanted))
        .map(|r| r.id.clone())
        .collect();
    match existing.as_slice() {
        [] => {
            input.insert(ext_name, json!(value));
            Ok((create(state, sim, user, object, input)?, false)).map(|(id, _)| (id, true))
        }
        [id] => {
            input.remove(&ext_name);
            update(state, user, object, id, input)?;
            Ok((id.clone(), false))
        }
        _ => Err(RestError::new(
            StatusCode::MULTIPLE_CHOICES,
            "MULTIPLE_CHOICES",
            format!(
                "More than one record found for external id field {ext_name} with value {value}."
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::datetime_value;

    #[test]
    fn coerced_datetimes_are_whole_seconds_in_utc() {
        for (input, stored) in [
            ("2026-03-04T17:21:09.789Z", "2026-03-04T17:21:09.000+0000"),
            (
                "2026-03-04T17:21:09.999+01:00",
                "2026-03-04T16:21:09.000+0000",
            ),
            ("2026-03-04T17:21:09.5-0130", "2026-03-04T18:51:09.000+0000"),
            ("2026-03-04T17:21:09Z", "2026-03-04T17:21:09.000+0000"),
        ] {
            assert_eq!(datetime_value(input).as_deref(), Some(stored), "{input}");
        }
        assert_eq!(datetime_value("2026-03-04"), None);
    }
}
