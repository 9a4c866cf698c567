//! The org's metadata: sObjects, their fields and child relationships, in
//! the shapes of the REST describe calls.
//!
//! Names are looked up case-insensitively, as Salesforce does, and reported
//! back with their canonical spelling.
//! Source: Salesforce REST API Developer Guide, "sObject Describe" and
//! "Describe Global".

use serde_json::{Value, json};

/// A field's data type (the describe `type` values used here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Record Id (`id`).
    Id,
    /// Text (`string`).
    String,
    /// Long text (`textarea`).
    TextArea,
    /// Picklist (`picklist`).
    Picklist,
    /// Lookup or master-detail (`reference`); the value is an Id.
    Reference,
    /// Money (`currency`), a JSON number.
    Currency,
    /// Floating point (`double`).
    Double,
    /// Whole number (`int`).
    Int,
    /// Percentage (`percent`).
    Percent,
    /// True or false (`boolean`).
    Boolean,
    /// Calendar date (`date`), `YYYY-MM-DD`.
    Date,
    /// Instant (`datetime`), `YYYY-MM-DDThh:mm:ss.000+0000`.
    DateTime,
    /// Email address (`email`).
    Email,
    /// Phone number (`phone`).
    Phone,
    /// URL (`url`).
    Url,
}

impl FieldType {
    /// The describe `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::String => "string",
            Self::TextArea => "textarea",
            Self::Picklist => "picklist",
            Self::Reference => "reference",
            Self::Currency => "currency",
            Self::Double => "double",
            Self::Int => "int",
            Self::Percent => "percent",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::DateTime => "datetime",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Url => "url",
        }
    }

    /// Whether values are JSON strings holding text (searchable, LIKE-able).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Self::String | Self::TextArea | Self::Picklist | Self::Email | Self::Phone | Self::Url
        )
    }

    /// Whether values are JSON numbers.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            Self::Currency | Self::Double | Self::Int | Self::Percent
        )
    }
}

/// One field of an sObject.
#[derive(Debug, Clone)]
pub struct FieldDef {
    /// API name, e.g. `AccountId`.
    pub name: String,
    /// Label.
    pub label: String,
    /// Type.
    pub field_type: FieldType,
    /// Maximum length for text; 18 for ids; 0 otherwise.
    pub length: u32,
    /// May be null.
    pub nillable: bool,
    /// May be set on create.
    pub createable: bool,
    /// May be set on update.
    pub updateable: bool,
    /// Custom field (`__c`).
    pub custom: bool,
    /// Marked External ID (usable for upsert).
    pub external_id: bool,
    /// Values are unique.
    pub unique: bool,
    /// For references: the object(s) it points to.
    pub reference_to: Vec<String>,
    /// For references: the relationship name used in paths (`Account`).
    pub relationship_name: Option<String>,
    /// For picklists: the values.
    pub picklist_values: Vec<String>,
    /// Set by the system on create (Id, CreatedDate, ...), or has a default.
    pub defaulted_on_create: bool,
    /// Searchable by SOSL `IN NAME FIELDS`.
    pub name_field: bool,
}

impl FieldDef {
    /// A createable, updateable, nillable standard field.
    pub fn new(name: &str, label: &str, field_type: FieldType) -> Self {
        let length = match field_type {
            FieldType::Id | FieldType::Reference => 18,
            FieldType::String | FieldType::Email | FieldType::Phone | FieldType::Url => 255,
            FieldType::TextArea => 32000,
            FieldType::Picklist => 255,
            _ => 0,
        };
        Self {
            name: name.into(),
            label: label.into(),
            field_type,
            length,
            nillable: true,
            createable: true,
            updateable: true,
            custom: name.ends_with("__c"),
            external_id: false,
            unique: false,
            reference_to: vec![],
            relationship_name: None,
            picklist_values: vec![],
            defaulted_on_create: false,
            name_field: false,
        }
    }

    /// Whether the create call must give a value: not nillable, createable,
    /// no default, not boolean (booleans default to false).
    pub fn required_on_create(&self) -> bool {
        !self.nillable
            && self.createable
            && !self.defaulted_on_create
            && self.field_type != FieldType::Boolean
    }

    /// The describe JSON of this field.
    pub fn describe(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "label": self.label,
            "type": self.field_type.as_str(),
            "length": self.length,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "custom": self.custom,
            "externalId": self.external_id,
            "referenceTo": self.reference_to,
            "relationshipName": self.relationship_name,
            "picklistValues": self.picklist_values.iter().map(|p| json!({
                "active": true, "defaultValue": false, "label": p, "value": p,
            })).collect::<Vec<_>>(),
            "defaultedOnCreate": self.defaulted_on_create,
            "nameField": self.name_field,
        });
        if self.field_type == FieldType::Currency {
            v["precision"] = json!(18);
            v["scale"] = json!(2);
        }
        if self.unique {
            v["unique"] = json!(true);
        }
        v
    }
}

/// A child relationship: records of `child_sobject` whose `field` points here.
#[derive(Debug, Clone)]
pub struct ChildRelationship {
    /// The child object, e.g. `Contact`.
    pub child_sobject: String,
    /// The child's reference field, e.g. `AccountId`.
    pub field: String,
    /// The name used in subqueries, e.g. `Contacts`.
    pub relationship_name: String,
    /// Deleting the parent deletes the children.
    pub cascade_delete: bool,
}

/// One sObject type.
#[derive(Debug, Clone)]
pub struct ObjectDef {
    /// API name, e.g. `Account`, `Invoice__c`.
    pub name: String,
    /// Label.
    pub label: String,
    /// Plural label.
    pub label_plural: String,
    /// The 3-character key prefix of its record Ids.
    pub key_prefix: String,
    /// Custom object.
    pub custom: bool,
    /// Fields, `Id` first.
    pub fields: Vec<FieldDef>,
    /// Child relationships.
    pub child_relationships: Vec<ChildRelationship>,
}

impl ObjectDef {
    /// The field called `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The reference field whose relationship name is `name` (case-insensitive).
    pub fn parent_relationship(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| {
            f.relationship_name
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(name))
        })
    }

    /// The child relationship called `name` (case-insensitive).
    pub fn child_relationship(&self, name: &str) -> Option<&ChildRelationship> {
        self.child_relationships
            .iter()
            .find(|c| c.relationship_name.eq_ignore_ascii_case(name))
    }

    /// Fields searched by SOSL `IN NAME FIELDS`.
    pub fn name_fields(&self) -> impl Iterator<Item = &FieldDef> {
        self.fields.iter().filter(|f| f.name_field)
    }

    /// The describe-global entry for API version `version` (e.g. `66.0`).
    pub fn describe_global_entry(&self, version: &str) -> Value {
        let base = format!("/services/data/v{version}/sobjects/{}", self.name);
        json!({
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": self.custom,
            "queryable": true,
            "createable": true,
            "updateable": true,
            "deletable": true,
            "searchable": true,
            "urls": {
                "sobject": base,
                "describe": format!("{base}/describe"),
                "rowTemplate": format!("{base}/{{ID}}"),
            },
        })
    }

    /// The full describe of this object.
    pub fn describe(&self, version: &str) -> Value {
        let mut v = self.describe_global_entry(version);
        v["fields"] = Value::Array(self.fields.iter().map(FieldDef::describe).collect());
        v["childRelationships"] = Value::Array(
            self.child_relationships
                .iter()
                .map(|c| {
                    json!({
                        "childSObject": c.child_sobject,
                        "field": c.field,
                        "relationshipName": c.relationship_name,
                        "cascadeDelete": c.cascade_delete,
                    })
                })
                .collect(),
        );
        v
    }
}

/// Every sObject of the org.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The objects, in describe-global order.
    pub objects: Vec<ObjectDef>,
}

impl Schema {
    /// The object called `name` (case-insensitive).
    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.objects
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
    }

    /// The object whose key prefix starts `id`.
    pub fn object_for_id(&self, id: &str) -> Option<&ObjectDef> {
        let prefix = id.get(..3)?;
        self.objects.iter().find(|o| o.key_prefix == prefix)
    }
}
