//! Query scope (a BEFORE built-in): which sObjects SOQL and SOSL may touch,
//! a required `LIMIT`, and no `queryAll`.
//!
//! The query is parsed, not matched as text: words in string literals,
//! comments in values or field names that look like object names do not
//! count. Source: SOQL and SOSL Reference, "SOQL SELECT Syntax",
//! "Relationship Queries", "TYPEOF", "SOSL Syntax (RETURNING)".
//!
//! What a query touches:
//! - its `FROM` object, and the `FROM` object of every semi-join or
//!   anti-join (`WHERE Id IN (SELECT AccountId FROM Contact)`);
//! - the object each relationship path reaches (`Account.Owner.Name` from
//!   `Contact` touches Account, User and Group), resolved without asking
//!   Salesforce from the standard relationship names toolgate knows
//!   (`Account`, `Owner`, `CreatedBy`, `Who`, `Parent`, ...);
//! - the object of each parent-to-child subquery, whose `FROM` names a
//!   child relationship (`Contacts`, `Opportunities`, `Cases`, ...),
//!   resolved the same way;
//! - the objects of relationship joins after `FROM` (`FROM Contact c,
//!   c.Account a` touches Account, and `a.Owner.Name` then reaches User);
//! - `TYPEOF` branches (`WHEN Account THEN Owner.Email` touches Account,
//!   User and Group: the `THEN` paths start from the `WHEN` object);
//! - for SOSL, every `RETURNING` object (a search without `RETURNING`
//!   searches every object);
//! - for `get_record` and `get_related_records`, the object (and child
//!   relationship) named and the objects the dotted `fields` reach.
//!
//! `list_recent` returns recently viewed records of any object, so a hook
//! with an allow or deny list refuses it. `max_limit` bounds the `LIMIT` of
//! SOQL and SOSL and the `limit` argument of a parameterized `search` and of
//! `get_related_records`; each is then required.
//!
//! The fail-closed rule: a relationship toolgate cannot resolve (custom
//! `__r` relationships, `What`, `Histories`, ...) or a SOSL search over every
//! object is refused when the hook has an allow list; with a deny list only,
//! an unresolved custom relationship `X__r` is taken as object `X__c` and
//! compared, and anything else unresolved passes. A statement that does
//! not parse is refused.

use serde_json::Value;

use crate::model::HookKind;

/// The tools (by catalog name) query scope applies to.
pub const SCOPED_TOOLS: [&str; 5] = [
    "query",
    "search",
    "get_record",
    "get_related_records",
    "list_recent",
];

/// What a statement touches.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    /// sObject API names, as written (deduplicated case-insensitively).
    pub objects: Vec<String>,
    /// Relationship names that could not be resolved to an object.
    pub unresolved: Vec<String>,
    /// The top-level `LIMIT` (SOQL or SOSL), when it is a number.
    pub limit: Option<u64>,
    /// A SOSL search without `RETURNING` (every object).
    pub every_object: bool,
}

impl Touched {
    fn object(&mut self, name: &str) {
        if !self.objects.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            self.objects.push(name.to_owned());
        }
    }

    fn unresolved(&mut self, name: &str) {
        if !self.unresolved.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            self.unresolved.push(name.to_owned());
        }
    }
}

/// The number after the last `LIMIT` outside parentheses in `toks`.
///
/// Errors: `LIMIT` without a number after it, or a number toolgate cannot
/// read.
fn top_level_limit(toks: &[Tok]) -> Result<Option<u64>, String> {
    let mut depth = 0usize;
    let mut limit = None;
    for (i, tok) in toks.iter().enumerate() {
        match tok {
            Tok::Open => depth += 1,
            Tok::Close => depth = depth.saturating_sub(1),
            Tok::Word(w) if depth == 0 && w.eq_ignore_ascii_case("LIMIT") => {
                match toks.get(i + 1) {
                    Some(Tok::Word(n)) => {
                        limit = Some(n.parse().map_err(|_| {
                            format!("LIMIT {n} is not a number toolgate can check")
                        })?);
                    }
                    _ => return Err("LIMIT needs a number".into()),
                }
            }
            _ => {}
        }
    }
    Ok(limit)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A word: keyword, identifier, path, number or date literal.
    Word(String),
    /// A quoted string (`'...'`) or SOSL search term (`{...}`).
    Literal,
    Open,
    Close,
    Comma,
    /// Operators and anything else.
    Other,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '\'' | '{' => {
                let end = if c == '\'' { '\'' } else { '}' };
                let mut escaped = false;
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == end {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(format!("unterminated literal starting at character {i}"));
                }
                out.push(Tok::Literal);
            }
            '(' => out.push(Tok::Open),
            ')' => out.push(Tok::Close),
            ',' => out.push(Tok::Comma),
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '+') => {
                let mut word = String::from(c);
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '+') {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Word(word));
            }
            _ => out.push(Tok::Other),
        }
    }
    Ok(out)
}

/// Whether a word is an identifier or a dotted path (not a value).
fn is_path(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !word.ends_with('.')
        && !word.contains("..")
}

fn kw(tok: Option<&Tok>, keyword: &str) -> bool {
    matches!(tok, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(keyword))
}

const CLAUSE_KEYWORDS: [&str; 12] = [
    "WHERE",
    "WITH",
    "GROUP",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "FOR",
    "UPDATE",
    "USING",
    "HAVING",
    "RETURNING",
    "IN",
];

/// Parent relationships toolgate resolves without Salesforce: name to
/// objects (`Parent` and `MasterRecord` are the object itself).
fn parent_objects(relationship: &str, current: Option<&str>) -> Option<Vec<String>> {
    let r = relationship.to_ascii_lowercase();
    let objects: &[&str] = match r.as_str() {
        "parent" | "masterrecord" => return current.map(|c| vec![c.to_owned()]),
        "owner" => &["User", "Group"],
        "createdby" | "lastmodifiedby" | "manager" | "delegatedapprover" => &["User"],
        "who" => &["Contact", "Lead"],
        "reportsto" | "convertedcontact" => &["Contact"],
        "convertedaccount" => &["Account"],
        "convertedopportunity" => &["Opportunity"],
        "account" | "contact" | "opportunity" | "campaign" | "case" | "contract" | "order"
        | "asset" | "pricebook2" | "product2" | "pricebookentry" | "profile" | "userrole"
        | "recordtype" | "lead" | "quote" | "entitlement" | "servicecontract" | "solution"
        | "user" => {
            return Some(vec![standard_name(&r).to_owned()]);
        }
        _ => return None,
    };
    Some(objects.iter().map(|s| (*s).to_owned()).collect())
}

fn standard_name(lower: &str) -> &'static str {
    match lower {
        "account" => "Account",
        "contact" => "Contact",
        "opportunity" => "Opportunity",
        "campaign" => "Campaign",
        "case" => "Case",
        "contract" => "Contract",
        "order" => "Order",
        "asset" => "Asset",
        "pricebook2" => "Pricebook2",
        "product2" => "Product2",
        "pricebookentry" => "PricebookEntry",
        "profile" => "Profile",
        "userrole" => "UserRole",
        "recordtype" => "RecordType",
        "lead" => "Lead",
        "quote" => "Quote",
        "entitlement" => "Entitlement",
        "servicecontract" => "ServiceContract",
        "solution" => "Solution",
        _ => "User",
    }
}

/// Child relationships toolgate resolves without Salesforce.
fn child_object(relationship: &str) -> Option<&'static str> {
    Some(match relationship.to_ascii_lowercase().as_str() {
        "contacts" => "Contact",
        "opportunities" => "Opportunity",
        "cases" => "Case",
        "tasks" => "Task",
        "events" => "Event",
        "notes" => "Note",
        "attachments" => "Attachment",
        "notesandattachments" => "NoteAndAttachment",
        "activityhistories" => "ActivityHistory",
        "openactivities" => "OpenActivity",
        "opportunitylineitems" => "OpportunityLineItem",
        "opportunitycontactroles" => "OpportunityContactRole",
        "accountcontactrelations" => "AccountContactRelation",
        "contracts" => "Contract",
        "orders" => "Order",
        "orderitems" => "OrderItem",
        "assets" => "Asset",
        "casecomments" => "CaseComment",
        "childaccounts" => "Account",
        "campaignmembers" => "CampaignMember",
        "accountteammembers" => "AccountTeamMember",
        "entitlements" => "Entitlement",
        "quotes" => "Quote",
        "quotelineitems" => "QuoteLineItem",
        "contentdocumentlinks" => "ContentDocumentLink",
        "leads" => "Lead",
        _ => return None,
    })
}

/// The names the paths of a query start from: its object and alias, and the
/// aliases of relationship joins (`FROM Contact c, c.Account a`).
#[derive(Debug, Clone, Default)]
struct Names {
    /// The object (`None`: toolgate cannot tell which).
    object: Option<String>,
    /// Its alias.
    alias: Option<String>,
    /// Join aliases and the object each reaches (`None`: unresolved).
    joins: Vec<(String, Option<String>)>,
}

impl Names {
    fn of(object: &str) -> Self {
        Self {
            object: Some(object.to_owned()),
            ..Self::default()
        }
    }

    /// The object a path starts from, and the rest of the path once a
    /// leading join alias, alias or object name is taken off.
    fn start<'p>(&self, segments: &'p [&'p str]) -> (Option<String>, &'p [&'p str]) {
        if let Some(first) = segments.first() {
            if let Some((_, o)) = self
                .joins
                .iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(first))
            {
                return (o.clone(), &segments[1..]);
            }
            let named =
                |n: &Option<String>| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(first));
            if named(&self.object) || named(&self.alias) {
                return (self.object.clone(), &segments[1..]);
            }
        }
        (self.object.clone(), segments)
    }
}

/// Records the objects the relationships `hops` reach from `from`, and
/// returns the object the last one reaches (`None`: unresolved). A hop
/// toolgate cannot resolve is recorded unresolved; the hops after it go on
/// from an unknown object.
fn walk(hops: &[&str], mut from: Option<String>, t: &mut Touched) -> Option<String> {
    for relationship in hops {
        match parent_objects(relationship, from.as_deref()) {
            Some(objects) => {
                for o in &objects {
                    t.object(o);
                }
                // A polymorphic hop goes on from its first object; deeper
                // hops of `Owner.` are User's fields.
                from = objects.into_iter().next();
            }
            None => {
                t.unresolved(relationship);
                from = None;
            }
        }
    }
    from
}

/// Records the objects a dotted field `path` reaches from `names`: every
/// segment but the last is a relationship.
fn path_objects(path: &str, names: &Names, t: &mut Touched) {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.len() < 2 {
        return;
    }
    let (from, rest) = names.start(&segments);
    if rest.len() < 2 {
        return;
    }
    walk(&rest[..rest.len() - 1], from, t);
}

/// Records the objects a relationship join `path` after `FROM` reaches
/// (every segment is a relationship) and returns the last one.
fn join_objects(path: &str, names: &Names, t: &mut Touched) -> Option<String> {
    let segments: Vec<&str> = path.split('.').collect();
    let (from, rest) = names.start(&segments);
    walk(rest, from, t)
}

struct Parser<'t> {
    toks: &'t [Tok],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn word(&mut self, what: &str) -> Result<String, String> {
        match self.toks.get(self.pos) {
            Some(Tok::Word(w)) if is_path(w) => {
                self.pos += 1;
                Ok(w.clone())
            }
            _ => Err(format!("expected {what}")),
        }
    }

    /// Parses `SELECT ... FROM x ...` up to the closing parenthesis (or the
    /// end of a top-level query). `child`: a parent-to-child subquery, whose
    /// `FROM` names a child relationship.
    fn query(&mut self, t: &mut Touched, child: bool, top: bool) -> Result<(), String> {
        if !kw(self.peek(), "SELECT") {
            return Err("a query must start with SELECT".into());
        }
        self.pos += 1;
        // The select list, kept to read after FROM names the object.
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(tok) = self.peek() {
            match tok {
                Tok::Open => depth += 1,
                Tok::Close if depth == 0 => return Err("unbalanced parenthesis".into()),
                Tok::Close => depth -= 1,
                Tok::Word(w) if depth == 0 && w.eq_ignore_ascii_case("FROM") => break,
                _ => {}
            }
            self.pos += 1;
        }
        let select_end = self.pos;
        if !kw(self.peek(), "FROM") {
            return Err("a query needs FROM".into());
        }
        self.pos += 1;
        let from = self.word("an object name after FROM")?;
        let object = if child {
            // A parent-to-child subquery: FROM names a child relationship.
            match child_object(&from) {
                Some(o) => {
                    t.object(o);
                    Some(o.to_owned())
                }
                None => {
                    t.unresolved(&from);
                    None
                }
            }
        } else {
            if from.contains('.') {
                return Err(format!("{from} is not an object name"));
            }
            t.object(&from);
            Some(from.clone())
        };
        let mut names = Names {
            object,
            alias: self.alias()?,
            joins: Vec::new(),
        };
        // Relationship joins: `FROM Contact c, c.Account a`.
        while matches!(self.peek(), Some(Tok::Comma)) {
            self.pos += 1;
            let path = self.word("a relationship after the comma in FROM")?;
            let reached = join_objects(&path, &names, t);
            if let Some(a) = self.alias()? {
                names.joins.push((a, reached));
            }
        }
        // The select list, now that the objects are known.
        let mut inner = Parser {
            toks: &self.toks[start..select_end],
            pos: 0,
        };
        inner.expressions(t, &names, true)?;
        // The rest: WHERE, ORDER BY, LIMIT, ...
        let rest_start = self.pos;
        let mut depth = 0usize;
        while let Some(tok) = self.peek() {
            match tok {
                Tok::Open => depth += 1,
                Tok::Close if depth == 0 => break,
                Tok::Close => depth -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        let rest = &self.toks[rest_start..self.pos];
        if top && let Some(limit) = top_level_limit(rest)? {
            t.limit = Some(limit);
        }
        let mut inner = Parser { toks: rest, pos: 0 };
        inner.expressions(t, &names, false)
    }

    /// An alias after a `FROM` item (`Contact c`, `Contact AS c`), if any.
    fn alias(&mut self) -> Result<Option<String>, String> {
        let name = |tok: Option<&Tok>| match tok {
            Some(Tok::Word(w))
                if is_path(w)
                    && !w.contains('.')
                    && !CLAUSE_KEYWORDS.iter().any(|k| w.eq_ignore_ascii_case(k))
                    && !w.eq_ignore_ascii_case("AS") =>
            {
                Some(w.clone())
            }
            _ => None,
        };
        if kw(self.peek(), "AS") {
            self.pos += 1;
            let a = name(self.peek()).ok_or("expected an alias after AS")?;
            self.pos += 1;
            return Ok(Some(a));
        }
        Ok(name(self.peek()).inspect(|_| self.pos += 1))
    }

    /// Reads expressions (a select list or the clauses after FROM):
    /// relationship paths, function arguments, TYPEOF, and subqueries (a
    /// parent-to-child one in a select list, a semi-join elsewhere).
    fn expressions(
        &mut self,
        t: &mut Touched,
        names: &Names,
        select_list: bool,
    ) -> Result<(), String> {
        let mut after_using = false;
        while let Some(tok) = self.peek().cloned() {
            match tok {
                Tok::Open => {
                    self.pos += 1;
                    if kw(self.peek(), "SELECT") {
                        self.query(t, select_list, false)?;
                        if !matches!(self.peek(), Some(Tok::Close)) {
                            return Err("a subquery must end with )".into());
                        }
                        self.pos += 1;
                    }
                }
                Tok::Word(w) if w.eq_ignore_ascii_case("TYPEOF") => {
                    self.pos += 1;
                    let field = self.word("a field after TYPEOF")?;
                    let mut has_else = false;
                    let mut ended = false;
                    // The object the fields of the current branch belong to:
                    // `WHEN Account THEN Owner.Email` reads Account's Owner.
                    let mut branch: Option<Names> = None;
                    while let Some(tok) = self.peek().cloned() {
                        self.pos += 1;
                        match tok {
                            Tok::Word(w) if w.eq_ignore_ascii_case("END") => {
                                ended = true;
                                break;
                            }
                            Tok::Word(w) if w.eq_ignore_ascii_case("ELSE") => {
                                has_else = true;
                                branch = Some(Names::default());
                            }
                            Tok::Word(w) if w.eq_ignore_ascii_case("WHEN") => {
                                let o = self.word("an object after WHEN")?;
                                t.object(&o);
                                branch = Some(Names::of(&o));
                            }
                            Tok::Word(w) if is_path(&w) && w.contains('.') => {
                                let Some(b) = &branch else {
                                    return Err("TYPEOF needs WHEN before its fields".into());
                                };
                                path_objects(&w, b, t);
                            }
                            _ => {}
                        }
                    }
                    if !ended {
                        return Err("TYPEOF needs END".into());
                    }
                    if has_else {
                        t.unresolved(&field);
                    }
                }
                Tok::Word(w) if w.eq_ignore_ascii_case("USING") => {
                    after_using = true;
                    self.pos += 1;
                }
                Tok::Word(w) => {
                    self.pos += 1;
                    if !after_using && is_path(&w) && w.contains('.') {
                        path_objects(&w, names, t);
                    }
                    after_using = after_using
                        && (w.eq_ignore_ascii_case("USING") || w.eq_ignore_ascii_case("SCOPE"));
                }
                Tok::Close => {
                    self.pos += 1;
                }
                Tok::Literal | Tok::Comma | Tok::Other => self.pos += 1,
            }
        }
        Ok(())
    }
}

/// What a SOQL statement touches. Errors: why it does not parse.
pub fn soql_touches(soql: &str) -> Result<Touched, String> {
    let toks = tokenize(soql)?;
    let mut t = Touched::default();
    let mut p = Parser {
        toks: &toks,
        pos: 0,
    };
    p.query(&mut t, false, true)?;
    if p.pos != toks.len() {
        return Err("unexpected ) in the query".into());
    }
    Ok(t)
}

/// What a SOSL statement touches: its `RETURNING` objects and their
/// relationship paths, or every object without `RETURNING`.
pub fn sosl_touches(sosl: &str) -> Result<Touched, String> {
    let toks = tokenize(sosl)?;
    let mut t = Touched::default();
    if !kw(toks.first(), "FIND") {
        return Err("a search must start with FIND".into());
    }
    // The top-level LIMIT (not the per-object ones inside RETURNING's
    // parentheses; the search text is a literal).
    if let Some(limit) = top_level_limit(&toks)? {
        t.limit = Some(limit);
    }
    let Some(at) = toks.iter().position(|tok| kw(Some(tok), "RETURNING")) else {
        t.every_object = true;
        return Ok(t);
    };
    let mut i = at + 1;
    loop {
        let Some(Tok::Word(object)) = toks.get(i) else {
            return Err("RETURNING needs an object name".into());
        };
        if !is_path(object) || object.contains('.') {
            return Err(format!("{object} is not an object name"));
        }
        t.object(object);
        i += 1;
        if matches!(toks.get(i), Some(Tok::Open)) {
            let start = i + 1;
            let mut depth = 1;
            i += 1;
            while depth > 0 {
                match toks.get(i) {
                    Some(Tok::Open) => depth += 1,
                    Some(Tok::Close) => depth -= 1,
                    None => return Err("unbalanced parenthesis after RETURNING".into()),
                    _ => {}
                }
                i += 1;
            }
            let mut p = Parser {
                toks: &toks[start..i - 1],
                pos: 0,
            };
            p.expressions(&mut t, &Names::of(object), false)?;
        }
        if matches!(toks.get(i), Some(Tok::Comma)) {
            i += 1;
        } else {
            break;
        }
    }
    Ok(t)
}

/// The settings of a query scope hook.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Objects allowed (empty: any not denied).
    pub allow: &'a [String],
    /// Objects denied.
    pub deny: &'a [String],
    /// Required LIMIT bound.
    pub max_limit: Option<u32>,
    /// Refuse queryAll.
    pub deny_query_all: bool,
}

impl<'a> Scope<'a> {
    /// The scope of a [`HookKind::QueryScope`], if it is one.
    pub fn of(kind: &'a HookKind) -> Option<Self> {
        match kind {
            HookKind::QueryScope {
                allow_objects,
                deny_objects,
                max_limit,
                deny_query_all,
            } => Some(Self {
                allow: allow_objects,
                deny: deny_objects,
                max_limit: *max_limit,
                deny_query_all: *deny_query_all,
            }),
            _ => None,
        }
    }

    fn check_objects(&self, t: &Touched) -> Result<(), String> {
        let listed = |list: &[String], o: &str| list.iter().any(|x| x.eq_ignore_ascii_case(o));
        for o in &t.objects {
            if listed(self.deny, o) {
                return Err(format!(
                    "it touches {o}, which this gateway does not let queries read"
                ));
            }
            if !self.allow.is_empty() && !listed(self.allow, o) {
                return Err(format!(
                    "it touches {o}; queries may read only {}",
                    self.allow.join(", ")
                ));
            }
        }
        if !self.allow.is_empty() {
            if t.every_object {
                return Err(format!(
                    "a search without RETURNING searches every object; name the objects (only {} are allowed)",
                    self.allow.join(", ")
                ));
            }
            if let Some(r) = t.unresolved.first() {
                return Err(format!(
                    "toolgate cannot tell which object the relationship {r} reaches, so it refuses it (only {} are allowed)",
                    self.allow.join(", ")
                ));
            }
        } else if !self.deny.is_empty() {
            if t.every_object {
                return Err(
                    "a search without RETURNING searches every object, including denied ones; name the objects".into(),
                );
            }
            for r in &t.unresolved {
                if let Some(base) = r.strip_suffix("__r").or_else(|| r.strip_suffix("__R")) {
                    let custom = format!("{base}__c");
                    if listed(self.deny, &custom) {
                        return Err(format!(
                            "its relationship {r} reaches {custom}, which this gateway does not let queries read"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// With `max_limit` set: the `limit` of `subject` (a `LIMIT` clause or
    /// a `limit` argument, as `word` says) is required and at most
    /// `max_limit`.
    fn check_limit(&self, subject: &str, word: &str, limit: Option<u64>) -> Result<(), String> {
        match (self.max_limit, limit) {
            (None, _) => Ok(()),
            (Some(max), None) => Err(format!("{subject} needs {word} {max} or lower")),
            (Some(max), Some(n)) if n > u64::from(max) => {
                Err(format!("{word} {n} is over the maximum of {max}"))
            }
            (Some(_), Some(_)) => Ok(()),
        }
    }

    /// Checks a call of the catalog tool `tool` with `args`: `Err(reason)`
    /// when the scope refuses it. Tools outside [`SCOPED_TOOLS`] pass.
    pub fn check(&self, tool: &str, args: &Value) -> Result<(), String> {
        let text = |k: &str| args.get(k).and_then(Value::as_str);
        let fields = |names: &Names, t: &mut Touched| {
            for f in args
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                path_objects(f, names, t);
            }
        };
        match tool {
            "query" => {
                if self.deny_query_all && args.get("include_deleted") == Some(&Value::Bool(true)) {
                    return Err(
                        "queryAll (include_deleted) is not allowed: deleted and archived records stay hidden".into(),
                    );
                }
                // A cursor continues a query checked when it started.
                let Some(soql) = text("soql") else {
                    return Ok(());
                };
                let t = soql_touches(soql).map_err(|e| {
                    format!("toolgate cannot parse the query ({e}), so it refuses it")
                })?;
                self.check_objects(&t)?;
                self.check_limit("the query", "LIMIT", t.limit)
            }
            "search" => {
                let (t, limit) = match text("sosl") {
                    Some(sosl) => {
                        let t = sosl_touches(sosl).map_err(|e| {
                            format!("toolgate cannot parse the search ({e}), so it refuses it")
                        })?;
                        let limit = t.limit;
                        (t, ("LIMIT", limit))
                    }
                    None => {
                        let mut t = Touched::default();
                        match args.get("objects").and_then(Value::as_array) {
                            Some(objects) if !objects.is_empty() => {
                                for o in objects {
                                    let name = o.get("name").and_then(Value::as_str).unwrap_or("");
                                    t.object(name);
                                    for f in o
                                        .get("fields")
                                        .and_then(Value::as_array)
                                        .into_iter()
                                        .flatten()
                                        .filter_map(Value::as_str)
                                    {
                                        path_objects(f, &Names::of(name), &mut t);
                                    }
                                }
                            }
                            _ => t.every_object = true,
                        }
                        let limit = args.get("limit").and_then(Value::as_u64);
                        (t, ("limit", limit))
                    }
                };
                self.check_objects(&t)?;
                self.check_limit("the search", limit.0, limit.1)
            }
            "get_record" => {
                let mut t = Touched::default();
                let mut names = Names::default();
                if let Some(o) = text("object_name") {
                    t.object(o);
                    names = Names::of(o);
                }
                // `Account.Owner.Email` on a Contact reads Account and User.
                fields(&names, &mut t);
                self.check_objects(&t)
            }
            "get_related_records" => {
                let mut t = Touched::default();
                if let Some(o) = text("object_name") {
                    t.object(o);
                }
                // The fields are the child records' fields.
                let mut child = Names::default();
                if let Some(r) = text("relationship_name") {
                    match child_object(r) {
                        Some(o) => {
                            t.object(o);
                            child = Names::of(o);
                        }
                        None => t.unresolved(r),
                    }
                }
                fields(&child, &mut t);
                self.check_objects(&t)?;
                self.check_limit(
                    "get_related_records",
                    "limit",
                    args.get("limit").and_then(Value::as_u64),
                )
            }
            // Recently viewed records of any object: no argument narrows
            // the objects (it takes only `limit`), so an allow list cannot
            // admit it and a deny list cannot keep denied objects out.
            "list_recent" if !self.allow.is_empty() || !self.deny.is_empty() => Err(
                "list_recent returns records of any object, and this gateway limits which objects may be read".into(),
            ),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects(soql: &str) -> Vec<String> {
        soql_touches(soql).unwrap().objects
    }

    #[test]
    fn from_paths_subqueries_and_semi_joins_count_literals_do_not() {
        assert_eq!(
            objects("SELECT Id, Name FROM Account WHERE Name = 'Contact Opportunity.Name' LIMIT 5"),
            ["Account"]
        );
        let t = soql_touches(
            "SELECT Id, Account.Owner.Name, (SELECT Id FROM Cases) FROM Contact c WHERE c.ReportsTo.Name != null AND AccountId IN (SELECT Id FROM Lead) ORDER BY Name LIMIT 10",
        )
        .unwrap();
        assert_eq!(
            t.objects,
            ["Contact", "Account", "User", "Group", "Case", "Lead"]
        );
        assert_eq!(t.limit, Some(10));
        assert!(t.unresolved.is_empty());
        let t =
            soql_touches("SELECT Id, (SELECT Id FROM Invoices__r), Region__r.Name FROM Account")
                .unwrap();
        assert_eq!(t.objects, ["Account"]);
        assert_eq!(t.unresolved, ["Invoices__r", "Region__r"]);
        assert_eq!(t.limit, None);
        let t = soql_touches(
            "SELECT TYPEOF What WHEN Account THEN Phone WHEN Opportunity THEN Amount END FROM Event WHERE CreatedDate = LAST_N_DAYS:30 AND ActivityDate > 2026-01-01",
        )
        .unwrap();
        assert_eq!(t.objects, ["Event", "Account", "Opportunity"]);
        assert!(t.unresolved.is_empty());
        assert_eq!(
            objects("SELECT COUNT(Id), Owner.Name FROM Opportunity GROUP BY Owner.Name"),
            ["Opportunity", "User", "Group"]
        );
    }

    #[test]
    fn statements_that_do_not_parse_are_errors() {
        for bad in [
            "DELETE FROM Account",
            "SELECT Id FROM",
            "SELECT Id FROM Account WHERE Name = 'open",
            "SELECT Id FROM Account)",
            "SELECT Id, (SELECT Id FROM Contacts FROM Account",
            "SELECT Id FROM Account LIMIT :n",
        ] {
            assert!(soql_touches(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sosl_returning_objects_and_every_object() {
        let t = sosl_touches("FIND {Acme RETURNING Lead} IN ALL FIELDS RETURNING Account(Name, Owner.Name), Contact LIMIT 5").unwrap();
        assert_eq!(t.objects, ["Account", "User", "Group", "Contact"]);
        assert!(sosl_touches("FIND {Acme}").unwrap().every_object);
        assert!(sosl_touches("SELECT Id FROM Account").is_err());
    }

    #[test]
    fn scope_allows_denies_and_requires_limits() {
        let allow = vec!["Account".to_owned(), "contact".to_owned()];
        let deny = vec!["Lead".to_owned(), "Secret__c".to_owned()];
        let scope = Scope {
            allow: &allow,
            deny: &[],
            max_limit: Some(100),
            deny_query_all: true,
        };
        let q = |soql: &str| json!({"soql": soql});
        assert!(
            scope
                .check("query", &q("SELECT Id FROM Contact LIMIT 100"))
                .is_ok()
        );
        let err = scope
            .check("query", &q("SELECT Id FROM Lead LIMIT 5"))
            .unwrap_err();
        assert!(err.contains("Lead"), "{err}");
        let err = scope
            .check("query", &q("SELECT Id FROM Account"))
            .unwrap_err();
        assert!(err.contains("LIMIT 100"), "{err}");
        let err = scope
            .check("query", &q("SELECT Id FROM Account LIMIT 101"))
            .unwrap_err();
        assert!(err.contains("101"), "{err}");
        let err = scope
            .check(
                "query",
                &q("SELECT Id, (SELECT Id FROM Invoices__r) FROM Account LIMIT 1"),
            )
            .unwrap_err();
        assert!(err.contains("Invoices__r"), "{err}");
        let err = scope
            .check(
                "query",
                &json!({"soql": "SELECT Id FROM Account LIMIT 1", "include_deleted": true}),
            )
            .unwrap_err();
        assert!(err.contains("queryAll"), "{err}");
        assert!(scope.check("query", &json!({"cursor": "abc"})).is_ok());
        assert!(scope.check("search", &json!({"text": "acme"})).is_err());
        assert!(
            scope
                .check(
                    "search",
                    &json!({"text": "acme", "objects": [{"name": "Account"}], "limit": 50})
                )
                .is_ok()
        );
        assert!(scope
            .check("get_related_records", &json!({"object_name": "Account", "record_id": "x", "relationship_name": "Opportunities"}))
            .is_err());
        assert!(
            scope
                .check("create_record", &json!({"object_name": "Lead"}))
                .is_ok()
        );

        let scope = Scope {
            allow: &[],
            deny: &deny,
            max_limit: None,
            deny_query_all: false,
        };
        assert!(
            scope
                .check("query", &q("SELECT Id, Region__r.Name FROM Account"))
                .is_ok()
        );
        let err = scope
            .check("query", &q("SELECT Id, Secret__r.Name FROM Account"))
            .unwrap_err();
        assert!(err.contains("Secret__c"), "{err}");
        assert!(
            scope
                .check(
                    "query",
                    &q("SELECT Id FROM Account WHERE Id IN (SELECT ConvertedAccountId FROM lead)")
                )
                .is_err()
        );
        assert!(
            scope
                .check("get_record", &json!({"object_name": "LEAD"}))
                .is_err()
        );
        let err = scope
            .check("query", &q("SELEC Id FROM Account"))
            .unwrap_err();
        assert!(err.contains("cannot parse"), "{err}");
    }

    fn allow(objects: &[&str]) -> Vec<String> {
        objects.iter().map(|o| (*o).to_owned()).collect()
    }

    #[test]
    fn typeof_then_paths_start_from_the_when_object() {
        let t = soql_touches(
            "SELECT TYPEOF What WHEN Account THEN Owner.Email, Name WHEN Opportunity THEN Account.Name END FROM Task LIMIT 5",
        )
        .unwrap();
        assert_eq!(
            t.objects,
            ["Task", "Account", "User", "Group", "Opportunity"]
        );
        let list = allow(&["Task", "Account"]);
        let scope = Scope {
            allow: &list,
            deny: &[],
            max_limit: None,
            deny_query_all: false,
        };
        let err = scope
            .check(
                "query",
                &json!({"soql": "SELECT TYPEOF What WHEN Account THEN Owner.Email END FROM Task"}),
            )
            .unwrap_err();
        assert!(err.contains("User"), "{err}");
        assert!(
            scope
                .check(
                    "query",
                    &json!({"soql": "SELECT TYPEOF What WHEN Account THEN Name, Phone END FROM Task"}),
                )
                .is_ok()
        );
        // ELSE fields start from an unknown object; their hops still count.
        let t = soql_touches(
            "SELECT TYPEOF What WHEN Account THEN Name ELSE CreatedBy.Email END FROM Task",
        )
        .unwrap();
        assert_eq!(t.objects, ["Task", "Account", "User"]);
        assert!(soql_touches("SELECT TYPEOF What WHEN Account THEN Name FROM Task").is_err());
    }

    #[test]
    fn relationship_joins_in_from_and_their_aliases() {
        let t = soql_touches("SELECT a.Name FROM Contact c, c.Account a").unwrap();
        assert_eq!(t.objects, ["Contact", "Account"]);
        assert!(t.unresolved.is_empty(), "{:?}", t.unresolved);
        let t = soql_touches(
            "SELECT a.Owner.Email FROM Contact c, c.Account a, a.CreatedBy u WHERE u.Manager.Name != null",
        )
        .unwrap();
        assert_eq!(t.objects, ["Contact", "Account", "User", "Group"]);
        let deny = allow(&["Account"]);
        let scope = Scope {
            allow: &[],
            deny: &deny,
            max_limit: None,
            deny_query_all: false,
        };
        let err = scope
            .check(
                "query",
                &json!({"soql": "SELECT a.Name FROM Contact c, c.Account a"}),
            )
            .unwrap_err();
        assert!(err.contains("Account"), "{err}");
        let err = scope
            .check(
                "query",
                &json!({"soql": "SELECT count() FROM Contact c, c.Account a WHERE a.Name = 'x'"}),
            )
            .unwrap_err();
        assert!(err.contains("Account"), "{err}");
        let deny = allow(&["User"]);
        let scope = Scope {
            deny: &deny,
            ..scope
        };
        assert!(
            scope
                .check(
                    "query",
                    &json!({"soql": "SELECT a.Owner.Email FROM Contact c, c.Account a"}),
                )
                .is_err()
        );
        assert!(soql_touches("SELECT Id FROM Contact c,").is_err());
    }

    #[test]
    fn dotted_fields_of_get_record_and_get_related_records_count() {
        let list = allow(&["Contact"]);
        let scope = Scope {
            allow: &list,
            deny: &[],
            max_limit: None,
            deny_query_all: false,
        };
        let call = |fields: Value| json!({"object_name": "Contact", "record_id": "003000000000001AAA", "fields": fields});
        assert!(
            scope
                .check("get_record", &call(json!(["Name", "Email"])))
                .is_ok()
        );
        let err = scope
            .check("get_record", &call(json!(["Name", "Account.Owner.Email"])))
            .unwrap_err();
        assert!(err.contains("Account"), "{err}");
        let list = allow(&["Contact", "Account"]);
        let scope = Scope {
            allow: &list,
            ..scope
        };
        let err = scope
            .check("get_record", &call(json!(["Account.Owner.Email"])))
            .unwrap_err();
        assert!(err.contains("User"), "{err}");
        let related = |fields: Value| {
            json!({"object_name": "Account", "record_id": "001000000000001AAA",
                "relationship_name": "Contacts", "fields": fields})
        };
        assert!(
            scope
                .check(
                    "get_related_records",
                    &related(json!(["Name", "Account.Name"]))
                )
                .is_ok()
        );
        let err = scope
            .check(
                "get_related_records",
                &related(json!(["ReportsTo.Owner.Email"])),
            )
            .unwrap_err();
        assert!(err.contains("User"), "{err}");
        let deny = allow(&["User"]);
        let scope = Scope {
            allow: &[],
            deny: &deny,
            ..scope
        };
        assert!(
            scope
                .check("get_record", &call(json!(["Account.CreatedBy.Email"])))
                .is_err()
        );
    }

    #[test]
    fn list_recent_is_refused_under_an_allow_or_deny_list() {
        let list = allow(&["Account"]);
        let with_allow = Scope {
            allow: &list,
            deny: &[],
            max_limit: None,
            deny_query_all: false,
        };
        let err = with_allow
            .check("list_recent", &json!({"limit": 5}))
            .unwrap_err();
        assert!(err.contains("list_recent"), "{err}");
        let with_deny = Scope {
            allow: &[],
            deny: &list,
            ..with_allow
        };
        assert!(with_deny.check("list_recent", &json!({})).is_err());
        let limits_only = Scope {
            allow: &[],
            deny: &[],
            max_limit: Some(10),
            deny_query_all: true,
        };
        assert!(limits_only.check("list_recent", &json!({})).is_ok());
        assert!(SCOPED_TOOLS.contains(&"list_recent"));
    }

    #[test]
    fn max_limit_bounds_search_and_get_related_records() {
        let scope = Scope {
            allow: &[],
            deny: &[],
            max_limit: Some(100),
            deny_query_all: false,
        };
        let sosl = |s: &str| json!({"sosl": s});
        let err = scope
            .check("search", &sosl("FIND {Acme} RETURNING Account(Name)"))
            .unwrap_err();
        assert!(err.contains("LIMIT 100"), "{err}");
        let err = scope
            .check(
                "search",
                &sosl("FIND {Acme} RETURNING Account(Name LIMIT 5) LIMIT 2000"),
            )
            .unwrap_err();
        assert!(err.contains("2000"), "{err}");
        // A per-object LIMIT does not bound the search; LIMIT in the text is a literal.
        assert!(
            scope
                .check(
                    "search",
                    &sosl("FIND {Acme LIMIT 5} RETURNING Account(Name LIMIT 5)")
                )
                .is_err()
        );
        assert!(
            scope
                .check(
                    "search",
                    &sosl("FIND {Acme} IN NAME FIELDS RETURNING Account(Name), Contact LIMIT 100")
                )
                .is_ok()
        );
        assert_eq!(
            sosl_touches("FIND {Acme} RETURNING Account LIMIT 7")
                .unwrap()
                .limit,
            Some(7)
        );
        assert!(sosl_touches("FIND {Acme} RETURNING Account LIMIT").is_err());
        let text = |limit: Option<u64>| {
            let mut v = json!({"text": "acme", "objects": [{"name": "Account"}]});
            if let Some(n) = limit {
                v["limit"] = json!(n);
            }
            v
        };
        assert!(scope.check("search", &text(None)).is_err());
        assert!(scope.check("search", &text(Some(101))).is_err());
        assert!(scope.check("search", &text(Some(100))).is_ok());
        let related = |limit: Option<u64>| {
            let mut v = json!({"object_name": "Account", "record_id": "001000000000001AAA",
                "relationship_name": "Contacts"});
            if let Some(n) = limit {
                v["limit"] = json!(n);
            }
            v
        };
        let err = scope
            .check("get_related_records", &related(None))
            .unwrap_err();
        assert!(err.contains("limit 100"), "{err}");
        let err = scope
            .check("get_related_records", &related(Some(2000)))
            .unwrap_err();
        assert!(err.contains("2000"), "{err}");
        assert!(
            scope
                .check("get_related_records", &related(Some(100)))
                .is_ok()
        );
        assert!(
            scope
                .check(
                    "get_record",
                    &json!({"object_name": "Account", "record_id": "001000000000001AAA"})
                )
                .is_ok()
        );
    }
}
