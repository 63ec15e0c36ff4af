//! Diagnostics for user input: every error points at a file, line and column, with a label
//! and a help line, and all errors of one load are reported together.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};

/// The text of one input (a rule file, or a pattern given on the command line), shared by
/// every diagnostic that points into it.
#[derive(Clone, Debug)]
pub struct Source {
    pub name: Arc<str>,
    pub text: Arc<String>,
}

impl Source {
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: Arc::new(text.into()),
        }
    }

    fn named(&self) -> NamedSource<Arc<String>> {
        NamedSource::new(self.name.as_ref(), self.text.clone())
    }

    /// The source to show for `span`: itself, or, when the span's line is too long to show,
    /// that line's window around the span and its neighbours cut short (the other lines left
    /// blank, so that line numbers stay right), with the span moved into it.
    fn shown(&self, span: SourceSpan) -> (NamedSource<Arc<String>>, SourceSpan) {
        let text = self.text.as_str();
        let at = span.offset().min(text.len());
        let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        if end - start <= SHOWN_LINE {
            return (self.named(), span);
        }
        let cut = |line: &str| -> String {
            match line.len() > SHOWN_LINE {
                true => format!("{}…", &line[..floor_boundary(line, SHOWN_LINE)]),
                false => line.to_string(),
            }
        };
        let newlines = text[..start].bytes().filter(|b| *b == b'\n').count();
        let before = text[..start.saturating_sub(1)]
            .rsplit('\n')
            .next()
            .filter(|_| start > 0);
        let after = text.get(end + 1..).and_then(|t| t.split('\n').next());
        let from = floor_boundary(text, at.saturating_sub(SHOWN_LINE / 3).max(start));
        let to = floor_boundary(text, (at + SHOWN_LINE / 2).min(end));
        let lead = if from > start { "…" } else { "" };
        let tail = if to < end { "…" } else { "" };
        let mut excerpt = "\n".repeat(newlines.saturating_sub(1));
        if let Some(before) = before {
            excerpt.push_str(&cut(before));
            excerpt.push('\n');
        }
        let offset = excerpt.len() + lead.len() + (at - from);
        excerpt.push_str(&format!("{lead}{}{tail}", &text[from..to]));
        if let Some(after) = after {
            excerpt.push('\n');
            excerpt.push_str(&cut(after));
        }
        let len = span.len().min(to.saturating_sub(at));
        let named = NamedSource::new(self.name.as_ref(), Arc::new(excerpt));
        (named, SourceSpan::from(offset..offset + len))
    }
}

/// The longest source line a diagnostic shows whole.
const SHOWN_LINE: usize = 400;
/// The longest run of non-blank characters a message keeps whole: a longer value (a name, a
/// string pasted by mistake) is cut in its middle, so that no diagnostic prints more than a
/// line's worth of one value.
const SHOWN_WORD: usize = 200;

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `message` with every run of non-blank characters longer than [`SHOWN_WORD`] cut in its
/// middle (`first…last`).
pub fn shorten(message: &str) -> String {
    if message.len() <= SHOWN_WORD {
        return message.to_string();
    }
    let mut out = String::with_capacity(message.len().min(4 * SHOWN_WORD));
    let mut rest = message;
    while !rest.is_empty() {
        let blank = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(blank);
        if word.chars().count() > SHOWN_WORD {
            let head: String = word.chars().take(SHOWN_WORD * 2 / 3).collect();
            let tail: Vec<char> = word.chars().rev().take(SHOWN_WORD / 6).collect();
            let cut = word.chars().count() - head.chars().count() - tail.len();
            out.push_str(&head);
            out.push_str(&format!("…({cut} more)…"));
            out.extend(tail.into_iter().rev());
        } else {
            out.push_str(word);
        }
        let space = after
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(after.len());
        out.push_str(&after[..space]);
        rest = &after[space..];
    }
    out
}

/// Where an error points: the source, the span, and the label under it.
type Place = (NamedSource<Arc<String>>, SourceSpan, String);

/// One error in user input.
#[derive(Clone, Debug)]
pub struct InputError {
    code: &'static str,
    message: String,
    at: Option<Box<Place>>,
    help: Option<String>,
}

impl InputError {
    /// An error at a place in a source, with a label under it.
    pub fn at(
        code: &'static str,
        source: &Source,
        span: SourceSpan,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        let (shown, span) = source.shown(span);
        Self {
            code,
            message: shorten(&message.into()),
            at: Some(Box::new((shown, span, shorten(&label.into())))),
            help: None,
        }
    }

    /// An error about the workspace as a whole, with no place to point at.
    pub fn global(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: shorten(&message.into()),
            at: None,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(shorten(&help.into()));
        self
    }

    pub fn code_str(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    fn same_as(&self, other: &InputError) -> bool {
        let place = |e: &InputError| e.at.as_ref().map(|at| (at.0.name().to_string(), at.1));
        self.code == other.code && self.message == other.message && place(self) == place(other)
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InputError {}

impl Diagnostic for InputError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("refine::{}", self.code)))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.at.as_ref().map(|at| &at.0 as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.at.as_ref().map(|at| {
            let (_, span, label) = at.as_ref();
            Box::new(std::iter::once(LabeledSpan::new_primary_with_span(
                Some(label.clone()),
                *span,
            ))) as Box<dyn Iterator<Item = LabeledSpan>>
        })
    }
}

/// All the errors found in one pass over user input.
#[derive(Clone, Debug, Default)]
pub struct Errors(pub Vec<InputError>);

impl Errors {
    pub fn push(&mut self, error: InputError) {
        self.0.push(error);
    }

    /// Adds `error` unless the same error (code, message and place) is already there.
    pub fn push_unique(&mut self, error: InputError) {
        if !self.0.iter().any(|e| e.same_as(&error)) {
            self.0.push(error);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn extend(&mut self, other: Errors) {
        self.0.extend(other.0);
    }

    /// `Ok(value)` when nothing was reported, else the errors.
    pub fn into_result<T>(self, value: T) -> Result<T, Errors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => write!(f, "Found {} errors in the input", many.len()),
        }
    }
}

impl std::error::Error for Errors {}

impl Diagnostic for Errors {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.0.as_slice() {
            [one] => one.code(),
            _ => None,
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.0.as_slice() {
            [one] => one.help(),
            _ => None,
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self.0.as_slice() {
            [one] => one.source_code(),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self.0.as_slice() {
            [one] => one.labels(),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self.0.as_slice() {
            [_] => None,
            many => Some(Box::new(many.iter().map(|e| e as &dyn Diagnostic))),
        }
    }
}

/// The closest of `candidates` to `word`, if any is close enough to suggest.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
