//! Error messages in Salesforce's words, with the caret block Salesforce puts
//! in front of errors it can place in the query text:
//! `"\n<line>\n<spaces>^\nERROR at Row:<r>:Column:<c>\n<message>"`.

use super::SoqlError;
use super::lexer::Token;

/// `message` prefixed with the caret block pointing at byte `offset` of
/// `src` (row and column 1-based; the column counts characters).
pub(crate) fn positioned(src: &str, offset: usize, code: &'static str, message: &str) -> SoqlError {
    let offset = floor_char_boundary(src, offset.min(src.len()));
    let before = &src[..offset];
    let row = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[offset..].find('\n').map_or(src.len(), |i| offset + i);
    let line = src[line_start..line_end].trim_end_matches('\r');
    let column = src[line_start..offset].chars().count() + 1;
    let caret = format!("{}^", " ".repeat(column - 1));
    SoqlError::new(
        code,
        format!("\n{line}\n{caret}\nERROR at Row:{row}:Column:{column}\n{message}"),
    )
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The parse error at token `at`: `unexpected token: X` (`<EOF>` at the
/// end). Salesforce leaves out the caret block when the very first token is
/// wrong (`SELEC Id FROM Account`), so this does too.
pub(crate) fn unexpected(src: &str, tokens: &[Token], at: usize, code: &'static str) -> SoqlError {
    let Some(token) = tokens.get(at).or(tokens.last()) else {
        return SoqlError::new(code, "unexpected token: <EOF>");
    };
    let message = format!("unexpected token: {}", token.text);
    if src[..token.start].trim().is_empty() {
        SoqlError::new(code, message)
    } else {
        positioned(src, token.start, code, &message)
    }
}
