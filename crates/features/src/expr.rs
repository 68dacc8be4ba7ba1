//! Arithmetic expressions over number fields, for derived features:
//! `total_charges / (tenure_months + 1)`, `log1p(max(balance, 0))`.
//!
//! Grammar: `+ - * /`, unary minus, parentheses, numbers (`12`, `0.5`, `1e-3`), field names
//! (letters, digits, `_`, starting with a letter or `_`), and the functions `abs`, `sqrt`,
//! `log`, `log1p`, `exp` (one argument), `min`, `max` (two). Evaluation is vectorized over a
//! batch's columns; a missing input gives a missing result, and a result that is not finite
//! (a division by zero, the log of a negative number) is missing too, so imputation applies.

use std::collections::HashMap;
use std::fmt;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    Field(String),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Abs,
    Sqrt,
    Log,
    Log1p,
    Exp,
    Min,
    Max,
}

impl Function {
    fn parse(name: &str) -> Option<(Self, usize)> {
        Some(match name {
            "abs" => (Self::Abs, 1),
            "sqrt" => (Self::Sqrt, 1),
            "log" => (Self::Log, 1),
            "log1p" => (Self::Log1p, 1),
            "exp" => (Self::Exp, 1),
            "min" => (Self::Min, 2),
            "max" => (Self::Max, 2),
            _ => return None,
        })
    }
}

/// Where and why an expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// Offset in the text, in characters.
    pub position: usize,
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.position + 1, self.message)
    }
}

/// Nesting deeper than this is refused (the parser recurses; a spec can come over the API).
pub const MAX_DEPTH: usize = 64;
/// Longer expressions are refused.
pub const MAX_LENGTH: usize = 4096;

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn error<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError {
            position: self.text[..self.at].chars().count(),
            message: message.into(),
        })
    }

    fn skip_spaces(&mut self) {
        while let Some(c) = self.text[self.at..]
            .chars()
            .next()
            .filter(|c| c.is_whitespace())
        {
            self.at += c.len_utf8();
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_spaces();
        self.text[self.at..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// sum := product (('+' | '-') product)*
    fn sum(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.product()?;
        loop {
            let op = if self.eat('+') {
                Op::Add
            } else if self.eat('-') {
                Op::Sub
            } else {
                return Ok(left);
            };
            left = Expr::Binary(op, Box::new(left), Box::new(self.product()?));
        }
    }

    /// product := unary (('*' | '/') unary)*
    fn product(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat('*') {
                Op::Mul
            } else if self.eat('/') {
                Op::Div
            } else {
                return Ok(left);
            };
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    /// unary := '-' unary | atom
    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error(format!("nested more than {MAX_DEPTH} levels deep"));
        }
        let parsed = if self.eat('-') {
            self.unary().map(|e| Expr::Neg(Box::new(e)))
        } else {
            self.atom()
        };
        self.depth -= 1;
        parsed
    }

    /// atom := number | name | name '(' args ')' | '(' sum ')'
    fn atom(&mut self) -> Result<Expr, ExprError> {
        match self.peek() {
            Some('(') => {
                self.at += 1;
                let inner = self.sum()?;
                if !self.eat(')') {
                    return self.error("expected ')'");
                }
                Ok(inner)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.at;
                while self.text[self.at..]
                    .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.at += 1;
                }
                let name = &self.text[start..self.at];
                if self.peek() != Some('(') {
                    return Ok(Expr::Field(name.to_string()));
                }
                let Some((function, arity)) = Function::parse(name) else {
                    self.at = start;
                    return self.error(format!(
                        "unknown function {name:?}: expected abs, sqrt, log, log1p, exp, min or max"
                    ));
                };
                self.at += 1;
                let mut args = vec![self.sum()?];
                while self.eat(',') {
                    args.push(self.sum()?);
                }
                if !self.eat(')') {
                    return self.error("expected ')' or ','");
                }
                if args.len() != arity {
                    self.at = start;
                    return self.error(format!(
                        "{name} takes {arity} argument(s), got {}",
                        args.len()
                    ));
                }
                Ok(Expr::Call(function, args))
            }
            Some(c) => self.error(format!("unexpected {c:?}")),
            None => self.error("unexpected end"),
        }
    }

    fn number(&mut self) -> Result<Expr, ExprError> {
        let start = self.at;
        let rest = &self.text[start..];
        let mut end = 0;
        let bytes = rest.as_bytes();
        while end < bytes.len()
            && (bytes[end].is_ascii_digit()
                || bytes[end] == b'.'
                || ((bytes[end] == b'e' || bytes[end] == b'E') && end > 0)
                || ((bytes[end] == b'-' || bytes[end] == b'+')
                    && end > 0
                    && (bytes[end - 1] == b'e' || bytes[end - 1] == b'E')))
        {
            end += 1;
        }
        match rest[..end].parse::<f64>() {
            Ok(x) => {
                self.at += end;
                Ok(Expr::Number(x))
            }
            Err(_) => self.error(format!("{:?} is not a number", &rest[..end])),
        }
    }
}

impl Expr {
    /// Parses an expression; the error names the character where it went wrong.
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        if text.len() > MAX_LENGTH {
            return Err(ExprError {
                position: text.chars().take(MAX_LENGTH).count(),
                message: format!("longer than {MAX_LENGTH} characters"),
            });
        }
        let mut parser = Parser {
            text,
            at: 0,
            depth: 0,
        };
        let expr = parser.sum()?;
        if parser.peek().is_some() {
            return parser.error("unexpected text after the expression");
        }
        Ok(expr)
    }

    /// The fields the expression reads, each once, in order of appearance.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'e>(&'e self, out: &mut Vec<&'e str>) {
        match self {
            Expr::Number(_) => {}
            Expr::Field(name) => {
                if !out.contains(&name.as_str()) {
                    out.push(name);
                }
            }
            Expr::Neg(e) => e.collect(out),
            Expr::Binary(_, a, b) => {
                a.collect(out);
                b.collect(out);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.collect(out)),
        }
    }

    /// Evaluates over `rows` rows of `columns` (every field of [`Expr::fields`]); NaN is
    /// missing, and a result that is not finite becomes NaN.
    pub fn eval(&self, columns: &HashMap<&str, Vec<f64>>, rows: usize) -> Vec<f64> {
        let mut out = self.eval_raw(columns, rows);
        for x in &mut out {
            if !x.is_finite() {
                *x = f64::NAN;
            }
        }
        out
    }

    fn eval_raw(&self, columns: &HashMap<&str, Vec<f64>>, rows: usize) -> Vec<f64> {
        match self {
            Expr::Number(x) => vec![*x; rows],
            Expr::Field(name) => columns
                .get(name.as_str())
                .cloned()
                .unwrap_or_else(|| vec![f64::NAN; rows]),
            Expr::Neg(e) => e.eval_raw(columns, rows).into_iter().map(|x| -x).collect(),
            Expr::Binary(op, a, b) => {
                let (a, b) = (a.eval_raw(columns, rows), b.eval_raw(columns, rows));
                a.into_iter()
                    .zip(b)
                    .map(|(x, y)| match op {
                        Op::Add => x + y,
                        Op::Sub => x - y,
                        Op::Mul => x * y,
                        Op::Div => x / y,
                    })
                    .collect()
            }
            Expr::Call(function, args) => {
                let values: Vec<Vec<f64>> =
                    args.iter().map(|a| a.eval_raw(columns, rows)).collect();
                (0..rows)
                    .map(|r| {
                        let x = values[0][r];
                        match function {
                            Function::Abs => x.abs(),
                            Function::Sqrt => x.sqrt(),
                            Function::Log => x.ln(),
                            Function::Log1p => x.ln_1p(),
                            Function::Exp => x.exp(),
                            // A missing argument makes a missing result (f64::min would drop it).
                            Function::Min | Function::Max
                                if x.is_nan() || values[1][r].is_nan() =>
                            {
                                f64::NAN
                            }
                            Function::Min => x.min(values[1][r]),
                            Function::Max => x.max(values[1][r]),
                        }
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, columns: &[(&'static str, Vec<f64>)]) -> Vec<f64> {
        let rows = columns.first().map_or(1, |c| c.1.len());
        let map: HashMap<&str, Vec<f64>> = columns.iter().cloned().collect();
        Expr::parse(text).expect("parses").eval(&map, rows)
    }

    #[test]
    fn precedence_parentheses_and_unary_minus() {
        assert_eq!(eval("1 + 2 * 3", &[]), [7.0]);
        assert_eq!(eval("(1 + 2) * 3", &[]), [9.0]);
        assert_eq!(eval("-2 - -3", &[]), [1.0]);
        assert_eq!(eval("8 / 4 / 2", &[]), [1.0]);
        assert_eq!(eval("1.5e2 + 2E-1", &[]), [150.2]);
    }

    #[test]
    fn fields_functions_and_missing_values() {
        let cols = [("a", vec![4.0, f64::NAN, 9.0]), ("b", vec![1.0, 1.0, 0.0])];
        let out = eval("sqrt(a) + max(b, 0.5)", &cols);
        assert_eq!(out[0], 3.0);
        assert!(out[1].is_nan(), "a missing input gives a missing result");
        assert_eq!(out[2], 3.5);
        let out = eval("a / b", &cols);
        assert!(
            out[2].is_nan(),
            "a division by zero is missing, not infinite"
        );
        assert!(eval("log(0 - 1)", &[])[0].is_nan());
        assert_eq!(
            Expr::parse("a * (b + a)").expect("parses").fields(),
            ["a", "b"]
        );
    }

    #[test]
    fn errors_say_where() {
        for (text, at, says) in [
            ("1 +", 3, "unexpected end"),
            ("(a + b", 6, "expected ')'"),
            ("foo(a)", 0, "unknown function"),
            ("min(a)", 0, "takes 2"),
            ("a $ b", 2, "unexpected text"),
            ("a\u{a0}+\u{3000}é", 4, "unexpected 'é'"),
            ("1..2", 0, "not a number"),
            (
                &format!("{}1{}", "(".repeat(100), ")".repeat(100)),
                64,
                "nested more than",
            ),
            (&"-".repeat(100), 64, "nested more than"),
        ] {
            let err = Expr::parse(text).expect_err(text);
            assert_eq!(err.position, at, "{text}: {err}");
            assert!(err.message.contains(says), "{text}: {err}");
        }
    }
}
