//! The SOQL grammar, with winnow over the lexed tokens. A failed parse
//! reports the furthest token any branch failed at, which is what
//! Salesforce's `unexpected token: X` names.
//!
//! AND and OR cannot be mixed at one level without parentheses: a condition
//! is one term, or terms joined only by AND, or only by OR.

use std::cell::Cell;

use winnow::combinator::{alt, delimited, opt, preceded, repeat, separated, terminated};
use winnow::error::ParserError;
use winnow::prelude::*;
use winnow::stream::{Stateful, Stream, TokenSlice};
use winnow::token::any;

use super::SoqlError;
use super::ast::{AggCall, AggFn, Cond, Count, Ident, Lit, LitKind, Op, OrderExpr, OrderKey};
use super::ast::{Path, Query, SelectItem};
use super::dates;
use super::error::unexpected;
use super::lexer::{Tok, Token};

/// The most levels of nesting (parentheses, `NOT`s, subqueries) a query
/// may have. The parser recurses once per level, so without a cap a query
/// of a few thousand `(` would overflow the stack and abort the process.
pub(crate) const MAX_DEPTH: usize = 32;

/// What the parser tracks besides the tokens.
#[derive(Debug, Default)]
pub(crate) struct ParseState {
    /// The furthest token any branch failed at.
    furthest: Cell<usize>,
    /// The current nesting depth.
    depth: Cell<usize>,
    /// Set when the nesting went past [`MAX_DEPTH`].
    too_deep: Cell<bool>,
}

/// The parser input: the tokens and the [`ParseState`].
pub(crate) type In<'t> = Stateful<TokenSlice<'t, Token>, &'t ParseState>;
/// A parser result.
pub(crate) type PResult<O> = winnow::Result<O, Fail>;

/// A parse failure; its position is recorded in the input's state.
#[derive(Debug)]
pub(crate) struct Fail;

impl<'t> ParserError<In<'t>> for Fail {
    type Inner = Self;

    fn from_input(input: &In<'t>) -> Self {
        if let Some(token) = input.peek_token() {
            let furthest = &input.state.furthest;
            furthest.set(furthest.get().max(token.index));
        }
        Fail
    }

    fn into_inner(self) -> Result<Self::Inner, Self> {
        Ok(self)
    }
}

/// Why a parse failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// At this token (its index).
    At(usize),
    /// The input nests deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl Failure {
    /// The error for this failure of parsing `src` into `tokens`, with the
    /// `code` `MALFORMED_QUERY` or `MALFORMED_SEARCH`.
    pub(crate) fn error(self, src: &str, tokens: &[Token], code: &'static str) -> SoqlError {
        match self {
            Self::At(at) => unexpected(src, tokens, at, code),
            Self::TooDeep => too_deep(code),
        }
    }
}

/// The error for input nested deeper than [`MAX_DEPTH`].
pub(crate) fn too_deep(code: &'static str) -> SoqlError {
    SoqlError::new(
        code,
        format!("nesting too deep: at most {MAX_DEPTH} levels of parentheses are supported"),
    )
}

/// Runs `parser` over `tokens`.
pub(crate) fn run<O>(
    tokens: &[Token],
    mut parser: impl FnMut(&mut In<'_>) -> PResult<O>,
) -> Result<O, Failure> {
    let state = ParseState::default();
    let mut input = Stateful {
        input: TokenSlice::new(tokens),
        state: &state,
    };
    parser(&mut input).map_err(|Fail| {
        if state.too_deep.get() {
            Failure::TooDeep
        } else {
            Failure::At(state.furthest.get())
        }
    })
}

/// Runs `parser` one nesting level deeper; fails (and marks the input too
/// deep) past [`MAX_DEPTH`].
fn nested<'t, O>(mut parser: impl Parser<In<'t>, O, Fail>) -> impl Parser<In<'t>, O, Fail> {
    move |i: &mut In<'t>| {
        let depth = i.state.depth.get();
        if depth >= MAX_DEPTH {
            i.state.too_deep.set(true);
            return Err(Fail::from_input(i));
        }
        i.state.depth.set(depth + 1);
        let result = parser.parse_next(i);
        i.state.depth.set(depth);
        result
    }
}

/// Words that cannot be names (Salesforce's reserved keywords, plus the
/// clause keywords that would otherwise be read as names).
const RESERVED: &[&str] = &[
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES", "LAST",
    "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH", "TYPEOF", "OFFSET",
    "TRUE", "FALSE", "USING", "FOR", "UPDATE",
];

fn tok<'t>(pred: impl Fn(&Token) -> bool) -> impl Parser<In<'t>, &'t Token, Fail> {
    any.verify(move |t: &Token| pred(t))
}

/// The keyword `word` (case-insensitive).
pub(crate) fn kw<'t>(word: &'static str) -> impl Parser<In<'t>, &'t Token, Fail> {
    tok(move |t| t.is_kw(word))
}

/// A punctuation token of this kind.
pub(crate) fn punct<'t>(kind: Tok) -> impl Parser<In<'t>, &'t Token, Fail> {
    tok(move |t| t.kind == kind)
}

/// A name that is not a reserved word.
pub(crate) fn ident(i: &mut In<'_>) -> PResult<Ident> {
    tok(|t| t.kind == Tok::Ident && !RESERVED.iter().any(|r| t.text.eq_ignore_ascii_case(r)))
        .map(|t: &Token| Ident {
            name: t.text.clone(),
            pos: t.start,
        })
        .parse_next(i)
}

/// `a.b.c`
pub(crate) fn path(i: &mut In<'_>) -> PResult<Path> {
    separated(1.., ident, punct(Tok::Dot))
        .map(|parts| Path { parts })
        .parse_next(i)
}

/// A non-negative whole number.
pub(crate) fn count(i: &mut In<'_>) -> PResult<Count> {
    any.verify_map(|t: &Token| match t.kind {
        Tok::Number(n) if n >= 0.0 && !t.text.contains('.') => Some(Count {
            value: n as usize,
            pos: t.start,
        }),
        _ => None,
    })
    .parse_next(i)
}

fn comma<'t>() -> impl Parser<In<'t>, &'t Token, Fail> {
    punct(Tok::Comma)
}

/// A whole query and the end of the input.
pub(crate) fn top_query(i: &mut In<'_>) -> PResult<Query> {
    terminated(query, punct(Tok::Eof)).parse_next(i)
}

/// `SELECT ... FROM ... [WHERE] [GROUP BY] [ORDER BY] [LIMIT] [OFFSET]`.
pub(crate) fn query(i: &mut In<'_>) -> PResult<Query> {
    kw("SELECT").parse_next(i)?;
    let select_pos = i.peek_token().map_or(0, |t| t.start);
    let select = separated(1.., select_item, comma()).parse_next(i)?;
    kw("FROM").parse_next(i)?;
    let from = ident.parse_next(i)?;
    let filter = opt(preceded(kw("WHERE"), cond)).parse_next(i)?;
    let group_by = opt(preceded(
        (kw("GROUP"), kw("BY")),
        separated(1.., path, comma()),
    ))
    .parse_next(i)?
    .unwrap_or_default();
    let order_by = opt(order_by).parse_next(i)?.unwrap_or_default();
    let limit = opt(preceded(kw("LIMIT"), count)).parse_next(i)?;
    let offset = opt(preceded(kw("OFFSET"), count)).parse_next(i)?;
    Ok(Query {
        select,
        select_pos,
        from,
        filter,
        group_by,
        order_by,
        limit,
        offset,
    })
}

fn select_item(i: &mut In<'_>) -> PResult<SelectItem> {
    alt((
        delimited(punct(Tok::LParen), nested(query), punct(Tok::RParen))
            .map(|q| SelectItem::Subquery(Box::new(q))),
        (agg_call, opt(ident)).map(|(call, alias)| SelectItem::Agg { call, alias }),
        (path, opt(ident)).map(|(path, alias)| SelectItem::Field { path, alias }),
    ))
    .parse_next(i)
}

/// `COUNT()`, `COUNT(f)`, `COUNT_DISTINCT(f)`, `SUM/AVG/MIN/MAX(f)`.
pub(crate) fn agg_call(i: &mut In<'_>) -> PResult<AggCall> {
    let (func, pos) = any
        .verify_map(|t: &Token| {
            let func = (t.kind == Tok::Ident).then(|| AggFn::from_name(&t.text))??;
            Some((func, t.start))
        })
        .parse_next(i)?;
    punct(Tok::LParen).parse_next(i)?;
    let arg = opt(path).parse_next(i)?;
    if arg.is_none() && func != AggFn::Count {
        return Err(Fail::from_input(i));
    }
    punct(Tok::RParen).parse_next(i)?;
    Ok(AggCall { func, arg, pos })
}

/// `ORDER BY key [ASC|DESC] [NULLS FIRST|LAST], ...`
pub(crate) fn order_by(i: &mut In<'_>) -> PResult<Vec<OrderKey>> {
    preceded((kw("ORDER"), kw("BY")), separated(1.., order_key, comma())).parse_next(i)
}

fn order_key(i: &mut In<'_>) -> PResult<OrderKey> {
    let expr = alt((agg_call.map(OrderExpr::Agg), path.map(OrderExpr::Path))).parse_next(i)?;
    let desc = opt(alt((kw("ASC").value(false), kw("DESC").value(true))))
        .parse_next(i)?
        .unwrap_or(false);
    // Salesforce's defaults: NULLS FIRST ascending, NULLS LAST descending
    // (SOQL and SOSL Reference, "ORDER BY": "ASC ... NULLS FIRST is the
    // default", and for DESC "NULLS LAST is the default").
    let nulls = opt(preceded(
        kw("NULLS"),
        alt((kw("FIRST").value(true), kw("LAST").value(false))),
    ))
    .parse_next(i)?;
    Ok(OrderKey {
        expr,
        desc,
        nulls_first: nulls.unwrap_or(!desc),
    })
}

/// A condition: a term, or terms joined by only AND or only OR.
pub(crate) fn cond(i: &mut In<'_>) -> PResult<Cond> {
    let first = term.parse_next(i)?;
    let ands: Vec<Cond> = repeat(0.., preceded(kw("AND"), term)).parse_next(i)?;
    if !ands.is_empty() {
        return Ok(Cond::And(std::iter::once(first).chain(ands).collect()));
    }
    let ors: Vec<Cond> = repeat(0.., preceded(kw("OR"), term)).parse_next(i)?;
    if !ors.is_empty() {
        return Ok(Cond::Or(std::iter::once(first).chain(ors).collect()));
    }
    Ok(first)
}

fn term(i: &mut In<'_>) -> PResult<Cond> {
    alt((
        preceded(kw("NOT"), nested(term)).map(|c| Cond::Not(Box::new(c))),
        delimited(punct(Tok::LParen), nested(cond), punct(Tok::RParen)),
        simple,
    ))
    .parse_next(i)
}

fn simple(i: &mut In<'_>) -> PResult<Cond> {
    let path = path.parse_next(i)?;
    let list = opt((
        opt(kw("NOT")).map(|n| n.is_some()),
        preceded(
            kw("IN"),
            delimited(
                punct(Tok::LParen),
                separated(1.., value, comma()),
                punct(Tok::RParen),
            ),
        ),
    ))
    .parse_next(i)?;
    if let Some((negate, values)) = list {
        return Ok(Cond::In {
            path,
            negate,
            values,
        });
    }
    let op = alt((
        any.verify_map(|t: &Token| match t.kind {
            Tok::Op(op) => Some(Op::Cmp(op)),
            _ => None,
        }),
        kw("LIKE").value(Op::Like),
    ))
    .parse_next(i)?;
    let value = value.parse_next(i)?;
    Ok(Cond::Cmp { path, op, value })
}

/// A literal: string, number, date, datetime, `null`, `true`/`false`, or a
/// date keyword (`TODAY`, `LAST_N_DAYS:7`).
pub(crate) fn value(i: &mut In<'_>) -> PResult<Lit> {
    let start = i.checkpoint();
    let token: &Token = any.parse_next(i)?;
    let pos = token.start;
    let kind = match &token.kind {
        Tok::Str(s) => LitKind::Str(s.clone()),
        Tok::Number(n) => LitKind::Num(*n),
        Tok::Date(d) => LitKind::Date(*d),
        Tok::DateTime(d) => LitKind::DateTime(*d),
        Tok::Ident if token.is_kw("NULL") => LitKind::Null,
        Tok::Ident if token.is_kw("TRUE") => LitKind::Bool(true),
        Tok::Ident if token.is_kw("FALSE") => LitKind::Bool(false),
        Tok::Ident => match dates::keyword_arity(&token.text) {
            Some(false) => dates::keyword(&token.text, None).map(LitKind::DateKw),
            Some(true) => {
                let n = preceded(punct(Tok::Colon), count).parse_next(i)?;
                let n = u32::try_from(n.value).ok();
                n.and_then(|n| dates::keyword(&token.text, Some(n)))
                    .map(LitKind::DateKw)
            }
            None => None,
        }
        .ok_or_else(|| {
            i.reset(&start);
            Fail::from_input(i)
        })?,
        _ => {
            i.reset(&start);
            return Err(Fail::from_input(i));
        }
    };
    Ok(Lit { kind, pos })
}
