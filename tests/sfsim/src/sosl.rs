//! The SOSL subset and parameterized search.
//!
//! `FIND {term} [IN ALL|NAME|EMAIL|PHONE FIELDS] [RETURNING Obj [(fields
//! [WHERE ...] [ORDER BY ...] [LIMIT n] [OFFSET n])], ...] [LIMIT n]`.
//! The term is matched word by word, case-insensitively, against the
//! scope's text fields (see `soql::search`); the RETURNING clauses reuse the
//! SOQL resolver and evaluator. The result is the flat `searchRecords`
//! array, objects in RETURNING order (schema order without RETURNING, Id
//! only), records in creation order unless ordered.
//! Source: SOQL and SOSL Reference, "SOSL Syntax"; REST API Developer
//! Guide, "Search" and "Parameterized Search".

use serde_json::Value;
use winnow::combinator::{delimited, opt, preceded, separated};
use winnow::prelude::*;

use crate::record::{DataSource, Record};
use crate::schema::{FieldDef, FieldType};
use crate::soql::ast::{Cond, Count, Ident, OrderKey, Path, Query, SelectItem};
use crate::soql::lexer::{self, Tok};
use crate::soql::parser::{self, In, PResult, count, ident, kw, path, punct};
use crate::soql::resolve::{Plan, Resolver};
use crate::soql::search::{self, Term, TermError};
use crate::soql::{Ctx, QueryOptions, SoqlError, unexpected};

const MALFORMED: &str = "MALFORMED_SEARCH";

/// A parameterized search (`GET /parameterizedSearch?q=...` or the POST
/// body): plain text, no SOSL syntax.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParameterizedSearch {
    /// The search text, taken literally (only `*` and `?` are wildcards).
    pub q: String,
    /// `ALL`, `NAME`, `EMAIL` or `PHONE` (default `ALL`).
    pub scope: Option<String>,
    /// The objects to search; empty means every object.
    pub sobjects: Vec<SearchObject>,
    /// The most records in all.
    pub overall_limit: Option<usize>,
    /// Fields returned for objects that list none (default `Id`).
    pub default_fields: Vec<String>,
}

/// One object of a parameterized search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchObject {
    /// The object name.
    pub name: String,
    /// Fields to return (default: the search's `default_fields`).
    pub fields: Vec<String>,
    /// The most records of this object.
    pub limit: Option<usize>,
}

/// Which fields a search looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Name,
    Email,
    Phone,
}

impl Scope {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "ALL" => Self::All,
            "NAME" => Self::Name,
            "EMAIL" => Self::Email,
            "PHONE" => Self::Phone,
            _ => return None,
        })
    }

    fn covers(self, field: &FieldDef) -> bool {
        match self {
            Self::All => field.field_type.is_text(),
            Self::Name => field.name_field,
            Self::Email => field.field_type == FieldType::Email,
            Self::Phone => field.field_type == FieldType::Phone,
        }
    }
}

/// The clauses after the braced term.
struct Tail {
    scope: Option<Ident>,
    returning: Vec<Query>,
    limit: Option<Count>,
}

fn tail(i: &mut In<'_>) -> PResult<Tail> {
    let scope = opt(delimited(kw("IN"), ident, kw("FIELDS"))).parse_next(i)?;
    let returning = opt(preceded(
        kw("RETURNING"),
        separated(1.., returning_object, punct(Tok::Comma)),
    ))
    .parse_next(i)?
    .unwrap_or_default();
    let limit = opt(preceded(kw("LIMIT"), count)).parse_next(i)?;
    punct(Tok::Eof).parse_next(i)?;
    Ok(Tail {
        scope,
        returning,
        limit,
    })
}

type ObjectBody = (
    Vec<Path>,
    Option<Cond>,
    Option<Vec<OrderKey>>,
    Option<Count>,
    Option<Count>,
);

/// `Obj` or `Obj(fields [WHERE] [ORDER BY] [LIMIT] [OFFSET])`, as a query.
fn returning_object(i: &mut In<'_>) -> PResult<Query> {
    let from = ident.parse_next(i)?;
    let body: Option<ObjectBody> = opt(delimited(
        punct(Tok::LParen),
        (
            separated(1.., path, punct(Tok::Comma)),
            opt(preceded(kw("WHERE"), parser::cond)),
            opt(parser::order_by),
            opt(preceded(kw("LIMIT"), count)),
            opt(preceded(kw("OFFSET"), count)),
        ),
        punct(Tok::RParen),
    ))
    .parse_next(i)?;
    let (fields, filter, order_by, limit, offset) = body.unwrap_or_else(|| {
        let id = Ident {
            name: "Id".into(),
            pos: from.pos,
        };
        (vec![Path { parts: vec![id] }], None, None, None, None)
    });
    Ok(Query {
        select_pos: fields.first().map_or(from.pos, Path::pos),
        select: fields
            .into_iter()
            .map(|path| SelectItem::Field { path, alias: None })
            .collect(),
        from,
        filter,
        group_by: vec![],
        order_by: order_by.unwrap_or_default(),
        limit,
        offset,
    })
}

/// A query returning `fields` (default `Id`) of `object`, for searches
/// without RETURNING and for parameterized search.
fn object_query(object: &str, fields: &[Path], limit: Option<usize>) -> Query {
    let id = Path {
        parts: vec![Ident {
            name: "Id".into(),
            pos: 0,
        }],
    };
    let fields = if fields.is_empty() {
        vec![id]
    } else {
        fields.to_vec()
    };
    Query {
        select_pos: 0,
        select: fields
            .into_iter()
            .map(|path| SelectItem::Field { path, alias: None })
            .collect(),
        from: Ident {
            name: object.into(),
            pos: 0,
        },
        filter: None,
        group_by: vec![],
        order_by: vec![],
        limit: limit.map(|value| Count { value, pos: 0 }),
        offset: None,
    }
}

fn too_short() -> SoqlError {
    SoqlError::new(
        "INVALID_SEARCH",
        "search term must be longer than one character",
    )
}

fn every_object(source: &dyn DataSource, fields: &[Path]) -> Vec<Query> {
    let objects = &source.schema().objects;
    objects
        .iter()
        .map(|o| object_query(&o.name, fields, None))
        .collect()
}

/// Runs a SOSL search; returns the `searchRecords` array.
pub fn search(
    source: &dyn DataSource,
    sosl: &str,
    options: &QueryOptions,
) -> Result<Vec<Value>, SoqlError> {
    let mut rest = sosl;
    let raw = match search::find_clause(&mut rest) {
        Ok(Some(raw)) => raw,
        Ok(None) => {
            return Err(SoqlError::new(
                MALFORMED,
                "No search term found. The search term must be enclosed in braces.",
            ));
        }
        Err(_) => {
            let tokens = lexer::lex(sosl, 0).map_err(|e| SoqlError::new(MALFORMED, e))?;
            return Err(unexpected(sosl, &tokens, 0, MALFORMED));
        }
    };
    let term = search::parse_sosl_term(raw).map_err(|e| match e {
        TermError::TooDeep => parser::too_deep(MALFORMED),
        TermError::Invalid => SoqlError::new(MALFORMED, format!("Invalid search term: {{{raw}}}")),
    })?;
    if term.significant_len() < 2 {
        return Err(too_short());
    }
    let tokens =
        lexer::lex(sosl, sosl.len() - rest.len()).map_err(|e| SoqlError::new(MALFORMED, e))?;
    let tail =
        parser::run(&tokens, tail).map_err(|failure| failure.error(sosl, &tokens, MALFORMED))?;
    let scope = match &tail.scope {
        None => Scope::All,
        Some(s) => Scope::from_name(&s.name)
            .ok_or_else(|| unexpected(sosl, &tokens, token_at(&tokens, s.pos), MALFORMED))?,
    };
    let resolver = Resolver {
        schema: source.schema(),
        src: Some(sosl),
        today: options.now.date_naive(),
        malformed: MALFORMED,
    };
    let queries = if tail.returning.is_empty() {
        every_object(source, &[])
    } else {
        tail.returning
    };
    let plans = queries
        .iter()
        .map(|q| resolver.plan(q))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(run(
        source,
        options,
        &term,
        scope,
        &plans,
        tail.limit.map(|l| l.value),
    ))
}

fn token_at(tokens: &[lexer::Token], pos: usize) -> usize {
    tokens.iter().position(|t| t.start == pos).unwrap_or(0)
}

/// Runs a parameterized search; returns the `searchRecords` array.
pub fn parameterized_search(
    source: &dyn DataSource,
    search: &ParameterizedSearch,
    options: &QueryOptions,
) -> Result<Vec<Value>, SoqlError> {
    let term = search::plain_term(&search.q);
    if term.significant_len() < 2 {
        return Err(too_short());
    }
    let scope = match &search.scope {
        None => Scope::All,
        Some(s) => Scope::from_name(s).ok_or_else(|| {
            SoqlError::new(
                MALFORMED,
                format!("Invalid scope: {s}. Use ALL, NAME, EMAIL or PHONE."),
            )
        })?,
    };
    let resolver = Resolver {
        schema: source.schema(),
        src: None,
        today: options.now.date_naive(),
        malformed: MALFORMED,
    };
    let object_of = |name: &str| {
        resolver.object(&Ident {
            name: name.into(),
            pos: 0,
        })
    };
    let defaults = field_paths(&search.default_fields, "")?;
    let queries = if search.sobjects.is_empty() {
        every_object(source, &defaults)
    } else {
        let mut queries = vec![];
        for so in &search.sobjects {
            let object = object_of(&so.name)?;
            let fields = if so.fields.is_empty() {
                defaults.clone()
            } else {
                field_paths(&so.fields, &object.name)?
            };
            queries.push(object_query(&object.name, &fields, so.limit));
        }
        queries
    };
    let plans = queries
        .iter()
        .map(|q| resolver.plan(q))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(run(
        source,
        options,
        &term,
        scope,
        &plans,
        search.overall_limit,
    ))
}

/// Field names (`Name`, `Account.Name`) parsed as paths.
fn field_paths(names: &[String], object: &str) -> Result<Vec<Path>, SoqlError> {
    names
        .iter()
        .map(|name| {
            lexer::lex(name, 0)
                .ok()
                .and_then(|tokens| {
                    parser::run(&tokens, |i: &mut In<'_>| {
                        let p = path.parse_next(i)?;
                        punct(Tok::Eof).parse_next(i)?;
                        Ok(p)
                    })
                    .ok()
                })
                .ok_or_else(|| {
                    SoqlError::new(
                        "INVALID_FIELD",
                        format!(
                            "No such column '{name}' on entity '{object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
                        ),
                    )
                })
        })
        .collect()
}

/// The records of each plan's object that match `term` in `scope`, through
/// the plan's WHERE/ORDER BY/LIMIT, at most `limit` in all.
fn run(
    source: &dyn DataSource,
    options: &QueryOptions,
    term: &Term,
    scope: Scope,
    plans: &[Plan<'_>],
    limit: Option<usize>,
) -> Vec<Value> {
    let ctx = Ctx { source, options };
    let mut out = vec![];
    for plan in plans {
        let fields: Vec<&FieldDef> = plan
            .object
            .fields
            .iter()
            .filter(|f| scope.covers(f))
            .collect();
        let hits: Vec<&Record> = ctx
            .candidates(plan)
            .into_iter()
            .filter(|r| !r.deleted && term.matches(&field_runs(r, &fields)))
            .collect();
        out.extend(ctx.select(plan, hits));
    }
    out.truncate(limit.unwrap_or(usize::MAX));
    out
}

fn field_runs(record: &Record, fields: &[&FieldDef]) -> Vec<Vec<Vec<char>>> {
    fields
        .iter()
        .filter_map(|f| record.get(&f.name).as_str())
        .map(search::text_runs)
        .collect()
}
