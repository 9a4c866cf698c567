//! Records and the read-only view of the org's data that SOQL and SOSL
//! evaluate against.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::schema::Schema;

/// One record. Field values are JSON as the REST API returns them: text,
/// Ids, dates (`YYYY-MM-DD`) and datetimes (`YYYY-MM-DDThh:mm:ss.000+0000`)
/// as strings, numbers as numbers, booleans as booleans, missing as null.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 18-character Id.
    pub id: String,
    /// The canonical object name, e.g. `Account`.
    pub object: String,
    /// Field values by canonical field name, including `Id`.
    pub fields: BTreeMap<String, Value>,
    /// In the recycle bin: seen only by `queryAll`.
    pub deleted: bool,
}

impl Record {
    /// The value of `field` (canonical name); null if unset.
    pub fn get(&self, field: &str) -> &Value {
        self.fields.get(field).unwrap_or(&Value::Null)
    }
}

/// The REST `attributes` object of a record of `object` with `id`, for API
/// version `version` (e.g. `66.0`).
pub fn attributes(object: &str, id: &str, version: &str) -> Value {
    json!({
        "type": object,
        "url": format!("/services/data/v{version}/sobjects/{object}/{id}"),
    })
}

/// A JSON object starting with `attributes`, as every record in a REST
/// response does.
pub fn with_attributes(object: &str, id: &str, version: &str) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("attributes".into(), attributes(object, id, version));
    map
}

/// What queries and searches read: the schema and the records.
pub trait DataSource {
    /// The org's schema.
    fn schema(&self) -> &Schema;
    /// Every record of `object` (canonical name), deleted ones included,
    /// in creation order.
    fn records(&self, object: &str) -> Vec<&Record>;
    /// The record with this 18-character Id, deleted or not.
    fn record(&self, id: &str) -> Option<&Record>;
}
