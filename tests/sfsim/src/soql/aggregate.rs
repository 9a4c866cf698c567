//! GROUP BY and aggregate functions. Rows come out as
//! `{"attributes": {"type": "AggregateResult"}, <group fields>, <aggregates>}`,
//! aggregates named by alias or `expr0`, `expr1`, ... in order.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::ast::AggFn;
use super::eval::{Ctx, cmp_keyed, cmp_values};
use super::resolve::{Column, FieldRef, Plan, SortExpr};
use crate::record::Record;
use crate::schema::FieldType;

/// One group: its key values (one per GROUP BY field) and members.
pub(crate) struct Group<'a> {
    pub keys: Vec<Value>,
    pub members: Vec<&'a Record>,
}

/// A grouping key: text compares case-insensitively.
fn normalize(v: &Value) -> String {
    match v {
        Value::String(s) => format!("s:{}", s.to_lowercase()),
        other => other.to_string(),
    }
}

/// The groups of `rows` by the plan's GROUP BY (one group of everything
/// without GROUP BY, even when there are no rows), in first-seen order.
pub(crate) fn group<'a>(ctx: &Ctx<'a>, plan: &Plan<'_>, rows: Vec<&'a Record>) -> Vec<Group<'a>> {
    if plan.group_by.is_empty() {
        return vec![Group {
            keys: vec![],
            members: rows,
        }];
    }
    let mut groups: Vec<Group<'a>> = Vec::new();
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    for row in rows {
        let keys: Vec<Value> = plan
            .group_by
            .iter()
            .map(|g| ctx.value(row, g).clone())
            .collect();
        let norm: Vec<String> = keys.iter().map(normalize).collect();
        let at = *index.entry(norm).or_insert_with(|| {
            groups.push(Group {
                keys,
                members: vec![],
            });
            groups.len() - 1
        });
        groups[at].members.push(row);
    }
    groups
}

fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// The value of `func(arg)` over `members`.
fn compute<'a>(
    ctx: &Ctx<'a>,
    func: AggFn,
    arg: Option<&FieldRef<'_>>,
    members: &[&'a Record],
) -> Value {
    let Some(arg) = arg else {
        return json!(members.len());
    };
    let values: Vec<&Value> = members
        .iter()
        .map(|r| ctx.value(r, arg))
        .filter(|v| !v.is_null())
        .collect();
    let ty = arg.field.field_type;
    let numbers = || values.iter().filter_map(|v| v.as_f64());
    match func {
        AggFn::Count => json!(values.len()),
        AggFn::CountDistinct => {
            let distinct: HashSet<String> = values.iter().map(|v| normalize(v)).collect();
            json!(distinct.len())
        }
        _ if values.is_empty() => Value::Null,
        AggFn::Sum => float(numbers().sum()),
        AggFn::Avg => float(numbers().sum::<f64>() / values.len() as f64),
        AggFn::Min => values
            .iter()
            .min_by(|a, b| cmp_values(a, b, ty))
            .map_or(Value::Null, |v| (*v).clone()),
        AggFn::Max => values
            .iter()
            .max_by(|a, b| cmp_values(a, b, ty))
            .map_or(Value::Null, |v| (*v).clone()),
    }
}

/// The type aggregate values sort as.
fn result_type(func: AggFn, arg: Option<&FieldRef<'_>>) -> FieldType {
    match (func, arg) {
        (AggFn::Min | AggFn::Max, Some(f)) => f.field.field_type,
        _ => FieldType::Double,
    }
}

/// A group's ORDER BY values and their types.
type SortValues = Vec<(Value, FieldType)>;

/// Groups, aggregates, sorts and pages `rows` (already filtered).
pub(crate) fn run<'a>(ctx: &Ctx<'a>, plan: &Plan<'_>, rows: Vec<&'a Record>) -> Vec<Value> {
    let groups = group(ctx, plan, rows);
    let position = |f: &FieldRef<'_>| plan.group_by.iter().position(|g| g.key() == f.key());
    let mut out: Vec<(SortValues, Map<String, Value>)> = groups
        .iter()
        .map(|g| {
            let sort = plan
                .order
                .iter()
                .map(|key| match &key.expr {
                    SortExpr::Field(f) => {
                        let v = position(f).map_or(Value::Null, |p| g.keys[p].clone());
                        (v, f.field.field_type)
                    }
                    SortExpr::Agg(func, arg) => (
                        compute(ctx, *func, arg.as_ref(), &g.members),
                        result_type(*func, arg.as_ref()),
                    ),
                })
                .collect();
            let mut row = Map::new();
            row.insert("attributes".into(), json!({ "type": "AggregateResult" }));
            for column in &plan.columns {
                match column {
                    Column::Field { field, alias } => {
                        let v = position(field).map_or(Value::Null, |p| g.keys[p].clone());
                        let name = alias.as_ref().unwrap_or(&field.field.name);
                        row.insert(name.clone(), v);
                    }
                    Column::Agg { func, arg, name } => {
                        row.insert(name.clone(), compute(ctx, *func, arg.as_ref(), &g.members));
                    }
                    Column::Child { .. } => {}
                }
            }
            (sort, row)
        })
        .collect();
    if plan.order.is_empty() {
        // Salesforce returns groups sorted by their key when unordered.
        let types: Vec<FieldType> = plan.group_by.iter().map(|g| g.field.field_type).collect();
        let mut keyed: Vec<(Vec<Value>, Map<String, Value>)> = groups
            .into_iter()
            .zip(out)
            .map(|(g, (_, row))| (g.keys, row))
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            a.iter()
                .zip(b)
                .zip(&types)
                .fold(Ordering::Equal, |acc, ((x, y), ty)| {
                    acc.then_with(|| cmp_keyed(x, y, *ty, false, true))
                })
        });
        return page(plan, keyed.into_iter().map(|(_, row)| row));
    }
    out.sort_by(|(a, _), (b, _)| {
        a.iter()
            .zip(b)
            .zip(&plan.order)
            .fold(Ordering::Equal, |acc, (((x, ty), (y, _)), key)| {
                acc.then_with(|| cmp_keyed(x, y, *ty, key.desc, key.nulls_first))
            })
    });
    page(plan, out.into_iter().map(|(_, row)| row))
}

fn page(plan: &Plan<'_>, rows: impl Iterator<Item = Map<String, Value>>) -> Vec<Value> {
    rows.skip(plan.offset)
        .take(plan.limit.unwrap_or(usize::MAX))
        .map(Value::Object)
        .collect()
}
