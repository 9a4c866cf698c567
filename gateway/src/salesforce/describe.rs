//! The describe cache and the checks of object, field and relationship
//! names against it.
//!
//! Owns: [`DescribeCache`] (describe global and per-object describes, each
//! with a time limit) and [`Name`], the only way a name reaches a REST path
//! or a SOQL statement the gateway composes: a `Name` exists only after it
//! matched the describe result (and carries Salesforce's spelling).
//!
//! Must not: hold its lock across an `.await` (fetches happen unlocked; two
//! concurrent misses may both fetch, which is harmless), or decide what a
//! user may see (describe is fetched with the caller's token; the cache is
//! per server, see the gaps noted on [`DescribeCache`]).
//!
//! Source: REST API Developer Guide, "Describe Global" and "sObject
//! Describe".

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Ctx, SfError};

/// How long a describe result stays fresh by default (10 minutes).
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// A per-server cache of describe results: the sObject list (describe
/// global) and per-object describes, each fresh for `ttl`.
///
/// Cheap to clone (an `Arc` inside) and shareable across tasks. Entries
/// are keyed by object name (case-insensitive) and remember the instance
/// URL and API version they came from; a different one is a miss.
/// Known gap: Salesforce describe results can differ per user (field-level
/// security); the cache keeps the first user's view for `ttl`, and a name
/// missing from a cached entry triggers one re-fetch before it is rejected.
#[derive(Clone)]
pub struct DescribeCache {
    // A std mutex: every critical section is a map lookup or insert,
    // never held across an await.
    inner: Arc<Mutex<Inner>>,
    ttl: Duration,
}

#[derive(Default)]
struct Inner {
    global: Option<Entry>,
    objects: HashMap<String, Entry>,
}

struct Entry {
    scope: String,
    value: Arc<Value>,
    fetched: Instant,
}

impl Default for DescribeCache {
    fn default() -> Self {
        Self::new(DEFAULT_TTL)
    }
}

impl fmt::Debug for DescribeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("DescribeCache")
            .field("ttl", &self.ttl)
            .field("objects_list", &inner.global.is_some())
            .field("objects", &inner.objects.len())
            .finish()
    }
}

impl DescribeCache {
    /// An empty cache whose entries stay fresh for `ttl` (zero: never
    /// reused).
    pub fn new(ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            ttl,
        }
    }

    /// How long entries stay fresh.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Drops the describe of `object` (case-insensitive).
    pub fn invalidate(&self, object: &str) {
        self.lock().objects.remove(&object.to_ascii_lowercase());
    }

    /// Drops the cached sObject list (describe global).
    pub fn invalidate_objects_list(&self) {
        self.lock().global = None;
    }

    /// Drops everything.
    pub fn invalidate_all(&self) {
        let mut inner = self.lock();
        inner.global = None;
        inner.objects.clear();
    }

    /// Whether a fresh describe of `object` is cached.
    pub fn contains(&self, object: &str) -> bool {
        let inner = self.lock();
        inner
            .objects
            .get(&object.to_ascii_lowercase())
            .is_some_and(|e| e.fetched.elapsed() < self.ttl)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fresh(&self, entry: Option<&Entry>, scope: &str) -> Option<Arc<Value>> {
        entry
            .filter(|e| e.scope == scope && e.fetched.elapsed() < self.ttl)
            .map(|e| e.value.clone())
    }

    fn get_global(&self, scope: &str) -> Option<Arc<Value>> {
        self.fresh(self.lock().global.as_ref(), scope)
    }

    fn get_object(&self, scope: &str, object: &str) -> Option<Arc<Value>> {
        self.fresh(self.lock().objects.get(&object.to_ascii_lowercase()), scope)
    }

    fn put_global(&self, scope: &str, value: Arc<Value>) {
        self.lock().global = Some(Entry {
            scope: scope.to_owned(),
            value,
            fetched: Instant::now(),
        });
    }

    fn put_object(&self, scope: &str, object: &str, value: Arc<Value>) {
        self.lock().objects.insert(
            object.to_ascii_lowercase(),
            Entry {
                scope: scope.to_owned(),
                value,
                fetched: Instant::now(),
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn insert_for_tests(&self, object: &str, value: Value) {
        self.put_object("test", object, Arc::new(value));
    }
}

/// An object, field or relationship name as Salesforce spells it, known
/// to exist in the describe result. Only this module creates one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name(String);

impl Name {
    /// The name, e.g. `Invoice__c`.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn for_tests(name: &str) -> Self {
        Self(name.to_owned())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One object's describe, as checked.
#[derive(Debug, Clone)]
pub(crate) struct Described {
    /// The object's API name.
    pub name: Name,
    /// The `sObject Describe` body.
    pub describe: Arc<Value>,
    from_cache: bool,
}

fn scope(ctx: &Ctx<'_>) -> String {
    format!("{}{}", ctx.rest.base(), ctx.rest.data_path())
}

/// Whether `name` looks like an API name: a letter, then up to 79
/// letters, digits or underscores (the catalog's pattern).
pub(crate) fn is_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 80
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Describe global (`GET .../sobjects`), from the cache unless `force`.
/// Returns the body and whether it came from the cache.
pub(crate) async fn objects_list(
    ctx: &Ctx<'_>,
    force: bool,
) -> Result<(Arc<Value>, bool), SfError> {
    let scope = scope(ctx);
    if !force && let Some(hit) = ctx.cache.get_global(&scope) {
        return Ok((hit, true));
    }
    let url = ctx.rest.data_url(&[("object_name", "sobjects")])?;
    let body = Arc::new(ctx.rest.get(url).await?.body);
    ctx.cache.put_global(&scope, body.clone());
    Ok((body, false))
}

fn entries(body: &Value, key: &str) -> Vec<Value> {
    body.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn name_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Salesforce's spelling of `wanted` among `names` (case-insensitive).
fn find<'n>(names: impl Iterator<Item = &'n str>, wanted: &str) -> Option<String> {
    let mut names = names;
    names
        .find(|n| n.eq_ignore_ascii_case(wanted))
        .map(str::to_owned)
}

/// Up to three names close to `wanted` (edit distance at most 2, or one
/// containing the other), for "did you mean".
pub(crate) fn suggest<'n>(names: impl Iterator<Item = &'n str>, wanted: &str) -> String {
    let w = wanted.to_ascii_lowercase();
    let close: Vec<&str> = names
        .filter(|n| {
            let n = n.to_ascii_lowercase();
            edit_distance(&n, &w) <= 2 || (w.len() >= 3 && (n.contains(&w) || w.contains(&n)))
        })
        .take(3)
        .collect();
    if close.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", close.join(", "))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Checks `name` (argument `field`) against describe global and returns
/// Salesforce's spelling. An object missing from a cached list triggers
/// one re-fetch. Errors: [`SfError::InvalidArgument`] naming `field`.
pub(crate) async fn object_name(ctx: &Ctx<'_>, field: &str, name: &str) -> Result<Name, SfError> {
    if !is_api_name(name) {
        return Err(SfError::invalid(
            field,
            format!("'{name}' is not an sObject API name"),
        ));
    }
    let (mut list, mut cached) = objects_list(ctx, false).await?;
    loop {
        let objects = entries(&list, "sobjects");
        if let Some(found) = find(
            objects
                .iter()
                .map(|o| o["name"].as_str().unwrap_or_default()),
            name,
        ) {
            return Ok(Name(found));
        }
        if !cached {
            let hint = suggest(
                objects
                    .iter()
                    .map(|o| o["name"].as_str().unwrap_or_default()),
                name,
            );
            return Err(SfError::invalid(
                field,
                format!(
                    "no object named '{name}' in this org{hint}; call list_objects to find the API name"
                ),
            ));
        }
        (list, cached) = objects_list(ctx, true).await?;
    }
}

/// The describe of `object` (`GET .../sobjects/{object}/describe`), from
/// the cache unless `force`.
pub(crate) async fn describe(
    ctx: &Ctx<'_>,
    object: &Name,
    force: bool,
) -> Result<Described, SfError> {
    let scope = scope(ctx);
    if !force && let Some(hit) = ctx.cache.get_object(&scope, object.as_str()) {
        return Ok(Described {
            name: object.clone(),
            describe: hit,
            from_cache: true,
        });
    }
    let url = ctx.rest.data_url(&[
        ("object_name", "sobjects"),
        ("object_name", object.as_str()),
        ("object_name", "describe"),
    ])?;
    let body = Arc::new(ctx.rest.get(url).await?.body);
    ctx.cache.put_object(&scope, object.as_str(), body.clone());
    Ok(Described {
        name: object.clone(),
        describe: body,
        from_cache: false,
    })
}

/// Checks `name` against describe global, then describes it.
pub(crate) async fn described_object(
    ctx: &Ctx<'_>,
    field: &str,
    name: &str,
) -> Result<Described, SfError> {
    let object = object_name(ctx, field, name).await?;
    describe(ctx, &object, false).await
}

/// What a lookup in one describe wants.
enum Want<'w> {
    Field(&'w str),
    Relationship(&'w str),
}

fn lookup(d: &Described, want: &Want<'_>) -> Option<Vec<Name>> {
    match want {
        Want::Field(wanted) => {
            let fields = entries(&d.describe, "fields");
            let names = || {
                fields
                    .iter()
                    .map(|f| f["name"].as_str().unwrap_or_default())
            };
            match wanted.split_once('.') {
                None => find(names(), wanted).map(|n| vec![Name(n)]),
                Some((relationship, rest)) => {
                    let rels = fields.iter().filter_map(|f| f["relationshipName"].as_str());
                    find(rels, relationship).map(|r| vec![Name(format!("{r}.{rest}"))])
                }
            }
        }
        Want::Relationship(wanted) => entries(&d.describe, "childRelationships")
            .iter()
            .find(|c| {
                c["relationshipName"]
                    .as_str()
                    .is_some_and(|r| r.eq_ignore_ascii_case(wanted))
            })
            .map(|c| {
                ["relationshipName", "childSObject", "field"]
                    .iter()
                    .map(|k| Name(name_of(c, k)))
                    .collect()
            }),
    }
}

/// Looks `want` up in `d`, re-describing once if `d` came from the cache.
async fn lookup_fresh(
    ctx: &Ctx<'_>,
    d: &mut Described,
    want: &Want<'_>,
) -> Result<Option<Vec<Name>>, SfError> {
    if let Some(found) = lookup(d, want) {
        return Ok(Some(found));
    }
    if d.from_cache {
        *d = describe(ctx, &d.name, true).await?;
        return Ok(lookup(d, want));
    }
    Ok(None)
}

/// Checks each of `names` (argument `field`) against the fields of `d`
/// and returns Salesforce's spellings, duplicates dropped. `Rel.Field`
/// paths check that `Rel` is a relationship of `d`. Errors:
/// [`SfError::InvalidArgument`] naming `field`.
pub(crate) async fn field_names(
    ctx: &Ctx<'_>,
    d: &mut Described,
    field: &str,
    names: &[String],
) -> Result<Vec<Name>, SfError> {
    let mut out: Vec<Name> = Vec::new();
    for wanted in names {
        let valid_path = wanted.split('.').all(is_api_name) && wanted.split('.').count() <= 5;
        let found = if valid_path {
            lookup_fresh(ctx, d, &Want::Field(wanted)).await?
        } else {
            None
        };
        let Some(mut found) = found else {
            let fields = entries(&d.describe, "fields");
            let hint = suggest(
                fields
                    .iter()
                    .map(|f| f["name"].as_str().unwrap_or_default()),
                wanted,
            );
            return Err(SfError::invalid(
                field,
                format!(
                    "no field '{wanted}' on {}{hint}; call describe_object to see its fields",
                    d.name
                ),
            ));
        };
        let name = found.remove(0);
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// A child relationship of `d`: `(relationship name, child object, the
/// child's field pointing at d)`. Errors: [`SfError::InvalidArgument`]
/// naming `field`.
pub(crate) async fn child_relationship(
    ctx: &Ctx<'_>,
    d: &mut Described,
    field: &str,
    name: &str,
) -> Result<(Name, Name, Name), SfError> {
    let found = if is_api_name(name) {
        lookup_fresh(ctx, d, &Want::Relationship(name)).await?
    } else {
        None
    };
    match found {
        Some(mut v) if v.len() == 3 && v.iter().all(|n| !n.0.is_empty()) => {
            let f = v.remove(2);
            let child = v.remove(1);
            Ok((v.remove(0), child, f))
        }
        _ => {
            let rels = entries(&d.describe, "childRelationships");
            let hint = suggest(
                rels.iter().filter_map(|c| c["relationshipName"].as_str()),
                name,
            );
            Err(SfError::invalid(
                field,
                format!(
                    "{} has no child relationship '{name}'{hint}; describe_object lists its child_relationships",
                    d.name
                ),
            ))
        }
    }
}

/// The field describe of `name` (Salesforce's spelling) in `d`.
pub(crate) fn field_describe<'d>(d: &'d Described, name: &Name) -> Option<&'d Value> {
    d.describe
        .get("fields")?
        .as_array()?
        .iter()
        .find(|f| f["name"].as_str() == Some(name.as_str()))
}

/// The object's name field (`nameField: true`, else `Name` if present).
pub(crate) fn name_field(d: &Described) -> Option<Name> {
    let fields = entries(&d.describe, "fields");
    fields
        .iter()
        .find(|f| f["nameField"].as_bool() == Some(true))
        .or_else(|| fields.iter().find(|f| f["name"] == "Name"))
        .map(|f| Name(name_of(f, "name")))
}

/// The object named in a Salesforce error message: `on entity 'X'`,
/// `sObject type 'X'` or `sobject of type X`.
pub(crate) fn object_in_message(message: &str) -> Option<String> {
    for marker in ["on entity '", "sObject type '"] {
        if let Some(at) = message.find(marker) {
            let rest = &message[at + marker.len()..];
            return rest
                .split('\'')
                .next()
                .filter(|n| is_api_name(n))
                .map(str::to_owned);
        }
    }
    let at = message.find("sobject of type ")?;
    let rest = &message[at + "sobject of type ".len()..];
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    is_api_name(&name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn described(body: Value) -> Described {
        Described {
            name: Name("Opportunity".into()),
            describe: Arc::new(body),
            from_cache: false,
        }
    }

    #[test]
    fn fields_and_relationships_resolve_case_insensitively() {
        let d = described(json!({
            "fields": [
                {"name": "Name", "nameField": true},
                {"name": "AccountId", "relationshipName": "Account"},
            ],
            "childRelationships": [
                {"childSObject": "OpportunityLineItem", "field": "OpportunityId", "relationshipName": "OpportunityLineItems"},
                {"childSObject": "Task", "field": "WhatId", "relationshipName": null},
            ],
        }));
        assert_eq!(
            lookup(&d, &Want::Field("name")),
            Some(vec![Name("Name".into())])
        );
        assert_eq!(
            lookup(&d, &Want::Field("account.Name")),
            Some(vec![Name("Account.Name".into())])
        );
        assert_eq!(lookup(&d, &Want::Field("Nme")), None);
        assert_eq!(
            lookup(&d, &Want::Relationship("opportunitylineitems")),
            Some(vec![
                Name("OpportunityLineItems".into()),
                Name("OpportunityLineItem".into()),
                Name("OpportunityId".into())
            ])
        );
        assert_eq!(name_field(&d), Some(Name("Name".into())));
    }

    #[test]
    fn suggestions_find_near_misses() {
        let names = ["Account", "Invoice__c", "Contact"];
        assert_eq!(
            suggest(names.into_iter(), "Invoce__c"),
            " (did you mean Invoice__c?)"
        );
        assert_eq!(suggest(names.into_iter(), "Zebra"), "");
        assert_eq!(edit_distance("nme", "name"), 1);
    }

    #[test]
    fn objects_are_found_in_salesforce_messages() {
        assert_eq!(
            object_in_message("No such column 'Nme' on entity 'Account'. If you ...").as_deref(),
            Some("Account")
        );
        assert_eq!(
            object_in_message("sObject type 'Invoce__c' is not supported.").as_deref(),
            Some("Invoce__c")
        );
        assert_eq!(
            object_in_message("No such column 'X' on sobject of type Contact").as_deref(),
            Some("Contact")
        );
        assert_eq!(object_in_message("unexpected token: SELEC"), None);
    }

    #[test]
    fn api_names_follow_the_catalog_pattern() {
        assert!(is_api_name("Invoice__c"));
        for bad in ["", "1Account", "Acc ount", "a/b", "Account'"] {
            assert!(!is_api_name(bad), "{bad}");
        }
        assert!(!is_api_name(&"a".repeat(81)));
    }

    #[test]
    fn cache_entries_expire_and_are_invalidated() {
        let cache = DescribeCache::new(Duration::from_secs(60));
        cache.put_object("s", "Account", Arc::new(json!({})));
        assert!(cache.get_object("s", "account").is_some());
        assert!(cache.get_object("other-scope", "Account").is_none());
        cache.invalidate("ACCOUNT");
        assert!(cache.get_object("s", "Account").is_none());
        cache.put_global("s", Arc::new(json!({})));
        cache.put_object("s", "Contact", Arc::new(json!({})));
        cache.invalidate_all();
        assert!(cache.get_global("s").is_none() && !cache.contains("Contact"));
        let zero = DescribeCache::new(Duration::ZERO);
        zero.put_object("s", "Account", Arc::new(json!({})));
        assert!(zero.get_object("s", "Account").is_none());
    }
}
