//! SOQL tokens, each with its byte offset in the source (for the caret in
//! error messages), lexed with winnow. Also the date and datetime grammars
//! shared with record values (`2026-03-04`, `2026-03-04T17:21:09.000+0000`).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use winnow::ascii::{digit1, multispace0};
use winnow::combinator::{alt, delimited, dispatch, empty, opt, peek, preceded, repeat};
use winnow::error::ContextError;
use winnow::prelude::*;
use winnow::stream::AsChar;
use winnow::token::{any, none_of, one_of, take_while};

type LResult<O> = winnow::Result<O, ContextError>;

/// A comparison operator token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// One element of a LIKE (or search) pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatChar {
    /// This character.
    Lit(char),
    /// Any run of characters (`%`, `*`).
    Any,
    /// Exactly one character (`_`, `?`).
    One,
}

/// A decoded string literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StrLit {
    /// The value (`\%` and `\_` decode to `%` and `_`).
    pub value: String,
    /// The same text as a LIKE pattern (unescaped `%`/`_` are wildcards).
    pub pattern: Vec<PatChar>,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name or keyword.
    Ident,
    /// A number literal.
    Number(f64),
    /// A quoted string.
    Str(StrLit),
    /// A string with an illegal escape; the message says which.
    BadStr(String),
    /// `2026-03-04`
    Date(NaiveDate),
    /// `2026-03-04T17:21:09Z`
    DateTime(DateTime<Utc>),
    /// `,`
    Comma,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `.`
    Dot,
    /// `:`
    Colon,
    /// A comparison operator.
    Op(CmpOp),
    /// Anything else (one character); always a parse error.
    Other,
    /// The end of the input.
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    /// Its kind (and literal value).
    pub kind: Tok,
    /// Its text as written (`<EOF>` for the end).
    pub text: String,
    /// Byte offset in the source.
    pub start: usize,
    /// Position in the token list.
    pub index: usize,
}

impl Token {
    /// Whether this is the keyword `word` (case-insensitive).
    pub(crate) fn is_kw(&self, word: &str) -> bool {
        self.kind == Tok::Ident && self.text.eq_ignore_ascii_case(word)
    }
}

/// Lexes `source` from byte `from` on. The list always ends with
/// [`Tok::Eof`]. Errors (the message only) for an illegal escape sequence
/// or an unterminated string.
pub(crate) fn lex(source: &str, from: usize) -> Result<Vec<Token>, String> {
    let mut input = &source[from..];
    let mut tokens = Vec::new();
    loop {
        let _: LResult<&str> = multispace0.parse_next(&mut input);
        let start = source.len() - input.len();
        if input.is_empty() {
            break;
        }
        match token.with_taken().parse_next(&mut input) {
            Ok((Tok::BadStr(message), _)) => return Err(message),
            Ok((kind, text)) => tokens.push(Token {
                kind,
                text: text.to_string(),
                start,
                index: tokens.len(),
            }),
            Err(_) => {
                let (row, col) = eof_position(source);
                return Err(format!(
                    "line {row}:{col} mismatched character '<EOF>' expecting '''"
                ));
            }
        }
    }
    tokens.push(Token {
        kind: Tok::Eof,
        text: "<EOF>".into(),
        start: source.len(),
        index: tokens.len(),
    });
    Ok(tokens)
}

/// The 1-based line and 0-based column of the end of `source`.
fn eof_position(source: &str) -> (usize, usize) {
    let row = source.matches('\n').count() + 1;
    let line_start = source.rfind('\n').map_or(0, |i| i + 1);
    (row, source[line_start..].chars().count())
}

fn token(i: &mut &str) -> LResult<Tok> {
    dispatch! {peek(any);
        '\'' => string_lit,
        '0'..='9' => alt((datetime.map(Tok::DateTime), date.map(Tok::Date), number)),
        '-' => alt((number, any.value(Tok::Other))),
        c if c.is_ascii_alphabetic() || c == '_' => ident,
        ',' => any.value(Tok::Comma),
        '(' => any.value(Tok::LParen),
        ')' => any.value(Tok::RParen),
        '.' => any.value(Tok::Dot),
        ':' => any.value(Tok::Colon),
        '=' => any.value(Tok::Op(CmpOp::Eq)),
        '!' => alt(("!=".value(Tok::Op(CmpOp::Ne)), any.value(Tok::Other))),
        '<' => alt((
            "<=".value(Tok::Op(CmpOp::Le)),
            "<>".value(Tok::Op(CmpOp::Ne)),
            "<".value(Tok::Op(CmpOp::Lt)),
        )),
        '>' => alt((">=".value(Tok::Op(CmpOp::Ge)), ">".value(Tok::Op(CmpOp::Gt)))),
        _ => any.value(Tok::Other),
    }
    .parse_next(i)
}

fn ident(i: &mut &str) -> LResult<Tok> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., |c: char| c.is_ascii_alphanumeric() || c == '_'),
    )
        .value(Tok::Ident)
        .parse_next(i)
}

fn number(i: &mut &str) -> LResult<Tok> {
    (opt('-'), digit1, opt(('.', digit1)))
        .take()
        .verify_map(|s: &str| s.parse::<f64>().ok())
        .map(Tok::Number)
        .parse_next(i)
}

/// One decoded piece of a string literal.
#[derive(Debug, Clone)]
enum Piece {
    Plain(char),
    Escaped(char),
    Bad(String),
}

fn string_lit(i: &mut &str) -> LResult<Tok> {
    let (pieces, raw): (Vec<Piece>, &str) =
        delimited('\'', repeat(0.., piece).with_taken(), '\'').parse_next(i)?;
    let mut value = String::new();
    let mut pattern = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Bad(seq) => {
                return Ok(Tok::BadStr(format!(
                    "Invalid string literal '{raw}'. Illegal character sequence '{seq}' in string literal."
                )));
            }
            Piece::Plain(c) => {
                value.push(c);
                pattern.push(match c {
                    '%' => PatChar::Any,
                    '_' => PatChar::One,
                    c => PatChar::Lit(c),
                });
            }
            Piece::Escaped(c) => {
                value.push(c);
                pattern.push(PatChar::Lit(c));
            }
        }
    }
    Ok(Tok::Str(StrLit { value, pattern }))
}

fn piece(i: &mut &str) -> LResult<Piece> {
    alt((
        preceded('\\', escape),
        none_of(['\\', '\'']).map(Piece::Plain),
    ))
    .parse_next(i)
}

/// The escapes SOQL defines (SOQL and SOSL Reference, "Quoted String
/// Escape Sequences": `\n` or `\N`, `\r` or `\R`, `\t` or `\T`, `\b` or
/// `\B`, `\f` or `\F`, `\"`, `\'`, `\\`, and `\_` `\%` for LIKE); anything
/// else is an illegal sequence.
fn escape(i: &mut &str) -> LResult<Piece> {
    dispatch! {any;
        'n' | 'N' => empty.value(Piece::Escaped('\n')),
        'r' | 'R' => empty.value(Piece::Escaped('\r')),
        't' | 'T' => empty.value(Piece::Escaped('\t')),
        'b' | 'B' => empty.value(Piece::Escaped('\u{8}')),
        'f' | 'F' => empty.value(Piece::Escaped('\u{c}')),
        c @ ('\'' | '"' | '\\' | '%' | '_') => empty.value(Piece::Escaped(c)),
        'u' => opt(take_while(4, AsChar::is_hex_digit)).map(|hex: Option<&str>| {
            hex.and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)
                .map_or_else(|| Piece::Bad("\\u".into()), Piece::Escaped)
        }),
        c => empty.value(Piece::Bad(format!("\\{c}"))),
    }
    .parse_next(i)
}

fn digits(n: usize) -> impl FnMut(&mut &str) -> LResult<u32> {
    move |i: &mut &str| {
        take_while(n, AsChar::is_dec_digit)
            .verify_map(|s: &str| s.parse::<u32>().ok())
            .parse_next(i)
    }
}

/// `YYYY-MM-DD`.
pub(crate) fn date(i: &mut &str) -> LResult<NaiveDate> {
    (digits(4), '-', digits(2), '-', digits(2))
        .verify_map(|(y, _, m, _, d)| NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d))
        .parse_next(i)
}

/// `YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|+hhmm)`, as UTC.
pub(crate) fn datetime(i: &mut &str) -> LResult<DateTime<Utc>> {
    let day = date(i)?;
    let (_, h, _, m, _, s) = (
        one_of(['T', 't']),
        digits(2),
        ':',
        digits(2),
        ':',
        digits(2),
    )
        .parse_next(i)?;
    let fraction: Option<&str> = opt(preceded('.', digit1)).parse_next(i)?;
    let offset_minutes: i64 = alt((
        one_of(['Z', 'z']).value(0),
        (one_of(['+', '-']), digits(2), opt(':'), digits(2)).map(|(sign, hh, _, mm)| {
            let minutes = i64::from(hh) * 60 + i64::from(mm);
            if sign == '-' { -minutes } else { minutes }
        }),
    ))
    .parse_next(i)?;
    let nanos = fraction.map_or(0, |f| {
        f.chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .fold(0u32, |acc, c| acc * 10 + c.to_digit(10).unwrap_or(0))
    });
    let naive: Option<NaiveDateTime> = day.and_hms_nano_opt(h, m, s, nanos);
    match naive {
        Some(naive) => Ok((naive - Duration::minutes(offset_minutes)).and_utc()),
        None => Err(ContextError::new()),
    }
}

/// A record's date value (`YYYY-MM-DD`) or datetime value, as a UTC instant.
pub(crate) fn instant(value: &str) -> Option<NaiveDateTime> {
    alt((
        datetime.map(|d| d.naive_utc()),
        date.map(|d| d.and_time(chrono::NaiveTime::MIN)),
    ))
    .parse(value)
    .ok()
}
