//! Tokenizing and parsing query expressions, with spans for diagnostics.

use miette::SourceSpan;

use crate::diag::{Errors, InputError, Source};
use crate::label::{Pattern, parse_pattern};
use crate::rules::Kind;

#[derive(Debug, Clone)]
pub enum Expr {
    Pattern(Pattern, SourceSpan),
    Deps(Box<Expr>),
    Rdeps(Box<Expr>, Box<Expr>),
    Kind(Kind, Box<Expr>),
    /// `platform(P, X)`: the platform's name as written, where it was written.
    Platform(String, SourceSpan, Box<Expr>),
    Union(Box<Expr>, Box<Expr>),
    Except(Box<Expr>, Box<Expr>),
    Intersect(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Comma,
}

/// Queries nest through parentheses and calls; a limit keeps the parser's stack bounded.
const MAX_DEPTH: usize = 128;

fn tokenize(text: &str) -> Vec<(Tok, SourceSpan)> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                let tok = match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    _ => Tok::Comma,
                };
                out.push((tok, SourceSpan::from(i..i + 1)));
            }
            _ => {
                let mut end = i;
                while let Some(&(j, c)) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | ',') {
                        break;
                    }
                    end = j + c.len_utf8();
                    chars.next();
                }
                out.push((
                    Tok::Word(text[i..end].to_string()),
                    SourceSpan::from(i..end),
                ));
            }
        }
    }
    out
}

struct Parser<'a> {
    source: &'a Source,
    toks: Vec<(Tok, SourceSpan)>,
    pos: usize,
    depth: usize,
}

type PResult<T> = Result<T, InputError>;

impl Parser<'_> {
    fn err(
        &self,
        span: SourceSpan,
        message: impl Into<String>,
        label: &str,
        help: &str,
    ) -> InputError {
        InputError::at("bad-query", self.source, span, message, label).with_help(help)
    }

    fn end_span(&self) -> SourceSpan {
        let n = self.source.text.len();
        SourceSpan::from(n..n)
    }

    fn peek(&self) -> Option<&(Tok, SourceSpan)> {
        self.toks.get(self.pos)
    }

    fn expect(&mut self, want: Tok, what: &str) -> PResult<()> {
        match self.toks.get(self.pos) {
            Some((t, _)) if *t == want => {
                self.pos += 1;
                Ok(())
            }
            Some((_, span)) => Err(self.err(
                *span,
                format!("Expected {what}"),
                &format!("expected {what}"),
                "Check the parentheses and commas of the query",
            )),
            None => Err(self.err(
                self.end_span(),
                format!("Expected {what}, but the query ends"),
                "query ends here",
                "Close every `(` with `)`",
            )),
        }
    }

    fn expr(&mut self) -> PResult<Expr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let span = self.peek().map_or(self.end_span(), |t| t.1);
            return Err(self.err(
                span,
                format!("The query nests more than {MAX_DEPTH} levels deep"),
                "too deep",
                "Simplify the query",
            ));
        }
        let mut left = self.term()?;
        while let Some((Tok::Word(w), _)) = self.peek() {
            let make: fn(Box<Expr>, Box<Expr>) -> Expr = match w.as_str() {
                "+" | "union" => Expr::Union,
                "-" | "except" => Expr::Except,
                "^" | "intersect" => Expr::Intersect,
                _ => break,
            };
            self.pos += 1;
            let right = self.term()?;
            left = make(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn term(&mut self) -> PResult<Expr> {
        let Some((tok, span)) = self.toks.get(self.pos).cloned() else {
            return Err(self.err(
                self.end_span(),
                "Expected a pattern or a function, but the query ends",
                "query ends here",
                "Finish the expression, such as `deps(//wheels:all)`",
            ));
        };
        self.pos += 1;
        match tok {
            Tok::Open => {
                let e = self.expr()?;
                self.expect(Tok::Close, "`)`")?;
                Ok(e)
            }
            Tok::Word(w) if self.peek().map(|t| &t.0) == Some(&Tok::Open) => {
                self.pos += 1;
                let e = match w.as_str() {
                    "deps" => Expr::Deps(Box::new(self.expr()?)),
                    "rdeps" => {
                        let u = self.expr()?;
                        self.expect(Tok::Comma, "`,` between the universe and the targets of `rdeps(U, X)`")?;
                        Expr::Rdeps(Box::new(u), Box::new(self.expr()?))
                    }
                    "kind" => {
                        let kind = match self.toks.get(self.pos).cloned() {
                            Some((Tok::Word(k), kspan)) => {
                                self.pos += 1;
                                Kind::parse(&k).ok_or_else(|| {
                                    self.err(kspan, format!("Unknown kind `{k}`"), "not a kind", &format!("Kinds are {}", Kind::names()))
                                })?
                            }
                            Some((_, s)) => return Err(self.err(s, "Expected a kind", "expected a kind", &format!("Kinds are {}", Kind::names()))),
                            None => return Err(self.err(self.end_span(), "Expected a kind, but the query ends", "query ends here", "Write `kind(wheel, //...)`")),
                        };
                        self.expect(Tok::Comma, "`,` after the kind")?;
                        Expr::Kind(kind, Box::new(self.expr()?))
                    }
                    "platform" => {
                        let (name, pspan) = match self.toks.get(self.pos).cloned() {
                            Some((Tok::Word(p), pspan)) => {
                                self.pos += 1;
                                (p, pspan)
                            }
                            Some((_, s)) => return Err(self.err(s, "Expected a platform", "expected a platform", "Write `platform(x86_64, //...)` with a platform of workspace.kdl")),
                            None => return Err(self.err(self.end_span(), "Expected a platform, but the query ends", "query ends here", "Write `platform(x86_64, //...)`")),
                        };
                        self.expect(Tok::Comma, "`,` after the platform")?;
                        Expr::Platform(name, pspan, Box::new(self.expr()?))
                    }
                    other => {
                        let help = match crate::diag::did_you_mean(other, ["deps", "rdeps", "kind", "platform"]) {
                            Some(near) => format!("Did you mean `{near}`?"),
                            None => "The functions are `deps(X)`, `rdeps(U, X)`, `kind(K, X)` and `platform(P, X)`".into(),
                        };
                        return Err(self.err(span, format!("Unknown function `{other}`"), "not a function", &help));
                    }
                };
                self.expect(Tok::Close, "`)`")?;
                Ok(e)
            }
            Tok::Word(w) => match parse_pattern(&w) {
                Ok(p) => Ok(Expr::Pattern(p, span)),
                Err(e) => Err(self.err(span, e.message, "not a pattern", &e.help)),
            },
            Tok::Close | Tok::Comma => Err(self.err(span, "Expected a pattern or a function", "unexpected", "Patterns look like `//wheels:all`; functions are `deps(X)`, `rdeps(U, X)`, `kind(K, X)` and `platform(P, X)`")),
        }
    }
}

pub fn parse(source: &Source) -> Result<Expr, Errors> {
    let mut p = Parser {
        source,
        toks: tokenize(&source.text),
        pos: 0,
        depth: 0,
    };
    let e = p.expr().map_err(|e| Errors(vec![e]))?;
    if let Some((_, span)) = p.peek() {
        let err = p.err(
            *span,
            "Unexpected text after the query",
            "unexpected",
            "Join expressions with ` + `, ` - ` or ` ^ `, separated by spaces",
        );
        return Err(Errors(vec![err]));
    }
    Ok(e)
}
