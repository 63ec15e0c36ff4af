//! A fast reader for the plain subset of KDL v2 that rule files are written in.
//!
//! A cold load spent most of its time in the kdl crate's general parser, which recovers from
//! errors and keeps the formatting of every token. Rule files use a small part of the
//! language: bare or quoted names, quoted strings with the usual escapes, decimal integers,
//! `#true`, `#false` and `#null`, properties written `key=value`, children blocks, and `//`
//! and `/* */` comments. [`parse`] builds the same [`KdlDocument`] for that subset (the same
//! names, values and spans, which is all the rule readers look at) and gives up at the first
//! thing outside it, or anything malformed. Then the kdl crate parses the file instead, and its
//! diagnostics are the ones users see. The documents carry no formatting, so `refine fmt`
//! always parses with the kdl crate.
//!
//! `tests.rs` checks, over every KDL file of the repository and thousands of mutations of
//! them, that whatever this reader accepts the kdl crate parses to the same names, values and
//! spans, and that this reader gives up on whatever the kdl crate rejects.

use kdl::{KdlDocument, KdlEntry, KdlIdentifier, KdlNode, KdlValue};

#[cfg(test)]
mod tests;

/// The document `text` holds, or `None` when `text` steps outside the subset (or is not KDL).
pub fn parse(text: &str) -> Option<KdlDocument> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let doc = reader.nodes(false)?;
    (reader.pos == reader.bytes.len()).then_some(doc)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

/// What a value or name may be followed by; anything else makes the kdl crate report it.
fn ends_token(bytes: &[u8], at: usize) -> bool {
    match bytes.get(at) {
        None | Some(b' ' | b'\t' | b'\n' | b';' | b'{' | b'}' | b'=') => true,
        Some(b'/') => matches!(bytes.get(at + 1), Some(b'/' | b'*')),
        _ => false,
    }
}

/// A byte that may appear in a bare identifier of the subset (ASCII only: other scripts, and
/// the Unicode spaces and newlines among them, are left to the kdl crate).
fn identifier_byte(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'\\' | b'/' | b'(' | b')' | b'{' | b'}' | b'[' | b']' | b';' | b'"' | b'#' | b'='
        )
}

/// The first byte of a bare identifier of the subset: a digit, sign or dot first makes a
/// number or a rarer identifier form, left to the kdl crate.
fn starts_bare(b: u8) -> bool {
    identifier_byte(b) && !b.is_ascii_digit() && !matches!(b, b'+' | b'-' | b'.')
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    /// `node-space*` of the subset: spaces, tabs and block comments.
    fn skip_spaces(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment()?,
                _ => return Some(()),
            }
        }
    }

    /// `line-space*`: spaces, newlines and comments between nodes.
    fn skip_line_spaces(&mut self) -> Option<()> {
        loop {
            self.skip_spaces()?;
            match self.peek() {
                Some(b'\n') => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'/') => self.line_comment()?,
                _ => return Some(()),
            }
        }
    }

    /// A `/* */` comment, which may nest; at its `/*`.
    fn block_comment(&mut self) -> Option<()> {
        self.pos += 2;
        let mut depth = 1;
        while depth > 0 {
            match (self.peek()?, self.peek_at(1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    self.pos += 2;
                }
                (b'*', Some(b'/')) => {
                    depth -= 1;
                    self.pos += 2;
                }
                _ => self.pos += 1,
            }
        }
        Some(())
    }

    /// A `//` comment and the newline that ends it; at its `//`.
    fn line_comment(&mut self) -> Option<()> {
        let rest = &self.bytes[self.pos..];
        let len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let body = &self.text[self.pos..self.pos + len];
        // KDL ends a comment at any of its newlines; the subset knows `\n` only.
        if body.chars().any(|c| {
            matches!(
                c,
                '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
            )
        }) {
            return None;
        }
        self.pos += (len + 1).min(rest.len());
        Some(())
    }

    /// `nodes`: up to the end of the text, or up to (not past) the `}` of a children block.
    fn nodes(&mut self, in_children: bool) -> Option<KdlDocument> {
        self.skip_line_spaces()?;
        let start = self.pos;
        let mut end = start;
        let mut doc = KdlDocument::new();
        loop {
            match self.peek() {
                None if in_children => return None,
                None => break,
                Some(b'}') if in_children => break,
                _ => {}
            }
            let node = self.node()?;
            end = self.pos;
            doc.nodes_mut().push(node);
            match self.peek() {
                Some(b';' | b'\n') => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'/') => self.line_comment()?,
                None => {}
                Some(b'}') if in_children => {}
                _ => return None,
            }
            self.skip_line_spaces()?;
        }
        doc.set_span(start..end);
        Some(doc)
    }

    /// One node, up to its terminator; its span takes in the spaces before the terminator.
    fn node(&mut self) -> Option<KdlNode> {
        let start = self.pos;
        let mut node = KdlNode::new(self.name()?);
        loop {
            let before = self.pos;
            self.skip_spaces()?;
            let spaced = self.pos > before;
            match self.peek() {
                None | Some(b'\n' | b';' | b'}') => break,
                Some(b'/') if self.peek_at(1) == Some(b'/') => break,
                Some(b'{') => {
                    self.pos += 1;
                    let children = self.nodes(true)?;
                    self.pos += 1;
                    node.set_children(children);
                    self.skip_spaces()?;
                    break;
                }
                _ if !spaced => return None,
                _ => {
                    let entry = self.entry()?;
                    node.entries_mut().push(entry);
                }
            }
        }
        node.set_span(start..self.pos);
        Some(node)
    }

    /// A node's name: a bare identifier or a quoted string.
    fn name(&mut self) -> Option<KdlIdentifier> {
        let start = self.pos;
        let value = match self.peek()? {
            b'"' => self.quoted()?,
            _ => self.bare()?,
        };
        if !ends_token(self.bytes, self.pos) || self.peek() == Some(b'=') {
            return None;
        }
        let mut name = KdlIdentifier::from(value);
        name.set_span(start..self.pos);
        Some(name)
    }

    /// An argument, or a property `key=value`.
    fn entry(&mut self) -> Option<KdlEntry> {
        let start = self.pos;
        let first = self.peek()?;
        let mut entry = if first == b'"' || starts_bare(first) {
            let text = if first == b'"' {
                self.quoted()?
            } else {
                self.bare()?
            };
            if self.peek() == Some(b'=') {
                let mut key = KdlIdentifier::from(text);
                key.set_span(start..self.pos);
                self.pos += 1;
                KdlEntry::new_prop(key, self.value()?)
            } else {
                KdlEntry::new(KdlValue::String(text))
            }
        } else {
            KdlEntry::new(self.value()?)
        };
        if !ends_token(self.bytes, self.pos) || self.peek() == Some(b'=') {
            return None;
        }
        entry.set_span(start..self.pos);
        Some(entry)
    }

    /// A value: a quoted string, a bare identifier, `#true`, `#false`, `#null`, or a decimal
    /// integer. Floats, other radixes, raw strings and the like are left to the kdl crate.
    fn value(&mut self) -> Option<KdlValue> {
        let value = match self.peek()? {
            b'"' => KdlValue::String(self.quoted()?),
            b'#' => {
                let rest = &self.bytes[self.pos + 1..];
                let (value, len) = if rest.starts_with(b"true") {
                    (KdlValue::Bool(true), 4)
                } else if rest.starts_with(b"false") {
                    (KdlValue::Bool(false), 5)
                } else if rest.starts_with(b"null") {
                    (KdlValue::Null, 4)
                } else {
                    return None;
                };
                self.pos += 1 + len;
                value
            }
            b'0'..=b'9' | b'+' | b'-' => KdlValue::Integer(self.integer()?),
            _ => KdlValue::String(self.bare()?),
        };
        ends_token(self.bytes, self.pos).then_some(value)
    }

    /// `[+-]?[0-9][0-9_]*` as an `i128`.
    fn integer(&mut self) -> Option<i128> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.pos += 1;
        }
        if !self.peek()?.is_ascii_digit() {
            return None;
        }
        while matches!(self.peek(), Some(b'0'..=b'9' | b'_')) {
            self.pos += 1;
        }
        let digits: String = self.text[start..self.pos]
            .chars()
            .filter(|&c| c != '_')
            .collect();
        digits.parse().ok()
    }

    /// A bare identifier that is not one of KDL's reserved words.
    fn bare(&mut self) -> Option<String> {
        let start = self.pos;
        if !starts_bare(self.peek()?) {
            return None;
        }
        while self.peek().is_some_and(identifier_byte) {
            self.pos += 1;
        }
        let word = &self.text[start..self.pos];
        if matches!(word, "true" | "false" | "null" | "inf" | "nan") {
            return None;
        }
        Some(word.to_string())
    }

    /// A single-line quoted string with the escapes `\\ \" \b \f \n \r \t \s \u{…}`.
    fn quoted(&mut self) -> Option<String> {
        if self.bytes[self.pos..].starts_with(b"\"\"\"") {
            return None;
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.bytes[self.pos..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b))?;
            out.push_str(&self.text[self.pos..self.pos + run]);
            self.pos += run;
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some(out);
                }
                b'\\' => {
                    let (c, len) = self.escape()?;
                    out.push(c);
                    self.pos += len;
                }
                b'\t' => {
                    out.push('\t');
                    self.pos += 1;
                }
                b if b < 0x80 => return None,
                _ => {
                    let c = self.text[self.pos..].chars().next()?;
                    if matches!(c,
                        '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{200E}'..='\u{200F}'
                        | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
                    {
                        return None;
                    }
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    /// The escape at `\\`: the character it stands for and its length.
    fn escape(&self) -> Option<(char, usize)> {
        let c = match self.peek_at(1)? {
            b'\\' => '\\',
            b'"' => '"',
            b'b' => '\u{08}',
            b'f' => '\u{0C}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b's' => ' ',
            b'u' if self.peek_at(2) == Some(b'{') => {
                let hex = &self.bytes[self.pos + 3..];
                let digits = hex
                    .iter()
                    .take(7)
                    .take_while(|b| b.is_ascii_hexdigit())
                    .count();
                if !(1..=6).contains(&digits) || hex.get(digits) != Some(&b'}') {
                    return None;
                }
                let code = u32::from_str_radix(&self.text[self.pos + 3..self.pos + 3 + digits], 16);
                return Some((char::from_u32(code.ok()?)?, 4 + digits));
            }
            _ => return None,
        };
        Some((c, 2))
    }
}
