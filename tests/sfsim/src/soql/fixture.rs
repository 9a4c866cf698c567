//! A small org for the SOQL and SOSL tests: Users, Accounts, Contacts,
//! Cases and Opportunities, in memory, with `now` = 2026-03-18T12:00:00Z
//! (a Wednesday).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{QueryOptions, QueryResult, SoqlError, query};
use crate::ids;
use crate::record::{DataSource, Record};
use crate::schema::{ChildRelationship, FieldDef, FieldType as T, ObjectDef, Schema};

/// The schema and the records.
pub(crate) struct Org {
    pub schema: Schema,
    pub records: Vec<Record>,
}

impl DataSource for Org {
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn records(&self, object: &str) -> Vec<&Record> {
        self.records.iter().filter(|r| r.object == object).collect()
    }
    fn record(&self, id: &str) -> Option<&Record> {
        self.records.iter().find(|r| r.id == id)
    }
}

fn field(name: &str, ty: T) -> FieldDef {
    let mut f = FieldDef::new(name, name, ty);
    f.name_field = name == "Name";
    f
}

fn reference(name: &str, to: &str, rel: &str) -> FieldDef {
    let mut f = FieldDef::new(name, name, T::Reference);
    f.reference_to = vec![to.into()];
    f.relationship_name = Some(rel.into());
    f
}

fn child(object: &str, field: &str, rel: &str) -> ChildRelationship {
    ChildRelationship {
        child_sobject: object.into(),
        field: field.into(),
        relationship_name: rel.into(),
        cascade_delete: false,
    }
}

fn object(
    name: &str,
    prefix: &str,
    fields: Vec<FieldDef>,
    children: Vec<ChildRelationship>,
) -> ObjectDef {
    let mut all = vec![field("Id", T::Id)];
    all.extend(fields);
    ObjectDef {
        name: name.into(),
        label: name.into(),
        label_plural: format!("{name}s"),
        key_prefix: prefix.into(),
        custom: false,
        fields: all,
        child_relationships: children,
    }
}

/// The fixture schema.
pub(crate) fn schema() -> Schema {
    Schema {
        objects: vec![
            object(
                "User",
                "005",
                vec![field("Name", T::String), field("Email", T::Email)],
                vec![],
            ),
            object(
                "Account",
                "001",
                vec![
                    field("Name", T::String),
                    field("Industry", T::Picklist),
                    field("AnnualRevenue", T::Currency),
                    field("NumberOfEmployees", T::Int),
                    field("BillingCity", T::String),
                    field("Phone", T::Phone),
                    field("Active__c", T::Boolean),
                    field("Description", T::TextArea),
                    field("CreatedDate", T::DateTime),
                    reference("OwnerId", "User", "Owner"),
                ],
                vec![
                    child("Contact", "AccountId", "Contacts"),
                    child("Opportunity", "AccountId", "Opportunities"),
                ],
            ),
            object(
                "Contact",
                "003",
                vec![
                    field("FirstName", T::String),
                    field("LastName", T::String),
                    field("Name", T::String),
                    field("Email", T::Email),
                    field("Phone", T::Phone),
                    reference("AccountId", "Account", "Account"),
                ],
                vec![child("Case", "ContactId", "Cases")],
            ),
            object(
                "Case",
                "500",
                vec![
                    field("Subject", T::String),
                    field("Status", T::Picklist),
                    reference("ContactId", "Contact", "Contact"),
                ],
                vec![],
            ),
            object(
                "Opportunity",
                "006",
                vec![
                    field("Name", T::String),
                    field("StageName", T::Picklist),
                    field("Amount", T::Currency),
                    field("CloseDate", T::Date),
                    reference("AccountId", "Account", "Account"),
                ],
                vec![],
            ),
        ],
    }
}

/// The Id of the `n`th record with key `prefix`.
pub(crate) fn id(prefix: &str, n: u64) -> String {
    ids::make(prefix, "5g", n)
}

fn record(object: &str, prefix: &str, n: u64, deleted: bool, fields: Value) -> Record {
    let id = id(prefix, n);
    let mut map: std::collections::BTreeMap<String, Value> = fields
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    map.insert("Id".into(), json!(id));
    Record {
        id,
        object: object.into(),
        fields: map,
        deleted,
    }
}

/// Account `n` (1-6; 6 is deleted).
pub(crate) fn acct(n: u64) -> String {
    id("001", n)
}

/// Contact `n` (1-5; 4 is deleted).
pub(crate) fn contact(n: u64) -> String {
    id("003", n)
}

/// The fixture org.
pub(crate) fn org() -> Org {
    let user = |n| json!(id("005", n));
    let mut records = vec![
        record(
            "User",
            "005",
            1,
            false,
            json!({"Name": "Ada Admin", "Email": "ada@acme.example"}),
        ),
        record(
            "User",
            "005",
            2,
            false,
            json!({"Name": "Bob Builder", "Email": "bob@acme.example"}),
        ),
        record(
            "Account",
            "001",
            1,
            false,
            json!({"Name": "Ålesund Fiskeri AS", "Industry": "Agriculture", "AnnualRevenue": 12500000.0, "NumberOfEmployees": 40, "BillingCity": "Ålesund", "Phone": "+47 70 12 34 56", "Active__c": true, "CreatedDate": "2026-03-18T08:00:00.000+0000", "OwnerId": user(1)}),
        ),
        record(
            "Account",
            "001",
            2,
            false,
            json!({"Name": "Burlington Textiles Corp of America", "Industry": "Apparel", "AnnualRevenue": 350000000.0, "NumberOfEmployees": 9000, "BillingCity": "Burlington", "Phone": "(336) 222-7000", "Active__c": false, "CreatedDate": "2026-03-17T23:59:59.000+0000", "OwnerId": user(2)}),
        ),
        record(
            "Account",
            "001",
            3,
            false,
            json!({"Name": "Edge Communications", "Industry": "Electronics", "AnnualRevenue": 139000000.0, "NumberOfEmployees": 1000, "BillingCity": "Austin", "Phone": "(512) 757-6000", "Active__c": true, "CreatedDate": "2026-02-10T12:00:00.000+0000", "OwnerId": user(1), "Description": "Fiber and routers"}),
        ),
        record(
            "Account",
            "001",
            4,
            false,
            json!({"Name": "GenePoint", "Industry": "Biotechnology", "AnnualRevenue": 30000000.0, "NumberOfEmployees": 265, "BillingCity": "Mountain View", "Phone": "(650) 867-3450", "Active__c": true, "CreatedDate": "2026-03-01T00:00:00.000+0000", "OwnerId": null}),
        ),
        record(
            "Account",
            "001",
            5,
            false,
            json!({"Name": "O'Brien & Sons \\ Logistics", "Industry": null, "AnnualRevenue": null, "BillingCity": null, "Phone": null, "Active__c": false, "CreatedDate": "2025-12-31T23:00:00.000+0000"}),
        ),
        record(
            "Account",
            "001",
            6,
            true,
            json!({"Name": "Deleted Industries", "Industry": "Apparel", "AnnualRevenue": 1.0, "BillingCity": "Austin", "Active__c": true, "CreatedDate": "2026-03-10T10:00:00.000+0000"}),
        ),
        record(
            "Contact",
            "003",
            1,
            false,
            json!({"FirstName": "Rita", "LastName": "Souza", "Name": "Rita Souza", "Email": "rita.souza@edge.example", "Phone": "(512) 555-0101", "AccountId": acct(3)}),
        ),
        record(
            "Contact",
            "003",
            2,
            false,
            json!({"FirstName": "João", "LastName": "Souza", "Name": "João Souza", "Email": "joao@example.org", "AccountId": null}),
        ),
        record(
            "Contact",
            "003",
            3,
            false,
            json!({"FirstName": "Tim", "LastName": "Barr", "Name": "Tim Barr", "Email": "tim.barr@burlington.example", "Phone": "(336) 555-0199", "AccountId": acct(2)}),
        ),
        record(
            "Contact",
            "003",
            4,
            true,
            json!({"FirstName": "Old", "LastName": "Souza", "Name": "Old Souza", "AccountId": acct(3)}),
        ),
        record(
            "Contact",
            "003",
            5,
            false,
            json!({"FirstName": "Kari", "LastName": "Nordmann", "Name": "Kari Nordmann", "Email": "kari@alesund.example", "AccountId": acct(1)}),
        ),
        record(
            "Case",
            "500",
            1,
            false,
            json!({"Subject": "Router keeps rebooting", "Status": "New", "ContactId": contact(1)}),
        ),
        record(
            "Case",
            "500",
            2,
            false,
            json!({"Subject": "Billing question", "Status": "Closed", "ContactId": contact(3)}),
        ),
        record(
            "Case",
            "500",
            3,
            true,
            json!({"Subject": "Deleted case", "Status": "New", "ContactId": contact(1)}),
        ),
    ];
    let opps = [
        (
            "Edge Emergency Generator",
            "Closed Won",
            500000.0,
            "2026-03-18",
            Some(3),
        ),
        (
            "Burlington Uniforms",
            "Closed Won",
            250000.0,
            "2026-03-04",
            Some(2),
        ),
        (
            "Ålesund Nets",
            "Closed Won",
            100000.0,
            "2026-02-15",
            Some(1),
        ),
        (
            "GenePoint Lab",
            "Closed Won",
            65000.0,
            "2026-03-25",
            Some(4),
        ),
        (
            "Ålesund Boats",
            "Prospecting",
            10000.0,
            "2026-03-19",
            Some(1),
        ),
        (
            "Burlington Scarves",
            "Prospecting",
            20000.0,
            "2026-03-17",
            Some(2),
        ),
        ("Edge Fiber", "Prospecting", 30000.0, "2026-04-10", Some(3)),
        (
            "GenePoint Reagents",
            "Prospecting",
            15000.0,
            "2026-01-05",
            Some(4),
        ),
        (
            "O'Brien Trucks",
            "Prospecting",
            25000.0,
            "2026-03-28",
            Some(5),
        ),
        (
            "Unassigned Lead",
            "Prospecting",
            20000.0,
            "2026-03-11",
            None,
        ),
        (
            "100% Renewal_2026",
            "Prospecting",
            500.0,
            "2026-03-12",
            Some(2),
        ),
    ];
    for (n, (name, stage, amount, close, account)) in opps.into_iter().enumerate() {
        records.push(record(
            "Opportunity",
            "006",
            n as u64 + 1,
            false,
            json!({
                "Name": name, "StageName": stage, "Amount": amount, "CloseDate": close,
                "AccountId": account.map(acct),
            }),
        ));
    }
    records.push(record(
        "Opportunity",
        "006",
        12,
        true,
        json!({
            "Name": "Deleted Deal", "StageName": "Closed Won", "Amount": 1000000.0,
            "CloseDate": "2026-03-18", "AccountId": acct(3),
        }),
    ));
    Org {
        schema: schema(),
        records,
    }
}

/// The fixed clock.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-18T12:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Options with the fixed clock.
pub(crate) fn options() -> QueryOptions {
    QueryOptions {
        include_deleted: false,
        api_version: "66.0".into(),
        now: now(),
    }
}

/// Runs `soql` on the fixture.
pub(crate) fn run(soql: &str) -> Result<QueryResult, SoqlError> {
    query(&org(), soql, &options())
}

/// The rows of `soql`, which must succeed.
pub(crate) fn rows(soql: &str) -> Vec<Value> {
    match run(soql) {
        Ok(r) => r.records,
        Err(e) => panic!("{soql}: {e}"),
    }
}

/// One field of every row of `soql`.
pub(crate) fn column(soql: &str, field: &str) -> Vec<Value> {
    rows(soql).into_iter().map(|r| r[field].clone()).collect()
}

/// The error of `soql`, which must fail.
pub(crate) fn error(soql: &str) -> SoqlError {
    match run(soql) {
        Ok(r) => panic!("{soql}: expected an error, got {r:?}"),
        Err(e) => e,
    }
}
