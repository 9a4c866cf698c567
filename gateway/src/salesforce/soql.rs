//! SOQL the gateway writes itself: string literals escaped, names only
//! from the describe result.
//!
//! Owns: [`quote_literal`] and [`Select`], a `SELECT` whose object and
//! field names are [`Name`]s (checked against describe) and whose values
//! are always quoted literals.
//!
//! Must not: touch the agent's own SOQL (the `query` tool passes it
//! through verbatim), or format any string into SOQL without
//! [`quote_literal`].
//!
//! Source: SOQL and SOSL Reference, "Quoted String Escape Sequences" and
//! "SOQL SELECT Syntax".

use super::describe::Name;

/// A SOQL string literal: `value` in single quotes with `\` escaped first,
/// then `'` and `"`, and the control characters SOQL names (`\n`, `\r`,
/// `\t`, `\b`, `\f`). E.g. `O'Brien \ Sons` becomes `'O\'Brien \\ Sons'`.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            other => out.push(other),
        }
    }
    out.push('\'');
    out
}

/// `SELECT fields FROM object [WHERE f = 'v' AND ...] [ORDER BY f]
/// [LIMIT n]`, built only from checked names and quoted values.
#[derive(Debug, Clone)]
pub(crate) struct Select {
    fields: Vec<Name>,
    from: Name,
    equals: Vec<(Name, String)>,
    order_by: Option<Name>,
    limit: Option<usize>,
}

impl Select {
    /// `SELECT fields FROM from` (fields must not be empty; `Id` is used
    /// if they are).
    pub(crate) fn new(fields: Vec<Name>, from: Name) -> Self {
        Self {
            fields,
            from,
            equals: Vec::new(),
            order_by: None,
            limit: None,
        }
    }

    /// Adds `AND field = 'value'` (the value is quoted by
    /// [`quote_literal`]).
    pub(crate) fn where_equals(mut self, field: Name, value: &str) -> Self {
        self.equals.push((field, value.to_owned()));
        self
    }

    /// `ORDER BY field`.
    pub(crate) fn order_by(mut self, field: Name) -> Self {
        self.order_by = Some(field);
        self
    }

    /// `LIMIT n`.
    pub(crate) fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// The SOQL text.
    pub(crate) fn to_soql(&self) -> String {
        let fields = if self.fields.is_empty() {
            "Id".to_owned()
        } else {
            self.fields
                .iter()
                .map(Name::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut soql = format!("SELECT {fields} FROM {}", self.from);
        for (i, (field, value)) in self.equals.iter().enumerate() {
            let joiner = if i == 0 { "WHERE" } else { "AND" };
            soql.push_str(&format!(" {joiner} {field} = {}", quote_literal(value)));
        }
        if let Some(field) = &self.order_by {
            soql.push_str(&format!(" ORDER BY {field}"));
        }
        if let Some(n) = self.limit {
            soql.push_str(&format!(" LIMIT {n}"));
        }
        soql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_backslash_first_then_quotes_and_controls() {
        assert_eq!(
            quote_literal("O'Brien & Sons \\ Logistics"),
            r"'O\'Brien & Sons \\ Logistics'"
        );
        assert_eq!(quote_literal(r"\'"), r"'\\\''");
        assert_eq!(
            quote_literal("a\nb\rc\td\u{8}e\u{c}f\"g"),
            r#"'a\nb\rc\td\be\ff\"g'"#
        );
        assert_eq!(
            quote_literal("Ålesund – São Paulo"),
            "'Ålesund – São Paulo'"
        );
        assert_eq!(quote_literal(""), "''");
    }

    #[test]
    fn an_injection_attempt_stays_inside_the_literal() {
        let soql = Select::new(vec![Name::for_tests("Id")], Name::for_tests("Contact"))
            .where_equals(Name::for_tests("AccountId"), "x' OR Name != '")
            .to_soql();
        assert_eq!(
            soql,
            r"SELECT Id FROM Contact WHERE AccountId = 'x\' OR Name != \''"
        );
    }

    #[test]
    fn select_renders_every_clause() {
        let soql = Select::new(
            vec![Name::for_tests("Id"), Name::for_tests("Name")],
            Name::for_tests("Contact"),
        )
        .where_equals(Name::for_tests("AccountId"), "0015g00000Q1aACAAZ")
        .where_equals(Name::for_tests("LastName"), "Souza")
        .order_by(Name::for_tests("Id"))
        .limit(50)
        .to_soql();
        assert_eq!(
            soql,
            "SELECT Id, Name FROM Contact WHERE AccountId = '0015g00000Q1aACAAZ' AND LastName = 'Souza' ORDER BY Id LIMIT 50"
        );
        let bare = Select::new(vec![], Name::for_tests("Account")).to_soql();
        assert_eq!(bare, "SELECT Id FROM Account");
    }
}
