//! SOSL search terms and how they match text, shared by `FIND {...}` and
//! parameterized search; also the wildcard matcher LIKE uses.
//!
//! Text is matched word by word, case-insensitively: a field's text is cut
//! into runs of letters and digits, and a search word (which may itself cut
//! into several, like `O'Brien` or `555-1234`) must match consecutive runs
//! of one field. `*` matches any characters and `?` one, within a word.

use winnow::ascii::{Caseless, multispace0, multispace1};
use winnow::combinator::{alt, delimited, opt, preceded, repeat, separated, terminated};
use winnow::error::ContextError;
use winnow::prelude::*;
use winnow::token::{any, none_of};

use super::lexer::PatChar;
use super::parser::MAX_DEPTH;

type SResult<O> = winnow::Result<O, ContextError>;

/// A search expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Term {
    /// A word or quoted phrase: patterns for consecutive text runs (empty
    /// when it has no letters or digits; it then matches everything).
    Words(Vec<Vec<PatChar>>),
    And(Vec<Term>),
    Or(Vec<Term>),
    /// Matches the first but not the second.
    AndNot(Box<Term>, Box<Term>),
}

/// Whether `pattern` matches all of `text` (`Any` = any run, `One` = one
/// character).
pub(crate) fn glob(pattern: &[PatChar], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(PatChar::One) => (p, t) = (p + 1, t + 1),
            Some(PatChar::Lit(c)) if *c == text[t] => (p, t) = (p + 1, t + 1),
            Some(PatChar::Any) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    (p, t) = (sp + 1, st + 1);
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == PatChar::Any)
}

/// Cuts searchable text into lower-case runs of letters and digits.
pub(crate) fn text_runs(text: &str) -> Vec<Vec<char>> {
    let mut runs: Vec<Vec<char>> = vec![];
    let mut current = vec![];
    for c in text.chars() {
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// Cuts a search word into patterns at characters that are neither letters,
/// digits nor wildcards.
fn word_runs(chars: &[PatChar]) -> Vec<Vec<PatChar>> {
    let mut runs: Vec<Vec<PatChar>> = vec![];
    let mut current = vec![];
    for c in chars {
        match c {
            PatChar::Lit(ch) if !ch.is_alphanumeric() => {
                if !current.is_empty() {
                    runs.push(std::mem::take(&mut current));
                }
            }
            PatChar::Lit(ch) => current.extend(ch.to_lowercase().map(PatChar::Lit)),
            wild => current.push(*wild),
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

impl Term {
    /// Whether a record whose searched fields cut into `fields` matches.
    pub(crate) fn matches(&self, fields: &[Vec<Vec<char>>]) -> bool {
        match self {
            Term::Words(words) => {
                words.is_empty()
                    || fields.iter().any(|runs| {
                        runs.windows(words.len())
                            .any(|w| w.iter().zip(words).all(|(t, p)| glob(p, t)))
                    })
            }
            Term::And(ts) => ts.iter().all(|t| t.matches(fields)),
            Term::Or(ts) => ts.iter().any(|t| t.matches(fields)),
            Term::AndNot(a, b) => a.matches(fields) && !b.matches(fields),
        }
    }

    /// How many letters and digits the term has (wildcards excluded).
    pub(crate) fn significant_len(&self) -> usize {
        match self {
            Term::Words(words) => words
                .iter()
                .flatten()
                .filter(|c| matches!(c, PatChar::Lit(_)))
                .count(),
            Term::And(ts) | Term::Or(ts) => ts.iter().map(Term::significant_len).sum(),
            Term::AndNot(a, b) => a.significant_len() + b.significant_len(),
        }
    }
}

/// Why a SOSL search term did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TermError {
    /// Not a search term.
    Invalid,
    /// Parentheses nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Parses the text between SOSL's braces: words, `"phrases"`, `( )`,
/// `AND`, `OR`, `AND NOT` (adjacent words mean AND); `\x` is a literal `x`.
/// Groups nest at most [`MAX_DEPTH`] deep: the parser recurses per group.
pub(crate) fn parse_sosl_term(raw: &str) -> Result<Term, TermError> {
    if group_depth(raw) > MAX_DEPTH {
        return Err(TermError::TooDeep);
    }
    delimited(multispace0, or_expr, multispace0)
        .parse(raw)
        .map_err(|_| TermError::Invalid)
}

/// The deepest nesting of `(` groups outside phrases and escapes (an upper
/// bound of the parser's recursion).
fn group_depth(raw: &str) -> usize {
    let (mut depth, mut deepest, mut phrase) = (0usize, 0, false);
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => phrase = !phrase,
            '(' if !phrase => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' if !phrase => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Parameterized search text: whitespace-separated words, all required;
/// only `*` and `?` are special.
pub(crate) fn plain_term(q: &str) -> Term {
    Term::And(plain_words.parse(q).unwrap_or_default())
}

fn plain_words(i: &mut &str) -> SResult<Vec<Term>> {
    let word = repeat(
        1..,
        none_of(char::is_whitespace).map(|c: char| match c {
            '*' => PatChar::Any,
            '?' => PatChar::One,
            c => PatChar::Lit(c),
        }),
    )
    .map(|chars: Vec<PatChar>| Term::Words(word_runs(&chars)));
    delimited(multispace0, separated(0.., word, multispace1), multispace0).parse_next(i)
}

fn or_expr(i: &mut &str) -> SResult<Term> {
    let terms: Vec<Term> =
        separated(1.., and_expr, (multispace1, Caseless("OR"), multispace1)).parse_next(i)?;
    Ok(if terms.len() == 1 {
        terms.into_iter().next().unwrap_or(Term::And(vec![]))
    } else {
        Term::Or(terms)
    })
}

fn and_expr(i: &mut &str) -> SResult<Term> {
    let first = unit.parse_next(i)?;
    let rest: Vec<(bool, Term)> = repeat(0.., (connector, unit)).parse_next(i)?;
    Ok(rest.into_iter().fold(first, |acc, (negate, t)| {
        if negate {
            Term::AndNot(Box::new(acc), Box::new(t))
        } else {
            match acc {
                Term::And(mut ts) => {
                    ts.push(t);
                    Term::And(ts)
                }
                other => Term::And(vec![other, t]),
            }
        }
    }))
}

/// Between two units: `AND NOT` (true), `AND` or just space (false).
fn connector(i: &mut &str) -> SResult<bool> {
    alt((
        (
            multispace1,
            Caseless("AND"),
            multispace1,
            Caseless("NOT"),
            multispace1,
        )
            .value(true),
        (multispace1, Caseless("AND"), multispace1).value(false),
        multispace1.value(false),
    ))
    .parse_next(i)
}

fn unit(i: &mut &str) -> SResult<Term> {
    alt((
        delimited(('(', multispace0), or_expr, (multispace0, ')')),
        delimited('"', repeat(0.., term_char('"')), '"')
            .map(|chars: Vec<PatChar>| Term::Words(word_runs(&chars))),
        repeat(1.., term_char(' '))
            .with_taken()
            .verify(|(_, raw): &(Vec<PatChar>, &str)| {
                !["AND", "OR", "NOT"]
                    .iter()
                    .any(|op| raw.eq_ignore_ascii_case(op))
            })
            .map(|(chars, _)| Term::Words(word_runs(&chars))),
    ))
    .parse_next(i)
}

/// One character of a word (`stop` = `"` inside a phrase): `\x` literal,
/// `*` and `?` wildcards.
fn term_char<'i>(stop: char) -> impl Parser<&'i str, PatChar, ContextError> {
    alt((
        preceded('\\', any).map(PatChar::Lit),
        none_of(move |c: char| {
            c == '\\' || c == '"' || (stop != '"' && (c.is_whitespace() || "(){}".contains(c)))
        })
        .map(|c| match c {
            '*' => PatChar::Any,
            '?' => PatChar::One,
            c => PatChar::Lit(c),
        }),
    ))
}

/// The raw text between `{` and the first unescaped `}` at the start of
/// `input`, consuming through the `}`.
pub(crate) fn braced<'i>(input: &mut &'i str) -> SResult<&'i str> {
    preceded(
        '{',
        terminated(
            repeat::<_, _, (), _, _>(
                0..,
                alt((preceded('\\', any).void(), none_of(['\\', '}']).void())),
            )
            .take(),
            '}',
        ),
    )
    .parse_next(input)
}

/// `FIND` then the braced term; `None` for the term if the braces are
/// missing or unclosed.
pub(crate) fn find_clause<'i>(input: &mut &'i str) -> SResult<Option<&'i str>> {
    (multispace0, Caseless("FIND"), multispace0).parse_next(input)?;
    opt(braced).parse_next(input)
}
