//! Runs a [`Plan`]: filters, sorts, pages and projects records into the
//! REST JSON shapes.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use super::ast::Op;
use super::lexer::{self, CmpOp};
use super::resolve::{Column, FieldRef, Filter, Hop, Mode, Operand, Plan, SortExpr};
use super::search::glob;
use super::{QueryOptions, QueryResult, aggregate};
use crate::ids;
use crate::record::{DataSource, Record, with_attributes};
use crate::schema::FieldType;

static NULL: Value = Value::Null;

/// The data and options a plan runs with.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub source: &'a dyn DataSource,
    pub options: &'a QueryOptions,
}

impl<'a> Ctx<'a> {
    /// Whether `record` is seen (not deleted, or `include_deleted`).
    pub(crate) fn visible(&self, record: &Record) -> bool {
        self.options.include_deleted || !record.deleted
    }

    /// The visible records of the plan's object.
    pub(crate) fn candidates(&self, plan: &Plan<'_>) -> Vec<&'a Record> {
        let records = self.source.records(&plan.object.name);
        records.into_iter().filter(|r| self.visible(r)).collect()
    }

    /// Runs a top-level plan.
    pub(crate) fn execute(&self, plan: &Plan<'_>) -> QueryResult {
        let rows = self.candidates(plan);
        match plan.mode {
            Mode::Rows => {
                let records = self.select(plan, rows);
                QueryResult {
                    total_size: records.len(),
                    records,
                }
            }
            Mode::CountOnly => {
                let rows = self.filtered(plan, rows);
                let n = if plan.group_by.is_empty() {
                    rows.len()
                } else {
                    aggregate::group(self, plan, rows).len()
                };
                let n = n.saturating_sub(plan.offset);
                QueryResult {
                    total_size: plan.limit.map_or(n, |l| n.min(l)),
                    records: vec![],
                }
            }
            Mode::Aggregate => {
                let rows = self.filtered(plan, rows);
                let records = aggregate::run(self, plan, rows);
                QueryResult {
                    total_size: records.len(),
                    records,
                }
            }
        }
    }

    fn filtered(&self, plan: &Plan<'_>, rows: Vec<&'a Record>) -> Vec<&'a Record> {
        match &plan.filter {
            Some(f) => rows.into_iter().filter(|r| self.matches(r, f)).collect(),
            None => rows,
        }
    }

    /// Filters, sorts, pages and projects `rows` (a row-mode plan).
    pub(crate) fn select(&self, plan: &Plan<'_>, rows: Vec<&'a Record>) -> Vec<Value> {
        let mut rows = self.filtered(plan, rows);
        rows.sort_by(|a, b| {
            plan.order.iter().fold(Ordering::Equal, |acc, key| {
                acc.then_with(|| {
                    let SortExpr::Field(f) = &key.expr else {
                        return Ordering::Equal;
                    };
                    let ty = f.field.field_type;
                    cmp_keyed(
                        self.value(a, f),
                        self.value(b, f),
                        ty,
                        key.desc,
                        key.nulls_first,
                    )
                })
            })
        });
        rows.into_iter()
            .skip(plan.offset)
            .take(plan.limit.unwrap_or(usize::MAX))
            .map(|r| Value::Object(self.project(plan, r)))
            .collect()
    }

    /// The parent record reached through `hop`, if set and visible.
    fn parent(&self, record: &Record, hop: &Hop<'_>) -> Option<&'a Record> {
        let id = record.get(&hop.via.name).as_str()?;
        let id = ids::to_18(id).unwrap_or_else(|| id.to_string());
        self.source.record(&id).filter(|p| self.visible(p))
    }

    /// The value of `field` on `record` (null through a null parent).
    pub(crate) fn value(&self, record: &'a Record, field: &FieldRef<'_>) -> &'a Value {
        let mut current = record;
        for hop in &field.hops {
            match self.parent(current, hop) {
                Some(p) => current = p,
                None => return &NULL,
            }
        }
        current.get(&field.field.name)
    }

    fn project(&self, plan: &Plan<'_>, record: &'a Record) -> Map<String, Value> {
        let version = &self.options.api_version;
        let mut map = with_attributes(&record.object, &record.id, version);
        for column in &plan.columns {
            match column {
                Column::Field { field, .. } => {
                    self.put(&mut map, record, &field.hops, &field.field.name)
                }
                Column::Child { rel, plan } => {
                    let children: Vec<&Record> = self
                        .candidates(plan)
                        .into_iter()
                        .filter(|c| {
                            c.get(&rel.field)
                                .as_str()
                                .and_then(ids::to_18)
                                .is_some_and(|id| id == record.id)
                        })
                        .collect();
                    let rows = self.select(plan, children);
                    let value = if rows.is_empty() {
                        Value::Null
                    } else {
                        json!({ "totalSize": rows.len(), "done": true, "records": rows })
                    };
                    map.insert(rel.relationship_name.clone(), value);
                }
                Column::Agg { .. } => {}
            }
        }
        map
    }

    /// Puts `field` of `record` (through `hops`) into `map`, merging parent
    /// objects that other columns already created.
    fn put(&self, map: &mut Map<String, Value>, record: &'a Record, hops: &[Hop<'_>], field: &str) {
        let Some((hop, rest)) = hops.split_first() else {
            map.insert(field.to_string(), record.get(field).clone());
            return;
        };
        let parent = self.parent(record, hop);
        let slot = map
            .entry(hop.rel.to_string())
            .or_insert_with(|| match parent {
                Some(p) => {
                    Value::Object(with_attributes(&p.object, &p.id, &self.options.api_version))
                }
                None => Value::Null,
            });
        if let (Some(p), Value::Object(inner)) = (parent, slot) {
            self.put(inner, p, rest, field);
        }
    }

    /// Whether `record` passes `filter`.
    pub(crate) fn matches(&self, record: &'a Record, filter: &Filter<'_>) -> bool {
        match filter {
            Filter::And(fs) => fs.iter().all(|f| self.matches(record, f)),
            Filter::Or(fs) => fs.iter().any(|f| self.matches(record, f)),
            Filter::Not(f) => !self.matches(record, f),
            Filter::Cmp { field, op, value } => compare(
                self.value(record, field),
                field.field.field_type,
                *op,
                value,
            ),
            Filter::In {
                field,
                negate,
                values,
            } => {
                let v = self.value(record, field);
                let ty = field.field.field_type;
                let hit = values.iter().any(|x| compare(v, ty, Op::Cmp(CmpOp::Eq), x));
                hit != *negate
            }
        }
    }
}

fn holds(op: CmpOp, ord: Option<Ordering>) -> bool {
    let Some(ord) = ord else {
        return op == CmpOp::Ne;
    };
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

/// Whether field value `v` (of type `ty`) compares to `operand` by `op`.
/// A null value only equals `null`; `!=` holds for it otherwise.
fn compare(v: &Value, ty: FieldType, op: Op, operand: &Operand) -> bool {
    let op = match op {
        Op::Like => {
            return match (v.as_str(), operand) {
                (Some(s), Operand::Pattern(p)) => {
                    let text: Vec<char> = s.chars().flat_map(char::to_lowercase).collect();
                    glob(p, &text)
                }
                _ => false,
            };
        }
        Op::Cmp(op) => op,
    };
    if operand == &Operand::Null || v.is_null() {
        let both = operand == &Operand::Null && v.is_null();
        return match op {
            CmpOp::Eq => both,
            CmpOp::Ne => !both,
            _ => false,
        };
    }
    let ord = match operand {
        Operand::Null | Operand::Pattern(_) => None,
        Operand::Text(t) => v.as_str().map(|s| {
            let s = s.to_lowercase();
            if matches!(op, CmpOp::Eq | CmpOp::Ne) {
                s.cmp(t)
            } else {
                // Ranges use the collation ORDER BY sorts with.
                collation_key(&s)
                    .cmp(&collation_key(t))
                    .then_with(|| s.cmp(t))
            }
        }),
        Operand::Id(id) => v.as_str().map(|s| {
            let s18 = ids::to_18(s).unwrap_or_else(|| s.to_string());
            s18.cmp(id)
        }),
        Operand::Num(n) => v.as_f64().and_then(|x| x.partial_cmp(n)),
        Operand::Bool(b) => v.as_bool().map(|x| x.cmp(b)),
        Operand::Point(p) => instant(v, ty).map(|t| t.cmp(p)),
        Operand::Range(start, end) => {
            let Some(t) = instant(v, ty) else {
                return op == CmpOp::Ne;
            };
            let inside = *start <= t && t < *end;
            return match op {
                CmpOp::Eq => inside,
                CmpOp::Ne => !inside,
                CmpOp::Lt => t < *start,
                CmpOp::Le => t < *end,
                CmpOp::Gt => t >= *end,
                CmpOp::Ge => t >= *start,
            };
        }
    };
    holds(op, ord)
}

fn instant(v: &Value, _ty: FieldType) -> Option<chrono::NaiveDateTime> {
    v.as_str().and_then(lexer::instant)
}

/// Orders two non-null values of type `ty` (text case-insensitively).
pub(crate) fn cmp_values(a: &Value, b: &Value, ty: FieldType) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => match ty {
            FieldType::Date | FieldType::DateTime => lexer::instant(x)
                .cmp(&lexer::instant(y))
                .then_with(|| x.cmp(y)),
            FieldType::Id | FieldType::Reference => x.cmp(y),
            _ => collation_key(x)
                .cmp(&collation_key(y))
                .then_with(|| x.to_lowercase().cmp(&y.to_lowercase()))
                .then_with(|| x.cmp(y)),
        },
        _ => Ordering::Equal,
    }
}

/// Orders two values for a sort key: nulls first or last as asked, the rest
/// ascending or descending.
pub(crate) fn cmp_keyed(
    a: &Value,
    b: &Value,
    ty: FieldType,
    desc: bool,
    nulls_first: bool,
) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) if nulls_first => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, true) if nulls_first => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) if desc => cmp_values(a, b, ty).reverse(),
        (false, false) => cmp_values(a, b, ty),
    }
}

/// Text as the en_US collation orders it first: lower case, Latin letters
/// without their diacritics (`Ålesund` sorts with the A's, as Salesforce
/// returns it).
fn collation_key(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            match c {
                'à'..='å' | 'ā' | 'ă' | 'ą' => "a",
                'æ' => "ae",
                'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
                'ď' | 'đ' | 'ð' => "d",
                'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
                'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
                'ĥ' | 'ħ' => "h",
                'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
                'ĵ' => "j",
                'ķ' => "k",
                'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
                'ñ' | 'ń' | 'ņ' | 'ň' => "n",
                'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
                'œ' => "oe",
                'ŕ' | 'ŗ' | 'ř' => "r",
                'ś' | 'ŝ' | 'ş' | 'š' => "s",
                'ß' => "ss",
                'ţ' | 'ť' | 'ŧ' => "t",
                'þ' => "th",
                'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
                'ŵ' => "w",
                'ý' | 'ÿ' | 'ŷ' => "y",
                'ź' | 'ż' | 'ž' => "z",
                _ => return c.to_string(),
            }
            .to_string()
        })
        .collect()
}
