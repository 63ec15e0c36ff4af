//! `refine fmt [--check] [FILE...]`: canonical formatting of the workspace's KDL files.

use std::io::Write;
use std::path::{Path, PathBuf};

use refine_engine::diag::{Errors, Source};

use super::Failure;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Without FILE, formats workspace.kdl, rules/**/*.kdl and catalog/*.kdl.\nWith --check, writes nothing and exits 1 if any file would change."
)]
pub struct FmtArgs {
    /// Write nothing; list the files that are not formatted and exit 1 if there are any.
    #[arg(long)]
    pub check: bool,
    /// Files to format (default: every KDL file of the workspace).
    pub files: Vec<PathBuf>,
}

pub fn run(dir: Option<&Path>, args: FmtArgs) -> Result<(), Failure> {
    let cwd = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().map_err(|e| {
            Failure::bad_input(miette::miette!("Cannot read the current folder: {e}"))
        })?,
    };
    let files: Vec<(PathBuf, String)> = if args.files.is_empty() {
        let root = refine_engine::rules::find_root(&cwd).map_err(Failure::bad_input)?;
        refine_engine::rules::workspace_files(&root)
            .map_err(Failure::bad_input)?
            .into_iter()
            .map(|rel| (root.join(&rel), rel))
            .collect()
    } else {
        args.files
            .iter()
            .map(|f| (cwd.join(f), f.display().to_string()))
            .collect()
    };

    let mut errors = Errors::default();
    let mut changed = Vec::new();
    for (path, name) in &files {
        let text =
            fs_err::read_to_string(path).map_err(|e| Failure::bad_input(miette::miette!("{e}")))?;
        let source = Source::new(name.as_str(), text);
        match refine_engine::fmt::format_kdl(&source) {
            Ok(formatted) if formatted != *source.text => changed.push((path, name, formatted)),
            Ok(_) => {}
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(Failure::bad_input(errors));
    }
    if args.check {
        for (_, name, _) in &changed {
            println!("{name}");
        }
        if !changed.is_empty() {
            eprintln!(
                "{} file(s) are not formatted; run `refine fmt` to format them",
                changed.len()
            );
            return Err(Failure::Exit(1));
        }
        return Ok(());
    }
    for (path, name, formatted) in changed {
        write_atomic(path, formatted.as_bytes())
            .map_err(|e| Failure::failed(miette::miette!("Cannot write `{name}`: {e}")))?;
        println!("formatted {name}");
    }
    Ok(())
}

/// Writes through a temporary file in the same folder and a rename, so that an interrupted
/// `refine fmt` never leaves a half-written rule file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(folder)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = fs_err::metadata(path) {
        fs_err::set_permissions(tmp.path(), meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
