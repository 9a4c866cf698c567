//! The syntax tree of a parsed query, names as written, with their byte
//! offsets for error messages.

use chrono::{DateTime, NaiveDate, Utc};

use super::dates::DateKeyword;
use super::lexer::{CmpOp, StrLit};

/// A name as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ident {
    pub name: String,
    pub pos: usize,
}

/// `Field` or `Rel.Field` or `Rel.Rel.Field`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    pub parts: Vec<Ident>,
}

impl Path {
    /// Where the path starts.
    pub(crate) fn pos(&self) -> usize {
        self.parts.first().map_or(0, |p| p.pos)
    }

    /// The path as written, dot-joined.
    pub(crate) fn text(&self) -> String {
        let names: Vec<&str> = self.parts.iter().map(|p| p.name.as_str()).collect();
        names.join(".")
    }
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggFn {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

impl AggFn {
    /// The function called `name` (case-insensitive).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "COUNT" => Self::Count,
            "COUNT_DISTINCT" => Self::CountDistinct,
            "SUM" => Self::Sum,
            "AVG" => Self::Avg,
            "MIN" => Self::Min,
            "MAX" => Self::Max,
            _ => return None,
        })
    }

    /// The upper-case name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Count => "COUNT",
            Self::CountDistinct => "COUNT_DISTINCT",
            Self::Sum => "SUM",
            Self::Avg => "AVG",
            Self::Min => "MIN",
            Self::Max => "MAX",
        }
    }
}

/// `COUNT()`, `SUM(Amount)`, ...
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AggCall {
    pub func: AggFn,
    pub arg: Option<Path>,
    pub pos: usize,
}

/// One element of the SELECT list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SelectItem {
    Field { path: Path, alias: Option<Ident> },
    Agg { call: AggCall, alias: Option<Ident> },
    Subquery(Box<Query>),
}

/// A SELECT statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub select: Vec<SelectItem>,
    /// Where the SELECT list starts: Salesforce points errors in the list here.
    pub select_pos: usize,
    pub from: Ident,
    pub filter: Option<Cond>,
    pub group_by: Vec<Path>,
    pub order_by: Vec<OrderKey>,
    pub limit: Option<Count>,
    pub offset: Option<Count>,
}

/// A LIMIT or OFFSET number and where it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Count {
    pub value: usize,
    pub pos: usize,
}

/// What an ORDER BY key sorts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OrderExpr {
    Path(Path),
    Agg(AggCall),
}

/// One ORDER BY key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderKey {
    pub expr: OrderExpr,
    pub desc: bool,
    pub nulls_first: bool,
}

/// A comparison operator of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Cmp(CmpOp),
    Like,
}

/// A WHERE condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp {
        path: Path,
        op: Op,
        value: Lit,
    },
    In {
        path: Path,
        negate: bool,
        values: Vec<Lit>,
    },
}

/// A literal value and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lit {
    pub kind: LitKind,
    pub pos: usize,
}

/// The literal kinds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LitKind {
    Null,
    Bool(bool),
    Num(f64),
    Str(StrLit),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    DateKw(DateKeyword),
}
