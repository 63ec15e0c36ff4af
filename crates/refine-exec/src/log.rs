//! An action's log: what refine stores is the whole of it — a header naming the action, its
//! command, its environment and the files staged for it in `/src` (the wheelhouse among
//! them), then everything the action printed. The terminal gets only the output's last lines.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use refine_store::{Digest, LocalStore, StoreError};

/// Lines of the action's output shown with a failure.
pub const TAIL_LINES: usize = 20;

/// A log in the store.
#[derive(Clone, Debug)]
pub struct StoredLog {
    pub digest: Digest,
    /// The blob, to name in a failure.
    pub path: PathBuf,
}

/// What the stored log says before the action's output.
pub struct Header<'a> {
    pub label: &'a str,
    pub key: &'a str,
    pub command: &'a [String],
    pub env: &'a [(String, String)],
    /// The host folder mounted at `/src`, when there is one.
    pub src: Option<&'a Path>,
}

impl Header<'_> {
    pub fn render(&self) -> String {
        let mut text = format!("refine: the action of {} (key {})\n", self.label, self.key);
        let _ = writeln!(text, "refine: command: {}", self.command.join(" "));
        text.push_str("refine: environment:\n");
        for (k, v) in self.env {
            // One line per variable: a value's newlines (config settings) are spelled `\n`.
            let _ = writeln!(text, "refine:   {k}={}", v.replace('\n', "\\n"));
        }
        if let Some(src) = self.src {
            text.push_str("refine: /src holds:\n");
            for (name, size) in listing(src) {
                match size {
                    Some(bytes) => {
                        let _ = writeln!(text, "refine:   {name} ({bytes} bytes)");
                    }
                    None => {
                        let _ = writeln!(text, "refine:   {name}/");
                    }
                }
            }
        }
        text.push_str("refine: the action's output follows\n");
        text
    }
}

/// The files at the top of `src` and in its `wheelhouse`, with their sizes (`None` for a
/// folder, whose contents are not listed: a path source may hold thousands of files).
fn listing(src: &Path) -> Vec<(String, Option<u64>)> {
    let mut out = Vec::new();
    let mut add = |dir: &Path, prefix: &str| {
        let Ok(entries) = fs_err::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(fs_err::DirEntry::file_name);
        for e in entries {
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            let size = e.metadata().ok().filter(|m| !m.is_dir()).map(|m| m.len());
            out.push((name, size));
        }
    };
    add(src, "");
    add(&src.join("wheelhouse"), "wheelhouse/");
    out.sort();
    out
}

/// Stores `header` followed by the action's output (the file `output`; an action that never
/// wrote one printed nothing) as a log, and pins it.
pub fn store(store: &LocalStore, header: &str, output: &Path) -> Result<StoredLog, StoreError> {
    let digest = match fs_err::File::open(output) {
        Ok(file) => store.put_log(header.as_bytes().chain(file))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => store.put_log(header.as_bytes())?,
        Err(e) => return Err(StoreError::io("open", output, e)),
    };
    Ok(StoredLog {
        path: store.blob_path(&digest),
        digest,
    })
}

/// The last `lines` lines of the action's output, for the terminal.
pub fn tail(output: &Path, lines: usize) -> String {
    let text = fs_err::read(output)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_log_is_the_header_and_the_whole_output() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path().join("store")).unwrap();
        let src = dir.path().join("src");
        fs_err::create_dir_all(src.join("wheelhouse")).unwrap();
        fs_err::write(src.join("recipe.sh"), "echo hi\n").unwrap();
        fs_err::write(src.join("wheelhouse/build-1.2-py3-none-any.whl"), "12345").unwrap();
        let output = dir.path().join("log");
        let printed: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        fs_err::write(&output, &printed).unwrap();
        let command = ["/bin/sh".to_string(), "/src/recipe.sh".to_string()];
        let env = [
            ("REFINE_REQUIRES".to_string(), "build==1.2".to_string()),
            ("REFINE_CONFIG_SETTINGS".to_string(), "a=1\nb=2".to_string()),
        ];
        let header = Header {
            label: "//wheels:x",
            key: "abc",
            command: &command,
            env: &env,
            src: Some(&src),
        }
        .render();
        let log = store(&s, &header, &output).unwrap();
        let text = fs_err::read_to_string(&log.path).unwrap();
        assert!(
            text.starts_with("refine: the action of //wheels:x (key abc)\n"),
            "{text}"
        );
        assert!(
            text.contains("refine: command: /bin/sh /src/recipe.sh\n"),
            "{text}"
        );
        assert!(
            text.contains("refine:   REFINE_REQUIRES=build==1.2\n"),
            "{text}"
        );
        assert!(
            text.contains("refine:   REFINE_CONFIG_SETTINGS=a=1\\nb=2\n"),
            "{text}"
        );
        assert!(
            text.contains("refine:   wheelhouse/build-1.2-py3-none-any.whl (5 bytes)\n"),
            "{text}"
        );
        assert!(text.contains("refine:   wheelhouse/\n"), "{text}");
        assert!(
            text.ends_with(&printed),
            "the whole output, not its tail: {text}"
        );
        let end = tail(&output, TAIL_LINES);
        assert!(
            end.starts_with("line 31\n") && end.ends_with("line 50"),
            "{end}"
        );
    }

    #[test]
    fn an_action_that_printed_nothing_still_has_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path().join("store")).unwrap();
        let log = store(&s, "refine: header\n", &dir.path().join("no-such-log")).unwrap();
        assert_eq!(
            fs_err::read_to_string(&log.path).unwrap(),
            "refine: header\n"
        );
    }
}
