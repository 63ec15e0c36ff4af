//! The fast reader against the kdl crate: whatever it accepts must parse to the same names,
//! values and spans, and whatever the kdl crate rejects it must give up on.

use std::path::{Path, PathBuf};

use kdl::{KdlDocument, KdlNode};
use miette::SourceSpan;

use super::parse;

fn range(span: SourceSpan) -> std::ops::Range<usize> {
    span.offset()..span.offset() + span.len()
}

/// The first difference between the two documents, by path; `None` when they agree.
fn difference(fast: &KdlDocument, full: &KdlDocument, at: &str) -> Option<String> {
    if range(fast.span()) != range(full.span()) {
        return Some(format!(
            "{at}: document span {:?} vs {:?}",
            range(fast.span()),
            range(full.span())
        ));
    }
    if fast.nodes().len() != full.nodes().len() {
        return Some(format!(
            "{at}: {} nodes vs {}",
            fast.nodes().len(),
            full.nodes().len()
        ));
    }
    fast.nodes()
        .iter()
        .zip(full.nodes())
        .enumerate()
        .find_map(|(i, (a, b))| node_difference(a, b, &format!("{at}/{i}")))
}

fn node_difference(a: &KdlNode, b: &KdlNode, at: &str) -> Option<String> {
    let (an, bn) = (a.name(), b.name());
    if an.value() != bn.value() || range(an.span()) != range(bn.span()) {
        return Some(format!(
            "{at}: name {:?}@{:?} vs {:?}@{:?}",
            an.value(),
            range(an.span()),
            bn.value(),
            range(bn.span())
        ));
    }
    if range(a.span()) != range(b.span()) || b.ty().is_some() {
        return Some(format!(
            "{at}: node span {:?} vs {:?} (type {:?})",
            range(a.span()),
            range(b.span()),
            b.ty()
        ));
    }
    if a.entries().len() != b.entries().len() {
        return Some(format!(
            "{at}: {} entries vs {}",
            a.entries().len(),
            b.entries().len()
        ));
    }
    for (i, (ea, eb)) in a.entries().iter().zip(b.entries()).enumerate() {
        let key = |e: &kdl::KdlEntry| e.name().map(|k| (k.value().to_string(), range(k.span())));
        if key(ea) != key(eb)
            || ea.value() != eb.value()
            || range(ea.span()) != range(eb.span())
            || eb.ty().is_some()
        {
            return Some(format!(
                "{at}: entry {i}: {:?}={:?}@{:?} vs {:?}={:?}@{:?} (type {:?})",
                key(ea),
                ea.value(),
                range(ea.span()),
                key(eb),
                eb.value(),
                range(eb.span()),
                eb.ty()
            ));
        }
    }
    match (a.children(), b.children()) {
        (None, None) => None,
        (Some(ca), Some(cb)) => difference(ca, cb, at),
        (ca, cb) => Some(format!(
            "{at}: children {} vs {}",
            ca.is_some(),
            cb.is_some()
        )),
    }
}

/// Checks `text` both ways; says whether the fast reader took it.
fn check(text: &str, what: &str) -> bool {
    let full = KdlDocument::parse_v2(text);
    match (parse(text), full) {
        (Some(fast), Ok(full)) => {
            if let Some(diff) = difference(&fast, &full, "") {
                panic!("{what}: the readers disagree at {diff}\n--- text ---\n{text}");
            }
            true
        }
        (Some(_), Err(e)) => {
            panic!("{what}: the fast reader took text the kdl crate rejects ({e:?})\n{text}")
        }
        (None, _) => false,
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every KDL file the repository's workspace holds (what users write, and `refine lock`).
fn workspace_files() -> Vec<(String, String)> {
    let root = repo_root();
    let mut out = vec![];
    let mut dirs = vec![
        root.join("rules"),
        root.join("catalog"),
        root.join("requests"),
    ];
    let mut files = vec![root.join("workspace.kdl")];
    while let Some(dir) = dirs.pop() {
        for entry in fs_err::read_dir(&dir).expect("the folder is listed") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "kdl" || e == "lock") {
                files.push(path);
            }
        }
    }
    files.sort();
    for path in files {
        let text = fs_err::read_to_string(&path).expect("a KDL file is UTF-8");
        out.push((path.display().to_string(), text));
    }
    assert!(out.len() >= 8, "found only {} KDL files", out.len());
    out
}

/// The ```kdl blocks of the documentation: more shapes, some of them deliberately wrong.
fn doc_blocks() -> Vec<(String, String)> {
    let mut out = vec![];
    for entry in fs_err::read_dir(repo_root().join("docs")).expect("docs/ is listed") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = fs_err::read_to_string(&path).expect("a doc is UTF-8");
        let mut block: Option<String> = None;
        for line in text.lines() {
            match (&mut block, line.trim_start()) {
                (None, l) if l.starts_with("```kdl") => block = Some(String::new()),
                (Some(b), l) if l.starts_with("```") => {
                    out.push((path.display().to_string(), std::mem::take(b)));
                    block = None;
                }
                (Some(b), _) => {
                    b.push_str(line);
                    b.push('\n');
                }
                (None, _) => {}
            }
        }
    }
    assert!(
        out.len() >= 10,
        "found only {} kdl blocks in docs/",
        out.len()
    );
    out
}

#[test]
fn every_workspace_file_is_read_by_the_fast_reader_as_the_kdl_crate_reads_it() {
    for (path, text) in workspace_files() {
        assert!(
            check(&text, &path),
            "the fast reader gave up on {path}, so loading it takes the slow path"
        );
    }
}

#[test]
fn the_documentations_kdl_blocks_read_alike() {
    let blocks = doc_blocks();
    let taken = blocks.iter().filter(|(p, t)| check(t, p)).count();
    assert!(
        taken * 2 > blocks.len(),
        "the fast reader took only {taken} of {}",
        blocks.len()
    );
}

#[test]
fn spans_match_on_the_shapes_rule_files_use() {
    let cases = [
        "",
        "// only a comment\n",
        "a",
        "a\n",
        "a   \n",
        "a 1 /* c */ 2 /* d */  // e\nb",
        "wheel \"numpy\" version=\"1.2\" {\n    source sdist=\"x.tar.gz\"   sha256=\"ab\" // t\n    deps \":a\" \":b\"; flag #true\n    n 42 -7 +3 1_000 bare\n    empty {}\n}\n",
        "a{}",
        "a {b 1}",
        "a { b 1; c 2; }  ",
        "a {\n\n  // x\n  b\n\n}\n\n\nc\n",
        "\"quoted name\" \"k\"=\"v\" k2=#null k3=#false w=x_y",
        "a \"esc \\\" \\\\ \\n \\t \\s \\u{41}\\u{1F600} é 日本\"",
        "a /* nested /* block */ comment */ 1",
        "a; b; c",
        "a\t1\t{\tb\t}\t",
        "a {}\n/* trailing */\n",
        "a:b c:d e.f=g",
    ];
    for case in cases {
        assert!(check(case, case), "the fast reader gave up on {case:?}");
    }
}

#[test]
fn the_rest_of_kdl_v2_is_left_to_the_kdl_crate() {
    let cases = [
        "a /-b",
        "/-a\nb",
        "a #\"raw\"#",
        "a 1.5",
        "a 0x1f",
        "a (t)1",
        "a \"\"\"\n  x\n  \"\"\"",
        "a \\\n b",
        "a \"x\\\n  y\"",
        "a -x",
        "a #inf",
        "a\r\nb",
        "\u{FEFF}a",
        "a k = v",
    ];
    for case in cases {
        assert!(KdlDocument::parse_v2(case).is_ok(), "{case:?} is KDL v2");
        assert!(parse(case).is_none(), "the fast reader took {case:?}");
    }
}

/// A small deterministic generator (xorshift), so that a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Where a character starts in `text`, picked at random (or its end).
fn boundary(rng: &mut Rng, text: &str) -> usize {
    let mut at = rng.below(text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

const TOKENS: &[&str] = &[
    "\"",
    "\\",
    "{",
    "}",
    ";",
    "=",
    "#true",
    "#false",
    "#null",
    "#inf",
    "#",
    "/*",
    "*/",
    "//",
    "\n",
    " ",
    "\t",
    "/-",
    "-",
    "+1",
    "1_0",
    "0x1f",
    "1.5",
    "1e3",
    "é",
    "\u{2028}",
    "\u{85}",
    "\r",
    "(t)",
    "\"\"\"",
    "\\n",
    "\\u{41}",
    "\\u{110000}",
    "\\u{1234567}",
    "\\s",
    "\\q",
    "true",
    "null",
    "a=",
    " k=\"v\"",
    "\u{FEFF}",
    "\u{200E}",
    "\u{7f}",
    "\u{1}",
    "\u{b}",
    "\u{c}",
    "'",
    "[",
    ".5",
    "-x",
    "_",
    " 99999999999999999999999999999999999999999",
    " 170141183460469231731687303715884105728",
    "x",
    " a",
    "{}",
    " {\n b\n}",
];

#[test]
fn mutations_of_real_files_read_alike_or_go_to_the_kdl_crate() {
    let mut sources = workspace_files();
    sources.extend(doc_blocks());
    let (mut taken, mut left) = (0, 0);
    for (n, (path, text)) in sources.iter().enumerate() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1));
        let lines: Vec<&str> = text.lines().collect();
        // Top-level nodes start at lines without indentation: a window of whole nodes keeps
        // each parse small and most windows KDL before they are mutated.
        let mut starts: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with(|c: char| !c.is_whitespace() && c != '}'))
            .collect();
        starts.push(lines.len());
        for round in 0..60 {
            let first = rng.below(starts.len() - 1);
            let last = (first + 1 + rng.below(2)).min(starts.len() - 1);
            let mut mutant = lines[starts[first]..starts[last]].join("\n");
            for _ in 0..rng.below(3) {
                match rng.below(3) {
                    0 => {
                        let at = boundary(&mut rng, &mutant);
                        mutant.insert_str(at, TOKENS[rng.below(TOKENS.len())]);
                    }
                    1 => {
                        let a = boundary(&mut rng, &mutant);
                        let mut b = (a + 1 + rng.below(5)).min(mutant.len());
                        while !mutant.is_char_boundary(b) {
                            b += 1;
                        }
                        mutant.replace_range(a..b, "");
                    }
                    _ => {
                        let a = boundary(&mut rng, &mutant);
                        let b = boundary(&mut rng, &mutant);
                        let (a, b) = (a.min(b), a.max(b));
                        let piece = mutant[a..b].to_string();
                        mutant.insert_str(b, &piece);
                    }
                }
            }
            if check(&mutant, &format!("{path}, mutant {round}")) {
                taken += 1;
            } else {
                left += 1;
            }
        }
    }
    // Both paths must have been exercised for the comparison to mean something.
    eprintln!("taken {taken}, left to the kdl crate {left}");
    assert!(
        taken > 500 && left > 500,
        "taken {taken}, left to the kdl crate {left}"
    );
}
