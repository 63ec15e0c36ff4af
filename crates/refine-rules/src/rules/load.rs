//! Finding a workspace and loading it: every rule file is parsed (in parallel), read against
//! its schema, and checked; all errors of all files come back together.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kdl::KdlDocument;
use miette::SourceSpan;
use rayon::prelude::*;

use crate::diag::{Errors, InputError, Source};
use crate::label::Label;

use super::catalog::read_catalog;
use super::fast_kdl;
use super::kinds::{PendingRepair, Read, read_rule};
use super::model::*;
use super::reader::FileReader;
use super::workspace_file::read_workspace;

/// Rule files nest blocks only a few levels deep; a limit keeps hostile input from
/// exhausting the parser's stack.
const MAX_NESTING: usize = 64;

/// The longest line a rule file may hold: names, versions, digests and URLs are far shorter,
/// and a line this long is a mistake (or an attack) that the KDL parser and the diagnostics
/// would otherwise spend seconds on. Long text belongs in a file the rule names.
pub const MAX_LINE: usize = 4096;

/// The largest rule file refine reads (a 10,000-rule file is about 1 MiB).
pub const MAX_FILE: u64 = 64 << 20;

/// A loaded, checked workspace.
#[derive(Debug)]
pub struct Workspace {
    pub root: PathBuf,
    pub files: Vec<Source>,
    pub config: WorkspaceConfig,
    pub catalog: Catalog,
    pub targets: Vec<Target>,
    /// The build requests of `requests/*.kdl`, with their locks once attached.
    pub requests: Vec<LoadedRequest>,
}

/// Which lock files a load reads.
#[derive(Clone, Copy)]
enum Locks<'a> {
    /// All of them: the bases' and the build requests'.
    All,
    /// None: every base unlocked, no request's targets.
    None,
    /// The bases', and request `name`'s targets as `lock` pins them, with their probes.
    Probing {
        name: &'a str,
        lock: &'a super::request::RequestLock,
    },
}

/// A build request and its lock (`None` when the workspace was loaded without locks).
#[derive(Clone, Debug)]
pub struct LoadedRequest {
    pub request: super::request::Request,
    pub lock: Option<super::request::RequestLock>,
}

/// Walks up from `start` to the nearest folder holding `workspace.kdl`.
pub fn find_root(start: &Path) -> Result<PathBuf, InputError> {
    let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    let mut dir = start.as_path();
    loop {
        if dir.join("workspace.kdl").is_file() {
            return Ok(dir.to_path_buf());
        }
        match dir.parent() {
            Some(parent) => dir = parent,
            None => {
                return Err(InputError::global(
                    "no-workspace",
                    format!("No `workspace.kdl` in `{}` or any folder above it", start.display()),
                )
                .with_help("Run refine inside a workspace, pass `-C DIR`, or create `workspace.kdl` with `workspace \"NAME\"`"));
            }
        }
    }
}

pub(super) fn read_file(root: &Path, rel: &str) -> Result<Source, InputError> {
    let path = root.join(rel);
    if let Ok(meta) = std::fs::metadata(&path)
        && meta.len() > MAX_FILE
    {
        return Err(InputError::global(
            "file-too-large",
            format!(
                "`{rel}` is {} MiB; refine reads rule files of at most {} MiB",
                meta.len() >> 20,
                MAX_FILE >> 20
            ),
        )
        .with_help("Split it into several files under `rules/`"));
    }
    let text = fs_err::read_to_string(&path).map_err(|e| {
        InputError::global("unreadable-file", format!("Cannot read `{rel}`: {e}"))
            .with_help("Check the file's permissions and that it is UTF-8 text")
    })?;
    Ok(Source::new(rel, text))
}

/// Rule files under `rules/` (recursively) or catalog files, as paths relative to the root,
/// sorted so that loading is deterministic.
pub(super) fn list_kdl(
    root: &Path,
    folder: &str,
    recursive: bool,
) -> Result<Vec<String>, InputError> {
    let mut out = Vec::new();
    let mut stack = vec![root.join(folder)];
    while let Some(dir) = stack.pop() {
        let entries = match fs_err::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(InputError::global(
                    "unreadable-file",
                    format!("Cannot list `{}`: {e}", dir.display()),
                ));
            }
        };
        for entry in entries {
            let entry = entry.map_err(|e| {
                InputError::global(
                    "unreadable-file",
                    format!("Cannot list `{}`: {e}", dir.display()),
                )
            })?;
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| {
                InputError::global(
                    "unreadable-file",
                    format!("Cannot stat `{}`: {e}", path.display()),
                )
            })?;
            if ft.is_dir() && recursive {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "kdl") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every KDL file refine reads in this workspace (for `refine fmt`).
pub fn workspace_files(root: &Path) -> Result<Vec<String>, InputError> {
    let mut files = vec!["workspace.kdl".to_string()];
    files.extend(list_kdl(root, "rules", true)?);
    files.extend(list_kdl(root, "catalog", false)?);
    files.extend(list_kdl(root, "requests", false)?);
    Ok(files)
}

/// Refuses a line longer than [`MAX_LINE`] before anything parses it.
fn check_lines(source: &Source) -> Result<(), InputError> {
    let mut start = 0;
    for (number, line) in source.text.split('\n').enumerate() {
        if line.len() > MAX_LINE {
            return Err(InputError::at(
                "line-too-long",
                source,
                SourceSpan::from(start + MAX_LINE..start + MAX_LINE + 1),
                format!(
                    "Line {} is {} bytes long; rule files hold lines of at most {MAX_LINE} bytes",
                    number + 1,
                    line.len()
                ),
                "too long from here",
            )
            .with_help(
                "Names, versions, digests and URLs are far shorter: check for a missing quote or newline, and put long text in a file that the rule names",
            ));
        }
        start += line.len() + 1;
    }
    Ok(())
}

/// Finds where `{` blocks or `/*` comments nest deeper than [`MAX_NESTING`], skipping strings
/// and comments the way the KDL v2 lexer does.
fn check_nesting(source: &Source) -> Result<(), InputError> {
    let b = source.text.as_bytes();
    let (mut i, mut depth, mut comment) = (0usize, 0usize, 0usize);
    let too_deep = |at: usize| {
        InputError::at(
            "too-deep",
            source,
            SourceSpan::from(at..at + 1),
            format!("Blocks nest more than {MAX_NESTING} levels deep"),
            "too deep",
        )
        .with_help("Rule files need only a few levels of `{ }`; flatten this file")
    };
    while i < b.len() {
        let next = b.get(i + 1).copied();
        if comment > 0 {
            if b[i] == b'/' && next == Some(b'*') {
                comment += 1;
                if comment > MAX_NESTING {
                    return Err(too_deep(i));
                }
                i += 2;
            } else if b[i] == b'*' && next == Some(b'/') {
                comment -= 1;
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        match b[i] {
            b'/' if next == Some(b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if next == Some(b'*') => {
                comment = 1;
                i += 2;
            }
            b'"' => {
                let triple = b[i..].starts_with(b"\"\"\"");
                i += if triple { 3 } else { 1 };
                while i < b.len() {
                    if b[i] == b'\\' {
                        i += 2;
                    } else if triple && b[i..].starts_with(b"\"\"\"") {
                        i += 3;
                        break;
                    } else if !triple && b[i] == b'"' {
                        i += 1;
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
            b'#' if matches!(next, Some(b'#' | b'"')) => {
                let hashes = b[i..].iter().take_while(|c| **c == b'#').count();
                i += hashes;
                if b.get(i) == Some(&b'"') {
                    let mut close = vec![b'"'];
                    close.extend(std::iter::repeat_n(b'#', hashes));
                    i += 1;
                    while i < b.len() && !b[i..].starts_with(&close) {
                        i += 1;
                    }
                    i += close.len();
                }
            }
            b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(too_deep(i));
                }
                i += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Adds `source` to `files` and parses it; a parse error goes to `errors`.
pub(super) fn push_parsed(
    files: &mut Vec<Source>,
    source: Source,
    errors: &mut Errors,
) -> Option<(FileId, KdlDocument)> {
    let id = files.len();
    files.push(source);
    match parse_kdl(&files[id]) {
        Ok(doc) => Some((id, doc)),
        Err(e) => {
            errors.extend(e);
            None
        }
    }
}

/// Parses one KDL v2 document for reading, turning parse errors into diagnostics that name
/// the file. The document carries names, values and spans, not formatting: see
/// [`parse_kdl_formatted`].
pub fn parse_kdl(source: &Source) -> Result<KdlDocument, Errors> {
    check_lines(source).map_err(|e| Errors(vec![e]))?;
    check_nesting(source).map_err(|e| Errors(vec![e]))?;
    match fast_kdl::parse(&source.text) {
        Some(doc) => Ok(doc),
        None => parse_with_kdl(source),
    }
}

/// Parses one KDL v2 document keeping its comments and formatting, for `refine fmt`.
pub fn parse_kdl_formatted(source: &Source) -> Result<KdlDocument, Errors> {
    check_lines(source).map_err(|e| Errors(vec![e]))?;
    check_nesting(source).map_err(|e| Errors(vec![e]))?;
    parse_with_kdl(source)
}

/// The kdl crate's parse: the whole language, and its diagnostics for what is not KDL.
fn parse_with_kdl(source: &Source) -> Result<KdlDocument, Errors> {
    KdlDocument::parse_v2(&source.text).map_err(|err| {
        let mut errors = Errors::default();
        for d in err.diagnostics {
            let message = d.message.clone().unwrap_or_else(|| "Invalid KDL".into());
            let message = match message.strip_suffix('.') {
                Some(m) => m.to_string(),
                None => message,
            };
            let label = d.label.clone().unwrap_or_else(|| "here".into());
            let help = d
                .help
                .clone()
                .unwrap_or_else(|| "See docs/rules.md for the KDL v2 syntax refine reads".into());
            errors
                .push(InputError::at("kdl-syntax", source, d.span, message, label).with_help(help));
        }
        if errors.is_empty() {
            errors.push(InputError::at(
                "kdl-syntax",
                source,
                SourceSpan::from(0..0),
                "Invalid KDL",
                "here",
            ));
        }
        errors
    })
}

fn package_of(rel: &str) -> Option<&str> {
    rel.strip_prefix("rules/")?.strip_suffix(".kdl")
}

struct FileResult {
    targets: Vec<Target>,
    repairs: Vec<PendingRepair>,
    errors: Errors,
    /// Set when the file was read now (not from the cache): its cache key.
    fresh: Option<String>,
    file: FileId,
}

impl Workspace {
    /// Loads the workspace at `root`: `workspace.kdl`, `rules/**/*.kdl` and `catalog/*.kdl`,
    /// and the lock files beside the rule files (`rules/**/*.lock`), each attached to its
    /// base; a stale or malformed lock is an error.
    pub fn load(root: &Path) -> Result<Workspace, Errors> {
        Self::load_with(root, Locks::All)
    }

    /// Loads the workspace without reading its lock files: every bootstrapped base is
    /// unlocked. For `refine lock`, which (re)writes them.
    pub fn load_without_locks(root: &Path) -> Result<Workspace, Errors> {
        Self::load_with(root, Locks::None)
    }

    /// Loads the workspace with its bases' locks and, of the build requests, only request
    /// `name`, as `lock` pins it (not its lock file), with a probe beside each of its wheels:
    /// for `refine request lock`, which asks the probes what the builds need.
    pub fn load_probing(
        root: &Path,
        name: &str,
        lock: &super::request::RequestLock,
    ) -> Result<Workspace, Errors> {
        Self::load_with(root, Locks::Probing { name, lock })
    }

    fn load_with(root: &Path, locks: Locks<'_>) -> Result<Workspace, Errors> {
        let mut errors = Errors::default();
        let mut files = Vec::new();

        let ws_source = read_file(root, "workspace.kdl").map_err(|e| Errors(vec![e]))?;
        files.push(ws_source);
        let config = match parse_kdl(&files[0]) {
            Ok(doc) => {
                let mut r = FileReader {
                    file: 0,
                    source: &files[0],
                    package: None,
                    errors: Errors::default(),
                };
                let config = read_workspace(&mut r, &doc);
                errors.extend(r.errors);
                config
            }
            Err(e) => {
                errors.extend(e);
                WorkspaceConfig::default()
            }
        };

        let rule_paths = list_kdl(root, "rules", true).map_err(|e| Errors(vec![e]))?;
        let catalog_paths = list_kdl(root, "catalog", false).map_err(|e| Errors(vec![e]))?;
        let read: Vec<Result<Source, InputError>> = rule_paths
            .par_iter()
            .chain(catalog_paths.par_iter())
            .map(|rel| read_file(root, rel))
            .collect();
        for r in read {
            match r {
                Ok(s) => files.push(s),
                Err(e) => errors.push(e),
            }
        }

        let results: Vec<FileResult> = files
            .par_iter()
            .enumerate()
            .skip(1)
            .filter(|(_, s)| s.name.starts_with("rules/"))
            .map(|(id, source)| load_rule_file(id, source, &config, &files[0].text))
            .collect();

        let mut catalog = Catalog::default();
        for (id, source) in files
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name.starts_with("catalog/"))
        {
            match parse_kdl(source) {
                Ok(doc) => {
                    let mut r = FileReader {
                        file: id,
                        source,
                        package: None,
                        errors: Errors::default(),
                    };
                    read_catalog(&mut r, &doc, &mut catalog);
                    errors.extend(r.errors);
                }
                Err(e) => errors.extend(e),
            }
        }

        let mut targets = Vec::new();
        let mut repairs = Vec::new();
        let mut fresh: Vec<(String, FileId, Vec<Target>, Vec<PendingRepair>)> = Vec::new();
        for r in results {
            if let Some(key) = &r.fresh
                && r.errors.is_empty()
            {
                fresh.push((key.clone(), r.file, r.targets.clone(), r.repairs.clone()));
            }
            targets.extend(r.targets);
            repairs.extend(r.repairs);
            errors.extend(r.errors);
        }
        super::repair::expand(&mut targets, repairs, &files, &mut errors);
        let mut requests = super::request::read_requests(root, &mut files, &config, &mut errors)?;
        match locks {
            Locks::All if errors.is_empty() => {
                super::request::attach_request_locks(
                    root,
                    &mut files,
                    &config,
                    &mut requests,
                    &mut errors,
                );
                for r in &requests {
                    if let Some(lock) = &r.lock {
                        targets.extend(super::request::request_targets(
                            &r.request, lock, &config, false,
                        ));
                    }
                }
            }
            Locks::Probing { name, lock } if errors.is_empty() => {
                requests.retain(|r| r.request.name == name);
                for r in &mut requests {
                    targets.extend(super::request::request_targets(
                        &r.request, lock, &config, true,
                    ));
                    r.lock = Some(lock.clone());
                }
            }
            _ => {}
        }
        check_duplicates(&targets, &files, &mut errors);
        super::recipe::check_recipes(root, &targets, &files, &mut errors);
        if !matches!(locks, Locks::None) && errors.is_empty() {
            super::lock::attach(root, &mut files, &mut targets, &mut errors);
        }
        // Only a load without errors fills the cache: bad input writes nothing.
        if errors.is_empty() {
            fresh
                .into_par_iter()
                .for_each(|(key, file, targets, repairs)| {
                    super::cache::save(&key, file, super::cache::Entry { targets, repairs });
                });
        }

        errors.into_result(Workspace {
            root: root.to_path_buf(),
            files,
            config,
            catalog,
            targets,
            requests,
        })
    }

    /// Where a location is, as `file:line:column`, for messages outside miette.
    pub fn describe(&self, at: Loc) -> String {
        let source = &self.files[at.file];
        let offset = at.span.offset().min(source.text.len());
        let before = &source.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{}:{line}:{column}", source.name)
    }
}

fn load_rule_file(
    id: FileId,
    source: &Source,
    config: &WorkspaceConfig,
    ws_text: &str,
) -> FileResult {
    let key = super::cache::key(ws_text, &source.name, &source.text);
    if let Some(entry) = super::cache::load(&key, id) {
        return FileResult {
            targets: entry.targets,
            repairs: entry.repairs,
            errors: Errors::default(),
            fresh: None,
            file: id,
        };
    }
    let mut out = FileResult {
        targets: Vec::new(),
        repairs: Vec::new(),
        errors: Errors::default(),
        fresh: Some(key),
        file: id,
    };
    let Some(package) = package_of(&source.name) else {
        return out;
    };
    if !package.split('/').all(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    }) {
        out.errors.push(
            InputError::global(
                "bad-package",
                format!(
                    "`{}` cannot be a package: its path has characters labels cannot hold",
                    source.name
                ),
            )
            .with_help("Rename the file using letters, digits, `_`, `-` and `.`"),
        );
        return out;
    }
    let doc = match parse_kdl(source) {
        Ok(doc) => doc,
        Err(e) => {
            out.errors = e;
            return out;
        }
    };
    let mut r = FileReader {
        file: id,
        source,
        package: Some(package),
        errors: Errors::default(),
    };
    for node in doc.nodes() {
        match read_rule(&mut r, node, config) {
            Some(Read::Targets(t)) => out.targets.extend(t),
            Some(Read::Repair(p)) => out.repairs.push(*p),
            None => {}
        }
    }
    out.errors = r.errors;
    out
}

fn check_duplicates(targets: &[Target], files: &[Source], errors: &mut Errors) {
    let mut seen: HashMap<&Label, Loc> = HashMap::with_capacity(targets.len());
    for t in targets {
        if let Some(first) = seen.get(&t.label) {
            let source = &files[t.at.file];
            let first_line = files[first.file].text[..first.span.offset()]
                .matches('\n')
                .count()
                + 1;
            errors.push(
                InputError::at(
                    "duplicate-target",
                    source,
                    t.at.span,
                    format!("Target `{}` is declared twice", t.label),
                    "declared again here",
                )
                .with_help(format!(
                    "It is first declared at {}:{first_line}; rename one of them",
                    files[first.file].name
                )),
            );
        } else {
            seen.insert(&t.label, t.at);
        }
    }
}
