//! Checks a parsed query against the schema (names, types, grouping) and
//! turns it into a [`Plan`] with canonical names and typed operands.

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime};

use super::SoqlError;
use super::ast::SelectItem;
use super::ast::{AggCall, AggFn, Cond, Ident, Lit, LitKind, Op, OrderExpr, Path, Query};
use super::dates;
use super::error::positioned;
use super::lexer::{CmpOp, PatChar};
use crate::ids;
use crate::schema::{ChildRelationship, FieldDef, FieldType, ObjectDef, Schema};

/// Salesforce's maximum OFFSET.
const MAX_OFFSET: usize = 2000;

/// One step through a parent relationship.
#[derive(Debug, Clone)]
pub(crate) struct Hop<'s> {
    /// The reference field on the child (`AccountId`).
    pub via: &'s FieldDef,
    /// The canonical relationship name (`Account`).
    pub rel: &'s str,
}

/// A resolved field path.
#[derive(Debug, Clone)]
pub(crate) struct FieldRef<'s> {
    pub hops: Vec<Hop<'s>>,
    pub field: &'s FieldDef,
}

impl FieldRef<'_> {
    /// The canonical dotted path, for comparing references.
    pub(crate) fn key(&self) -> String {
        let mut parts: Vec<&str> = self.hops.iter().map(|h| h.rel).collect();
        parts.push(&self.field.name);
        parts.join(".")
    }
}

/// An output column.
#[derive(Debug)]
pub(crate) enum Column<'s> {
    Field {
        field: FieldRef<'s>,
        alias: Option<String>,
    },
    Agg {
        func: AggFn,
        arg: Option<FieldRef<'s>>,
        name: String,
    },
    Child {
        rel: &'s ChildRelationship,
        plan: Box<Plan<'s>>,
    },
}

/// What an ORDER BY key sorts on.
#[derive(Debug)]
pub(crate) enum SortExpr<'s> {
    Field(FieldRef<'s>),
    Agg(AggFn, Option<FieldRef<'s>>),
}

/// A resolved ORDER BY key.
#[derive(Debug)]
pub(crate) struct SortKey<'s> {
    pub expr: SortExpr<'s>,
    pub desc: bool,
    pub nulls_first: bool,
}

/// The value side of a resolved comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Null,
    /// Lower-cased text.
    Text(String),
    /// An 18-character Id.
    Id(String),
    Num(f64),
    Bool(bool),
    /// Lower-cased LIKE pattern.
    Pattern(Vec<PatChar>),
    /// A date or date keyword: instants `[start, end)`.
    Range(NaiveDateTime, NaiveDateTime),
    /// A datetime literal.
    Point(NaiveDateTime),
}

/// A resolved WHERE condition.
#[derive(Debug)]
pub(crate) enum Filter<'s> {
    And(Vec<Filter<'s>>),
    Or(Vec<Filter<'s>>),
    Not(Box<Filter<'s>>),
    Cmp {
        field: FieldRef<'s>,
        op: Op,
        value: Operand,
    },
    In {
        field: FieldRef<'s>,
        negate: bool,
        values: Vec<Operand>,
    },
}

/// How the rows come out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Rows,
    CountOnly,
    Aggregate,
}

/// A query ready to run.
#[derive(Debug)]
pub(crate) struct Plan<'s> {
    pub object: &'s ObjectDef,
    pub columns: Vec<Column<'s>>,
    pub filter: Option<Filter<'s>>,
    pub group_by: Vec<FieldRef<'s>>,
    pub order: Vec<SortKey<'s>>,
    pub limit: Option<usize>,
    pub offset: usize,
    pub mode: Mode,
}

/// Resolves names against `schema`. With `src`, errors carry Salesforce's
/// caret block pointing into it.
pub(crate) struct Resolver<'s> {
    pub schema: &'s Schema,
    pub src: Option<&'s str>,
    pub today: NaiveDate,
    /// `MALFORMED_QUERY` or `MALFORMED_SEARCH`.
    pub malformed: &'static str,
}

impl<'s> Resolver<'s> {
    fn err(&self, pos: usize, code: &'static str, message: String) -> SoqlError {
        match self.src {
            Some(src) => positioned(src, pos, code, &message),
            None => SoqlError::new(code, message),
        }
    }

    /// The object `name`, or `INVALID_TYPE`.
    pub(crate) fn object(&self, name: &Ident) -> Result<&'s ObjectDef, SoqlError> {
        self.schema.object(&name.name).ok_or_else(|| {
            self.err(name.pos, "INVALID_TYPE", format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                name.name
            ))
        })
    }

    /// The field at `path` from `object`, or `INVALID_FIELD`.
    pub(crate) fn field(
        &self,
        object: &'s ObjectDef,
        path: &Path,
    ) -> Result<FieldRef<'s>, SoqlError> {
        self.field_at(object, path, path.pos())
    }

    /// [`Self::field`], errors pointing at `pos`.
    fn field_at(
        &self,
        object: &'s ObjectDef,
        path: &Path,
        pos: usize,
    ) -> Result<FieldRef<'s>, SoqlError> {
        let mut parts = path.parts.as_slice();
        // `Account.Name` on Account: an object-qualified field.
        if parts.len() > 1
            && parts[0].name.eq_ignore_ascii_case(&object.name)
            && object.parent_relationship(&parts[0].name).is_none()
        {
            parts = &parts[1..];
        }
        let mut current = object;
        let mut hops = Vec::new();
        let (last, rels) = parts
            .split_last()
            .ok_or_else(|| self.err(pos, self.malformed, "unexpected token: <EOF>".into()))?;
        for rel in rels {
            let via = current.parent_relationship(&rel.name);
            let target = via
                .and_then(|f| f.reference_to.first())
                .and_then(|t| self.schema.object(t));
            let (Some(via), Some(target)) = (via, target) else {
                return Err(self.err(pos, "INVALID_FIELD", format!(
                    "Didn't understand relationship '{}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.",
                    rel.name
                )));
            };
            hops.push(Hop {
                via,
                rel: via.relationship_name.as_deref().unwrap_or_default(),
            });
            current = target;
        }
        let field = current.field(&last.name).ok_or_else(|| {
            self.err(pos, "INVALID_FIELD", format!(
                "No such column '{}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                last.name, current.name
            ))
        })?;
        Ok(FieldRef { hops, field })
    }

    /// The plan of a top-level query.
    pub(crate) fn plan(&self, query: &Query) -> Result<Plan<'s>, SoqlError> {
        let object = self.object(&query.from)?;
        self.plan_on(object, query, false)
    }

    fn malformed(&self, message: impl Into<String>) -> SoqlError {
        SoqlError::new(self.malformed, message)
    }

    fn plan_on(
        &self,
        object: &'s ObjectDef,
        query: &Query,
        child: bool,
    ) -> Result<Plan<'s>, SoqlError> {
        let mut columns = Vec::new();
        let mut unnamed = 0;
        let mut count_star = false;
        let mut aliased = false;
        for item in &query.select {
            match item {
                SelectItem::Field { path, alias } => {
                    aliased |= alias.is_some();
                    let field = self.field_at(object, path, query.select_pos)?;
                    let key = field.key().to_lowercase();
                    let seen = columns.iter().any(|c| {
                        matches!(c, Column::Field { field, .. } if field.key().to_lowercase() == key)
                    });
                    if seen {
                        return Err(self.err(
                            query.select_pos,
                            self.malformed,
                            format!("duplicate field selected: {}", path.text()),
                        ));
                    }
                    columns.push(Column::Field {
                        field,
                        alias: alias.as_ref().map(|a| a.name.clone()),
                    });
                }
                SelectItem::Agg { call, alias } => {
                    let (func, arg) = self.agg(object, call, query.select_pos)?;
                    if func == AggFn::Count && arg.is_none() {
                        count_star = true;
                        continue;
                    }
                    let name = match alias {
                        Some(a) => a.name.clone(),
                        None => {
                            unnamed += 1;
                            format!("expr{}", unnamed - 1)
                        }
                    };
                    columns.push(Column::Agg { func, arg, name });
                }
                SelectItem::Subquery(sub) => {
                    if child {
                        return Err(self.malformed("Nested subqueries are not supported"));
                    }
                    let rel = object.child_relationship(&sub.from.name).ok_or_else(|| {
                        self.err(sub.from.pos, "INVALID_TYPE", format!(
                            "Didn't understand relationship '{}' in FROM part of query call. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.",
                            sub.from.name
                        ))
                    })?;
                    let child_object = self.object(&Ident {
                        name: rel.child_sobject.clone(),
                        pos: sub.from.pos,
                    })?;
                    let plan = self.plan_on(child_object, sub, true)?;
                    columns.push(Column::Child {
                        rel,
                        plan: Box::new(plan),
                    });
                }
            }
        }
        let group_by = query
            .group_by
            .iter()
            .map(|p| {
                let f = self.field(object, p)?;
                if !groupable(f.field.field_type) {
                    return Err(self.err(
                        p.pos(),
                        self.malformed,
                        format!(
                            "field '{}' can not be grouped in a query call",
                            f.field.name
                        ),
                    ));
                }
                Ok(f)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let has_agg = columns.iter().any(|c| matches!(c, Column::Agg { .. }));
        let mode = if count_star {
            if !columns.is_empty() {
                return Err(self.malformed("COUNT() must be the only element in the SELECT list"));
            }
            Mode::CountOnly
        } else if has_agg || !group_by.is_empty() {
            Mode::Aggregate
        } else {
            Mode::Rows
        };
        if aliased && mode != Mode::Aggregate {
            return Err(self.malformed("Only aggregate expressions use field aliasing"));
        }
        if child && mode != Mode::Rows {
            return Err(self.malformed("Aggregate functions are not supported in subqueries"));
        }
        if mode == Mode::Aggregate {
            self.check_grouped(&query.select, &columns, &group_by)?;
        }
        let filter = query
            .filter
            .as_ref()
            .map(|c| self.filter(object, c))
            .transpose()?;
        let order = self.order(object, query, mode, &group_by)?;
        let offset = match query.offset {
            Some(o) if o.value > MAX_OFFSET => {
                return Err(SoqlError::new(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    format!("Maximum SOQL offset allowed is {MAX_OFFSET}"),
                ));
            }
            Some(o) => o.value,
            None => 0,
        };
        Ok(Plan {
            object,
            columns,
            filter,
            group_by,
            order,
            limit: query.limit.map(|l| l.value),
            offset,
            mode,
        })
    }

    fn agg(
        &self,
        object: &'s ObjectDef,
        call: &AggCall,
        pos: usize,
    ) -> Result<(AggFn, Option<FieldRef<'s>>), SoqlError> {
        let arg = call
            .arg
            .as_ref()
            .map(|p| self.field_at(object, p, pos))
            .transpose()?;
        if let Some(f) = &arg {
            let ty = f.field.field_type;
            let ok = match call.func {
                AggFn::Sum | AggFn::Avg => ty.is_numeric(),
                AggFn::Min | AggFn::Max => ty != FieldType::Boolean && ty != FieldType::TextArea,
                AggFn::Count | AggFn::CountDistinct => ty != FieldType::TextArea,
            };
            if !ok {
                return Err(self.err(
                    pos,
                    "INVALID_FIELD",
                    format!(
                        "field {} does not support aggregate operator {}",
                        f.field.name,
                        call.func.name()
                    ),
                ));
            }
        }
        Ok((call.func, arg))
    }

    fn check_grouped(
        &self,
        select: &[SelectItem],
        columns: &[Column<'s>],
        group_by: &[FieldRef<'s>],
    ) -> Result<(), SoqlError> {
        let fields = select.iter().filter_map(|s| match s {
            SelectItem::Field { path, .. } => Some(path),
            _ => None,
        });
        let refs = columns.iter().filter_map(|c| match c {
            Column::Field { field, .. } => Some(field),
            _ => None,
        });
        for (path, field) in fields.zip(refs) {
            if !group_by.iter().any(|g| g.key() == field.key()) {
                return Err(self.malformed(format!(
                    "Field must be grouped or aggregated: {}",
                    path.text()
                )));
            }
        }
        if columns.iter().any(|c| matches!(c, Column::Child { .. })) {
            return Err(self.malformed("Aggregate queries do not support subqueries"));
        }
        Ok(())
    }

    fn order(
        &self,
        object: &'s ObjectDef,
        query: &Query,
        mode: Mode,
        group_by: &[FieldRef<'s>],
    ) -> Result<Vec<SortKey<'s>>, SoqlError> {
        let mut keys = Vec::new();
        for key in &query.order_by {
            let expr = match &key.expr {
                OrderExpr::Path(p) => {
                    let f = self.field(object, p)?;
                    if f.field.field_type == FieldType::TextArea {
                        return Err(self.err(
                            p.pos(),
                            "INVALID_FIELD",
                            format!("field '{}' can not be sorted in a query call", f.field.name),
                        ));
                    }
                    if mode == Mode::Aggregate && !group_by.iter().any(|g| g.key() == f.key()) {
                        return Err(self.malformed(format!(
                            "Ordered field must be grouped or aggregated: {}",
                            p.text()
                        )));
                    }
                    SortExpr::Field(f)
                }
                OrderExpr::Agg(call) => {
                    if mode != Mode::Aggregate {
                        return Err(self.err(
                            call.pos,
                            self.malformed,
                            format!("unexpected token: {}", call.func.name()),
                        ));
                    }
                    let (func, arg) = self.agg(object, call, call.pos)?;
                    SortExpr::Agg(func, arg)
                }
            };
            keys.push(SortKey {
                expr,
                desc: key.desc,
                nulls_first: key.nulls_first,
            });
        }
        Ok(keys)
    }

    fn filter(&self, object: &'s ObjectDef, cond: &Cond) -> Result<Filter<'s>, SoqlError> {
        let all = |cs: &[Cond]| {
            cs.iter()
                .map(|c| self.filter(object, c))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match cond {
            Cond::And(cs) => Filter::And(all(cs)?),
            Cond::Or(cs) => Filter::Or(all(cs)?),
            Cond::Not(c) => Filter::Not(Box::new(self.filter(object, c)?)),
            Cond::Cmp { path, op, value } => {
                let field = self.filterable(object, path)?;
                let value = self.operand(field.field, *op, value)?;
                Filter::Cmp {
                    field,
                    op: *op,
                    value,
                }
            }
            Cond::In {
                path,
                negate,
                values,
            } => {
                let field = self.filterable(object, path)?;
                let values = values
                    .iter()
                    .map(|v| self.operand(field.field, Op::Cmp(CmpOp::Eq), v))
                    .collect::<Result<Vec<_>, _>>()?;
                Filter::In {
                    field,
                    negate: *negate,
                    values,
                }
            }
        })
    }

    /// The field at `path`, if WHERE may use it (long text may not).
    fn filterable(&self, object: &'s ObjectDef, path: &Path) -> Result<FieldRef<'s>, SoqlError> {
        let f = self.field(object, path)?;
        if f.field.field_type == FieldType::TextArea {
            return Err(self.err(
                path.pos(),
                "INVALID_FIELD",
                format!(
                    "field '{}' can not be filtered in a query call",
                    f.field.name
                ),
            ));
        }
        Ok(f)
    }

    fn day_start(d: NaiveDate) -> NaiveDateTime {
        d.and_time(NaiveTime::MIN)
    }

    /// Types `lit` for comparing with `field` by `op`.
    fn operand(&self, field: &FieldDef, op: Op, lit: &Lit) -> Result<Operand, SoqlError> {
        use FieldType as T;
        let ty = field.field_type;
        let wrong = |type_name: &str, quoted: bool| {
            let should = if quoted {
                "should be enclosed in quotes"
            } else {
                "should not be enclosed in quotes"
            };
            self.err(lit.pos, "INVALID_FIELD", format!(
                "value of filter criterion for field '{}' must be of type {type_name} and {should}",
                field.name
            ))
        };
        let text_like = ty.is_text() || matches!(ty, T::Id | T::Reference);
        if op == Op::Like {
            return match (&lit.kind, text_like) {
                (LitKind::Str(s), true) => Ok(Operand::Pattern(lower_pattern(&s.pattern))),
                (_, true) => Err(wrong("string", true)),
                (_, false) => Err(self.err(
                    lit.pos,
                    "INVALID_FIELD",
                    format!("invalid operator on field: {}", field.name),
                )),
            };
        }
        if lit.kind == LitKind::Null {
            return Ok(Operand::Null);
        }
        match (ty, &lit.kind) {
            // Ids compare as their 18-character forms, case-sensitively,
            // for every operator: the order `ORDER BY Id` sorts in, so
            // keyset paging (`WHERE Id > :last ORDER BY Id`) sees each
            // record once.
            (T::Id | T::Reference, LitKind::Str(s)) => {
                ids::to_18(&s.value).map(Operand::Id).ok_or_else(|| {
                    SoqlError::new(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        format!("invalid ID field: {}", s.value),
                    )
                })
            }
            (T::Id | T::Reference, _) => Err(wrong("id", true)),
            (_, LitKind::Str(s)) if ty.is_text() => Ok(Operand::Text(s.value.to_lowercase())),
            _ if ty.is_text() => Err(wrong("string", true)),
            (_, LitKind::Num(n)) if ty.is_numeric() => Ok(Operand::Num(*n)),
            (T::Int, _) => Err(wrong("integer", false)),
            _ if ty.is_numeric() => Err(wrong("double", false)),
            (T::Boolean, LitKind::Bool(b)) => Ok(Operand::Bool(*b)),
            (T::Boolean, _) => Err(wrong("boolean", false)),
            (T::Date, LitKind::Date(d)) => {
                let next = d.checked_add_days(Days::new(1)).unwrap_or(*d);
                Ok(Operand::Range(Self::day_start(*d), Self::day_start(next)))
            }
            (T::Date | T::DateTime, LitKind::DateKw(kw)) => {
                let (start, end) = dates::range(*kw, self.today);
                Ok(Operand::Range(Self::day_start(start), Self::day_start(end)))
            }
            (T::Date, _) => Err(wrong("date", false)),
            (T::DateTime, LitKind::DateTime(t)) => Ok(Operand::Point(t.naive_utc())),
            (T::DateTime, _) => Err(wrong("dateTime", false)),
            _ => Err(wrong(ty.as_str(), false)),
        }
    }
}

/// Whether GROUP BY may use a field of type `ty` (Salesforce: not currency,
/// double, percent, datetime or long text).
fn groupable(ty: FieldType) -> bool {
    !matches!(
        ty,
        FieldType::Currency
            | FieldType::Double
            | FieldType::Percent
            | FieldType::DateTime
            | FieldType::TextArea
    )
}

fn lower_pattern(pattern: &[PatChar]) -> Vec<PatChar> {
    pattern
        .iter()
        .flat_map(|p| match p {
            PatChar::Lit(c) => c.to_lowercase().map(PatChar::Lit).collect::<Vec<_>>(),
            other => vec![*other],
        })
        .collect()
}
