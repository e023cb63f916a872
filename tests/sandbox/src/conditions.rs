//! ConnectWise's `conditions` mini-language, as docs/vendors/connectwise.md#filtering-conditions
//! describes it:
//! `field op value`, nested fields with `/`, strings in double quotes (`\"` escapes),
//! numbers, `true`/`false`/`null`, `[datetime]`, operators `= != < <= > >= like contains`,
//! combined with `and`/`or` (`and` binds tighter) and parentheses.
//!
//! String comparisons ignore case: ConnectWise sits on SQL Server, whose default
//! collation is case-insensitive.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Number(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    Contains,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare { field: String, op: Op, value: Literal },
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Date(String),
    Op(Op),
    Open,
    Close,
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('\\') => {
                            let next = chars.get(i + 1).ok_or("dangling escape")?;
                            text.push(*next);
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            text.push(*ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Text(text));
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']').ok_or("unterminated [datetime]")?;
                tokens.push(Token::Date(chars[i + 1..i + end].iter().collect()));
                i += end + 1;
            }
            '=' => {
                tokens.push(Token::Op(Op::Eq));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Op(Op::Ne));
                i += 2;
            }
            '<' | '>' => {
                let with_eq = chars.get(i + 1) == Some(&'=');
                let op = match (c, with_eq) {
                    ('<', true) => Op::Le,
                    ('<', false) => Op::Lt,
                    (_, true) => Op::Ge,
                    _ => Op::Gt,
                };
                tokens.push(Token::Op(op));
                i += if with_eq { 2 } else { 1 };
            }
            c if c.is_alphanumeric() || c == '_' || c == '/' || c == '.' || c == '-' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '/' | '.' | '-')) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.to_ascii_lowercase().as_str() {
                    "like" => tokens.push(Token::Op(Op::Like)),
                    "contains" => tokens.push(Token::Op(Op::Contains)),
                    _ => tokens.push(Token::Word(word)),
                }
            }
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn or_expr(&mut self) -> Result<Condition, String> {
        let mut left = self.and_expr()?;
        while self.peek_keyword("or") {
            self.at += 1;
            left = Condition::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Condition, String> {
        let mut left = self.primary()?;
        while self.peek_keyword("and") {
            self.at += 1;
            left = Condition::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Condition, String> {
        match self.tokens.get(self.at).cloned() {
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.or_expr()?;
                if self.tokens.get(self.at) != Some(&Token::Close) {
                    return Err("missing ')'".into());
                }
                self.at += 1;
                Ok(inner)
            }
            Some(Token::Word(field)) => {
                self.at += 1;
                let op = match self.tokens.get(self.at) {
                    Some(Token::Op(op)) => *op,
                    other => return Err(format!("expected an operator after '{field}', found {other:?}")),
                };
                self.at += 1;
                let value = match self.tokens.get(self.at).cloned() {
                    Some(Token::Text(text)) | Some(Token::Date(text)) => Literal::Text(text),
                    Some(Token::Word(word)) => match word.to_ascii_lowercase().as_str() {
                        "true" => Literal::Bool(true),
                        "false" => Literal::Bool(false),
                        "null" => Literal::Null,
                        _ => Literal::Number(
                            word.parse().map_err(|_| format!("'{word}' is not a value (quote strings)"))?,
                        ),
                    },
                    other => return Err(format!("expected a value after '{field}', found {other:?}")),
                };
                self.at += 1;
                Ok(Condition::Compare { field, op, value })
            }
            other => Err(format!("expected a condition, found {other:?}")),
        }
    }
}

pub fn parse(input: &str) -> Result<Condition, String> {
    let mut parser = Parser { tokens: tokenize(input)?, at: 0 };
    let condition = parser.or_expr()?;
    if parser.at != parser.tokens.len() {
        return Err(format!("unexpected {:?}", parser.tokens[parser.at]));
    }
    Ok(condition)
}

fn resolve<'a>(record: &'a Value, field: &str) -> Option<&'a Value> {
    let found = field.split('/').try_fold(record, |value, key| {
        value.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
    });
    // ConnectWise's `lastUpdated` condition reads the record's `_info/lastUpdated`.
    match found {
        None if field.eq_ignore_ascii_case("lastUpdated") => resolve(record, "_info/lastUpdated"),
        found => found,
    }
}

fn like(text: &str, pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.split('%').collect();
    if parts.len() == 1 {
        return text == pattern;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !rest.starts_with(part) {
                return false;
            }
            rest = &rest[part.len()..];
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(at) = rest.find(part) {
            rest = &rest[at + part.len()..];
        } else {
            return false;
        }
    }
    true
}

impl Condition {
    /// Every field the condition names, in order.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Condition::Compare { field, .. } => vec![field.as_str()],
            Condition::And(a, b) | Condition::Or(a, b) => {
                let mut fields = a.fields();
                fields.extend(b.fields());
                fields
            }
        }
    }

    pub fn matches(&self, record: &Value) -> bool {
        match self {
            Condition::And(a, b) => a.matches(record) && b.matches(record),
            Condition::Or(a, b) => a.matches(record) || b.matches(record),
            Condition::Compare { field, op, value } => {
                let actual = resolve(record, field).unwrap_or(&Value::Null);
                compare(actual, *op, value)
            }
        }
    }
}

fn compare(actual: &Value, op: Op, expected: &Literal) -> bool {
    use std::cmp::Ordering;
    let ordering = match (actual, expected) {
        (Value::Null, Literal::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Literal::Null) => None,
        (Value::String(a), Literal::Text(b)) => {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match op {
                Op::Like => return like(&a, &b),
                Op::Contains => return a.contains(&b),
                _ => Some(a.cmp(&b)),
            }
        }
        (Value::Number(a), Literal::Number(b)) => a.as_f64().and_then(|a| a.partial_cmp(b)),
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match (op, ordering) {
        (Op::Eq, Some(o)) => o == Ordering::Equal,
        (Op::Ne, Some(o)) => o != Ordering::Equal,
        (Op::Ne, None) => true,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn and_binds_tighter_than_or() {
        let c = parse(r#"id=1 or id=2 and name="x""#).unwrap();
        assert!(c.matches(&json!({"id": 1, "name": "y"})));
        assert!(!c.matches(&json!({"id": 2, "name": "y"})));
        let c = parse(r#"(id=1 or id=2) and name="x""#).unwrap();
        assert!(!c.matches(&json!({"id": 1, "name": "y"})));
        assert!(c.matches(&json!({"id": 2, "name": "X"})));
    }

    #[test]
    fn nested_fields_quotes_like_and_contains() {
        let record = json!({"company": {"id": 250}, "name": "Smith \"Plumbing\"", "status": {"name": "Offboarded"}});
        assert!(parse("company/id=250").unwrap().matches(&record));
        assert!(parse(r#"name="smith \"plumbing\"""#).unwrap().matches(&record));
        assert!(parse(r#"status/name like "off%""#).unwrap().matches(&record));
        assert!(parse(r#"name contains "PLUMB""#).unwrap().matches(&record));
        assert!(!parse(r#"status/name="Active""#).unwrap().matches(&record));
        assert!(parse("company/id != 7 AND company/id >= 250").unwrap().matches(&record));
    }

    #[test]
    fn datetime_literals_compare_with_iso_strings() {
        let ended = json!({"endDate": "2026-10-23T00:00:00Z", "cancelledFlag": false, "company": {"id": 250}});
        let open = json!({"endDate": null, "cancelledFlag": true, "company": {"id": 260}});
        let before = parse("endDate<[2026-11-22T00:00:00Z]").unwrap();
        assert!(before.matches(&ended));
        assert!(!before.matches(&open), "a null end date is not before anything");
        assert!(!parse("endDate>=[2026-11-22T00:00:00Z]").unwrap().matches(&ended));
        assert!(parse("endDate<=[2026-10-23T00:00:00Z]").unwrap().matches(&ended));
        assert!(parse("endDate=null").unwrap().matches(&open));
        let c = parse("company/id=250 and cancelledFlag=false and endDate<[2026-11-22T00:00:00Z]").unwrap();
        assert!(c.matches(&ended) && !c.matches(&open));
    }

    #[test]
    fn malformed_conditions_are_errors() {
        for bad in [r#"name="open"#, "name=", "(id=1", "id 1", "name=Acme Ltd", "id=1 or"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
