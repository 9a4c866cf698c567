//! The seeded org: a realistic small schema (Account, Contact, Opportunity,
//! Case, Lead, the custom object Invoice__c with an external-id field, and
//! User) and deterministic data, including the records of the reference
//! files in `../shared/salesforce/`, non-ASCII names, a name with a quote
//! and a backslash, null fields, and enough rows that paging matters.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::config::SimConfig;
use crate::ids;
use crate::record::Record;
use crate::schema::{ChildRelationship, FieldDef, FieldType, ObjectDef, Schema};

/// The pod part of every generated Id (characters 4-5).
pub const POD: &str = "5g";

/// Formats an instant as Salesforce stores it: to the whole second,
/// `2026-03-04T17:21:09.000+0000` (Salesforce drops the milliseconds of
/// datetimes it saves).
pub fn format_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S.000+0000").to_string()
}

fn field(name: &str, label: &str, t: FieldType) -> FieldDef {
    FieldDef::new(name, label, t)
}

fn required(mut f: FieldDef) -> FieldDef {
    f.nillable = false;
    f
}

fn system(mut f: FieldDef) -> FieldDef {
    f.nillable = false;
    f.createable = false;
    f.updateable = false;
    f.defaulted_on_create = true;
    f
}

fn name_field(mut f: FieldDef) -> FieldDef {
    f.name_field = true;
    f
}

fn reference(name: &str, label: &str, to: &str, relationship: &str) -> FieldDef {
    let mut f = FieldDef::new(name, label, FieldType::Reference);
    f.reference_to = vec![to.into()];
    f.relationship_name = Some(relationship.into());
    f
}

fn picklist(name: &str, label: &str, values: &[&str]) -> FieldDef {
    let mut f = FieldDef::new(name, label, FieldType::Picklist);
    f.picklist_values = values.iter().map(|v| v.to_string()).collect();
    f
}

fn with_length(mut f: FieldDef, length: u32) -> FieldDef {
    f.length = length;
    f
}

fn common(label: &str) -> Vec<FieldDef> {
    vec![
        system(field("Id", &format!("{label} ID"), FieldType::Id)),
        system(field("CreatedDate", "Created Date", FieldType::DateTime)),
        system(field(
            "LastModifiedDate",
            "Last Modified Date",
            FieldType::DateTime,
        )),
        system(field("IsDeleted", "Deleted", FieldType::Boolean)),
    ]
}

fn object(
    name: &str,
    label: &str,
    plural: &str,
    prefix: &str,
    mut fields: Vec<FieldDef>,
    children: &[(&str, &str, &str, bool)],
) -> ObjectDef {
    let mut all = common(label);
    all.append(&mut fields);
    ObjectDef {
        name: name.into(),
        label: label.into(),
        label_plural: plural.into(),
        key_prefix: prefix.into(),
        custom: name.ends_with("__c"),
        fields: all,
        child_relationships: children
            .iter()
            .map(|(child, field, rel, cascade)| ChildRelationship {
                child_sobject: child.to_string(),
                field: field.to_string(),
                relationship_name: rel.to_string(),
                cascade_delete: *cascade,
            })
            .collect(),
    }
}

/// Industries used by Accounts.
pub const INDUSTRIES: [&str; 10] = [
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Construction",
    "Electronics",
    "Energy",
    "Healthcare",
    "Retail",
    "Technology",
];
/// Opportunity stages.
pub const STAGES: [&str; 6] = [
    "Prospecting",
    "Qualification",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
];

/// The org's schema.
pub fn schema() -> Schema {
    let owner = || reference("OwnerId", "Owner ID", "User", "Owner");
    let mut legacy = with_length(field("Legacy_Key__c", "Legacy Key", FieldType::String), 40);
    legacy.external_id = true;
    legacy.unique = true;
    let mut invoice_ext = with_length(
        field("External_Id__c", "External Id", FieldType::String),
        40,
    );
    invoice_ext.external_id = true;
    invoice_ext.unique = true;
    let mut contact_name = name_field(system(field("Name", "Full Name", FieldType::String)));
    contact_name.defaulted_on_create = false;
    let mut lead_name = contact_name.clone();
    lead_name.label = "Full Name".into();
    let mut case_number = system(field("CaseNumber", "Case Number", FieldType::String));
    case_number.length = 30;
    let mut case_status = required(picklist(
        "Status",
        "Status",
        &["New", "Working", "Escalated", "Closed"],
    ));
    case_status.defaulted_on_create = true;
    let mut lead_status = required(picklist(
        "Status",
        "Lead Status",
        &[
            "Open - Not Contacted",
            "Working - Contacted",
            "Closed - Converted",
            "Closed - Not Converted",
        ],
    ));
    lead_status.defaulted_on_create = true;
    Schema {
        objects: vec![
            object(
                "Account",
                "Account",
                "Accounts",
                "001",
                vec![
                    name_field(required(field("Name", "Account Name", FieldType::String))),
                    picklist("Industry", "Industry", &INDUSTRIES),
                    picklist(
                        "Type",
                        "Account Type",
                        &[
                            "Prospect",
                            "Customer - Direct",
                            "Customer - Channel",
                            "Partner",
                        ],
                    ),
                    field("BillingCity", "Billing City", FieldType::String),
                    field("BillingCountry", "Billing Country", FieldType::String),
                    field("Phone", "Account Phone", FieldType::Phone),
                    field("Website", "Website", FieldType::Url),
                    field("AnnualRevenue", "Annual Revenue", FieldType::Currency),
                    field("NumberOfEmployees", "Employees", FieldType::Int),
                    field("Description", "Account Description", FieldType::TextArea),
                    owner(),
                ],
                &[
                    ("Contact", "AccountId", "Contacts", false),
                    ("Opportunity", "AccountId", "Opportunities", true),
                    ("Case", "AccountId", "Cases", false),
                    ("Invoice__c", "Account__c", "Invoices__r", true),
                ],
            ),
            object(
                "Contact",
                "Contact",
                "Contacts",
                "003",
                vec![
                    field("FirstName", "First Name", FieldType::String),
                    required(field("LastName", "Last Name", FieldType::String)),
                    contact_name,
                    field("Email", "Email", FieldType::Email),
                    field("Phone", "Business Phone", FieldType::Phone),
                    field("Title", "Title", FieldType::String),
                    field("Birthdate", "Birthdate", FieldType::Date),
                    reference("AccountId", "Account ID", "Account", "Account"),
                    owner(),
                ],
                &[("Case", "ContactId", "Cases", false)],
            ),
            object(
                "Opportunity",
                "Opportunity",
                "Opportunities",
                "006",
                vec![
                    name_field(required(with_length(
                        field("Name", "Name", FieldType::String),
                        120,
                    ))),
                    reference("AccountId", "Account ID", "Account", "Account"),
                    required(picklist("StageName", "Stage", &STAGES)),
                    field("Amount", "Amount", FieldType::Currency),
                    required(field("CloseDate", "Close Date", FieldType::Date)),
                    field("Probability", "Probability (%)", FieldType::Percent),
                    legacy,
                    owner(),
                ],
                &[(
                    "OpportunityLineItem",
                    "OpportunityId",
                    "OpportunityLineItems",
                    true,
                )],
            ),
            object(
                "OpportunityLineItem",
                "Opportunity Product",
                "Opportunity Product",
                "00k",
                vec![
                    required(reference(
                        "OpportunityId",
                        "Opportunity ID",
                        "Opportunity",
                        "Opportunity",
                    )),
                    required(field("Quantity", "Quantity", FieldType::Double)),
                    field("UnitPrice", "Sales Price", FieldType::Currency),
                    field("Description", "Line Description", FieldType::String),
                ],
                &[],
            ),
            object(
                "Case",
                "Case",
                "Cases",
                "500",
                vec![
                    case_number,
                    name_field(field("Subject", "Subject", FieldType::String)),
                    case_status,
                    picklist("Priority", "Priority", &["High", "Medium", "Low"]),
                    picklist("Origin", "Case Origin", &["Email", "Phone", "Web"]),
                    field("Description", "Description", FieldType::TextArea),
                    reference("AccountId", "Account ID", "Account", "Account"),
                    reference("ContactId", "Contact ID", "Contact", "Contact"),
                    owner(),
                ],
                &[],
            ),
            object(
                "Lead",
                "Lead",
                "Leads",
                "00Q",
                vec![
                    field("FirstName", "First Name", FieldType::String),
                    required(field("LastName", "Last Name", FieldType::String)),
                    lead_name,
                    name_field(required(field("Company", "Company", FieldType::String))),
                    field("Email", "Email", FieldType::Email),
                    field("Phone", "Phone", FieldType::Phone),
                    lead_status,
                    picklist(
                        "LeadSource",
                        "Lead Source",
                        &["Web", "Phone Inquiry", "Partner Referral", "Trade Show"],
                    ),
                    owner(),
                ],
                &[],
            ),
            object(
                "Invoice__c",
                "Invoice",
                "Invoices",
                "a01",
                vec![
                    name_field(required(with_length(
                        field("Name", "Invoice Number", FieldType::String),
                        80,
                    ))),
                    reference("Account__c", "Account", "Account", "Account__r"),
                    field("Amount__c", "Amount", FieldType::Currency),
                    picklist("Status__c", "Status", &["Draft", "Sent", "Paid", "Overdue"]),
                    field("Due_Date__c", "Due Date", FieldType::Date),
                    invoice_ext,
                ],
                &[],
            ),
            object(
                "User",
                "User",
                "Users",
                "005",
                vec![
                    required(field("Username", "Username", FieldType::String)),
                    name_field(system(field("Name", "Full Name", FieldType::String))),
                    field("Email", "Email", FieldType::Email),
                    field("IsActive", "Active", FieldType::Boolean),
                ],
                &[],
            ),
        ],
    }
}

/// A small deterministic generator (SplitMix64); not for secrets.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FIRST: [&str; 16] = [
    "Ana", "João", "Rita", "Ben", "Chloé", "Zoë", "Ólafur", "Mei", "Søren", "Amara", "Luis",
    "Priya", "Noah", "Émile", "Yuki", "Fatima",
];
const LAST: [&str; 16] = [
    "Souza",
    "Okafor",
    "Martin",
    "Müller",
    "García",
    "Nguyen",
    "O'Neil",
    "Kowalski",
    "Haddad",
    "Tanaka",
    "Smith",
    "Johansson",
    "Dubois",
    "Rossi",
    "Kim",
    "Björk",
];
const CITIES: [&str; 10] = [
    "Ålesund",
    "Austin",
    "São Paulo",
    "Zürich",
    "Kraków",
    "Lyon",
    "Osaka",
    "Burlington",
    "Mountain View",
    "Reykjavík",
];
const WORDS: [&str; 14] = [
    "Global",
    "Northwind",
    "Blue",
    "Summit",
    "Fjord",
    "Aurora",
    "Pioneer",
    "Atlas",
    "Cedar",
    "Harbor",
    "Quantum",
    "Evergreen",
    "Nimbus",
    "Granite",
];
const SUFFIXES: [&str; 8] = ["Corp", "Ltd", "GmbH", "AS", "SA", "Inc", "Group", "Labs"];
const SUBJECTS: [&str; 8] = [
    "Router keeps rebooting",
    "Invoice discrepancy",
    "Cannot log in",
    "Shipment delayed",
    "Feature request: export to CSV",
    "Données manquantes dans le rapport",
    "Billing address change",
    "Warranty claim",
];

/// Builds records for the schema; `now` anchors CreatedDate values.
pub struct SeedBuilder<'a> {
    schema: &'a Schema,
    now: DateTime<Utc>,
    counters: BTreeMap<String, u64>,
    /// The records built so far, in creation order.
    pub records: Vec<Record>,
}

impl<'a> SeedBuilder<'a> {
    /// An empty builder.
    pub fn new(schema: &'a Schema, now: DateTime<Utc>) -> Self {
        Self {
            schema,
            now,
            counters: BTreeMap::new(),
            records: Vec::new(),
        }
    }

    /// The next Id for `object`.
    pub fn next_id(&mut self, object: &str) -> String {
        let prefix = self
            .schema
            .object(object)
            .map(|o| o.key_prefix.clone())
            .unwrap_or_else(|| "000".into());
        let n = self.counters.entry(object.to_owned()).or_insert(1000);
        *n += 1;
        ids::make(&prefix, POD, *n)
    }

    /// Adds a record of `object` with `fields`, created `age_days` ago.
    pub fn add(
        &mut self,
        object: &str,
        id: Option<String>,
        age_days: i64,
        fields: Value,
    ) -> String {
        let id = id.unwrap_or_else(|| self.next_id(object));
        let created = format_datetime(
            self.now - Duration::days(age_days) - Duration::minutes(age_days * 7 % 600),
        );
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        map.insert("Id".into(), json!(id));
        map.insert("CreatedDate".into(), json!(created));
        map.insert("LastModifiedDate".into(), json!(created));
        map.insert("IsDeleted".into(), json!(false));
        if let Value::Object(values) = fields {
            for (k, v) in values {
                map.insert(k, v);
            }
        }
        self.records.push(Record {
            id: id.clone(),
            object: object.to_owned(),
            fields: map,
            deleted: false,
        });
        id
    }
}

/// The seeded records: users from the config, the reference-file records,
/// then generated data scaled by `config.seed_accounts`.
pub fn records(schema: &Schema, config: &SimConfig, now: DateTime<Utc>) -> Vec<Record> {
    let mut b = SeedBuilder::new(schema, now);
    let mut user_ids = Vec::new();
    for (i, user) in config.users.iter().enumerate() {
        let id = user_id(config, i);
        b.add(
            "User",
            Some(id.clone()),
            400,
            json!({
                "Username": user.username,
                "Name": user.display_name,
                "Email": user.email.clone().unwrap_or_else(|| user.username.clone()),
                "IsActive": true,
            }),
        );
        user_ids.push(id);
    }
    let owner = |n: usize| json!(user_ids[n % user_ids.len()]);

    // Records from the reference files, with their ids.
    let accounts = [
        (
            "0015g00000Q1aAAAAZ",
            "Ålesund Fiskeri AS",
            Some("Ålesund"),
            Some("Agriculture"),
            Some(12_500_000.0),
        ),
        (
            "0015g00000Q1aABAAZ",
            "Burlington Textiles Corp of America",
            Some("Burlington"),
            Some("Apparel"),
            Some(350_000_000.0),
        ),
        (
            "0015g00000Q1aACAAZ",
            "Edge Communications",
            Some("Austin"),
            Some("Electronics"),
            Some(139_000_000.0),
        ),
        (
            "0015g00000Q1aADAAZ",
            "GenePoint",
            Some("Mountain View"),
            Some("Biotechnology"),
            Some(30_000_000.0),
        ),
        (
            "0015g00000Q1aAEAAZ",
            "O'Brien & Sons \\ Logistics",
            None,
            None,
            None,
        ),
    ];
    for (i, (id, name, city, industry, revenue)) in accounts.iter().enumerate() {
        b.add(
            "Account",
            Some(id.to_string()),
            300 + i as i64,
            json!({"Name": name, "BillingCity": city, "Industry": industry, "AnnualRevenue": revenue, "OwnerId": owner(i)}),
        );
    }
    b.add("Contact", Some("0035g00000K9xYzAAJ".into()), 200, json!({
        "FirstName": "Rita", "LastName": "Souza", "Name": "Rita Souza", "Email": "rita.souza@edge.example",
        "AccountId": "0015g00000Q1aACAAZ", "OwnerId": owner(0),
    }));
    b.add(
        "Contact",
        Some("0035g00000K9xZ0AAJ".into()),
        199,
        json!({
            "FirstName": "João", "LastName": "Souza", "Name": "João Souza", "Email": null,
            "AccountId": null, "OwnerId": owner(0),
        }),
    );
    b.add("Case", Some("5005g00000A1b2cAAB".into()), 10, json!({
        "CaseNumber": "00001001", "Subject": "Router keeps rebooting", "Status": "Working", "Priority": "High",
        "Origin": "Phone", "AccountId": "0015g00000Q1aACAAZ", "ContactId": "0035g00000K9xYzAAJ", "OwnerId": owner(0),
    }));
    b.add("Opportunity", Some("0065g00000B7c8dAAB".into()), 270, json!({
        "Name": "Edge – SLA renewal 2027", "AccountId": "0015g00000Q1aACAAZ", "StageName": "Prospecting",
        "Amount": 48000.0, "CloseDate": "2027-01-31", "Probability": 10.0, "Legacy_Key__c": null, "OwnerId": owner(0),
    }));

    let mut dice = Dice(0x5EED_5EED);
    // Generated records may point at the reference accounts too; with
    // `seed_accounts = 0` the org holds only the reference records.
    let mut account_ids: Vec<String> = accounts.iter().map(|a| a.0.to_owned()).collect();
    for i in 0..config.seed_accounts {
        let name = format!(
            "{} {} {}",
            dice.pick(&WORDS),
            dice.pick(&WORDS),
            dice.pick(&SUFFIXES)
        );
        let name = if i % 97 == 5 {
            format!("{name} \"Quoted\"")
        } else {
            format!("{name} {i:04}")
        };
        let missing = i % 11 == 3;
        let id = b.add("Account", None, (i % 365) as i64, json!({
            "Name": name,
            "Industry": if missing { Value::Null } else { json!(dice.pick(&INDUSTRIES)) },
            "Type": dice.pick(&["Prospect", "Customer - Direct", "Customer - Channel", "Partner"]),
            "BillingCity": if missing { Value::Null } else { json!(dice.pick(&CITIES)) },
            "BillingCountry": dice.pick(&["Norway", "USA", "Brazil", "Switzerland", "Poland", "France", "Japan", "Iceland"]),
            "Phone": format!("+1 555 {:04}", i),
            "AnnualRevenue": if missing { Value::Null } else { json!((dice.below(5000) as f64 + 1.0) * 10_000.0) },
            "NumberOfEmployees": if missing { Value::Null } else { json!(dice.below(20_000) + 1) },
            "OwnerId": owner(i),
        }));
        account_ids.push(id);
    }
    let mut contact_ids = vec!["0035g00000K9xYzAAJ".to_owned()];
    for i in 0..config.seed_accounts * 3 {
        let (first, last) = (dice.pick(&FIRST), dice.pick(&LAST));
        let account =
            (i % 7 != 0).then(|| account_ids[dice.below(account_ids.len().max(1))].clone());
        let id = b.add("Contact", None, (i % 500) as i64, json!({
            "FirstName": first, "LastName": last, "Name": format!("{first} {last}"),
            "Email": if i % 9 == 0 { Value::Null } else {
                json!(format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase().replace('\'', ""), i))
            },
            "Title": dice.pick(&["CEO", "CFO", "VP Sales", "Engineer", "Buyer", "Directeur général"]),
            "Phone": format!("+44 20 7946 {:04}", i % 10_000),
            "Birthdate": format!("19{:02}-{:02}-{:02}", 60 + i % 40, 1 + i % 12, 1 + i % 28),
            "AccountId": account, "OwnerId": owner(i),
        }));
        contact_ids.push(id);
    }
    for i in 0..config.seed_accounts * 2 {
        let account = &account_ids[dice.below(account_ids.len().max(1))];
        let stage = dice.pick(&STAGES);
        let close = (now + Duration::days(dice.below(400) as i64 - 200))
            .format("%Y-%m-%d")
            .to_string();
        b.add("Opportunity", None, (i % 300) as i64, json!({
            "Name": format!("{} deal {}", dice.pick(&WORDS), i), "AccountId": account, "StageName": stage,
            "Amount": if i % 13 == 0 { Value::Null } else { json!((dice.below(900) as f64 + 1.0) * 500.0) },
            "CloseDate": close, "Probability": json!((dice.below(10) * 10) as f64),
            "Legacy_Key__c": if i % 4 == 0 { json!(format!("LK-{:05}", i)) } else { Value::Null },
            "OwnerId": owner(i),
        }));
    }
    for i in 0..config.seed_accounts {
        let contact = &contact_ids[dice.below(contact_ids.len().max(1))];
        b.add("Case", None, (i % 90) as i64, json!({
            "CaseNumber": format!("{:08}", 1002 + i), "Subject": dice.pick(&SUBJECTS),
            "Status": dice.pick(&["New", "Working", "Escalated", "Closed"]),
            "Priority": dice.pick(&["High", "Medium", "Low"]), "Origin": dice.pick(&["Email", "Phone", "Web"]),
            "ContactId": contact, "AccountId": account_ids[i % account_ids.len().max(1)], "OwnerId": owner(i),
        }));
    }
    for i in 0..config.seed_accounts / 2 {
        let (first, last) = (dice.pick(&FIRST), dice.pick(&LAST));
        b.add("Lead", None, (i % 60) as i64, json!({
            "FirstName": first, "LastName": last, "Name": format!("{first} {last}"),
            "Company": format!("{} {}", dice.pick(&WORDS), dice.pick(&SUFFIXES)),
            "Email": format!("lead{i}@example.org"), "Status": "Open - Not Contacted",
            "LeadSource": dice.pick(&["Web", "Phone Inquiry", "Partner Referral", "Trade Show"]), "OwnerId": owner(i),
        }));
    }
    for i in 0..config.seed_accounts {
        let due = (now + Duration::days(dice.below(120) as i64 - 60))
            .format("%Y-%m-%d")
            .to_string();
        b.add("Invoice__c", None, (i % 120) as i64, json!({
            "Name": format!("INV-{:05}", i + 1), "Account__c": account_ids[i % account_ids.len().max(1)],
            "Amount__c": (dice.below(10_000) as f64) * 12.5, "Status__c": dice.pick(&["Draft", "Sent", "Paid", "Overdue"]),
            "Due_Date__c": due, "External_Id__c": format!("ERP-{:06}", 100_000 + i),
        }));
    }
    b.records
}

/// The User Id of the `index`th configured user.
pub fn user_id(config: &SimConfig, index: usize) -> String {
    ids::make(
        "005",
        POD,
        500 + index as u64 + if config.sandbox { 100 } else { 0 },
    )
}

/// The org Id.
pub fn org_id(config: &SimConfig) -> String {
    ids::make("00D", POD, if config.sandbox { 2 } else { 1 })
}
