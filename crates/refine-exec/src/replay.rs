//! `refine build --sandbox-debug DIR`: each sandboxed action's folder is kept in DIR with a
//! `replay.sh` that runs the action again by hand, through `refine sandbox run`, with the same
//! root, mounts, environment, limits, architecture and command (and fresh `/work` and `/out`).

use std::path::Path;

use refine_sandbox::{Spec, Writable};

/// Quotes `s` for a POSIX shell.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:+,@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Writes the script that replays `spec` (the action of `label`) to `path`.
pub fn write(path: &Path, label: &str, spec: &Spec) -> std::io::Result<()> {
    let refine = std::env::current_exe()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    // One line per option, so that the script reads like the spec.
    let mut lines: Vec<Vec<String>> = vec![vec![
        refine.display().to_string(),
        "sandbox".into(),
        "run".into(),
    ]];
    let mut opt = |flag: &str, value: String| lines.push(vec![flag.to_string(), value]);
    opt("--root", spec.root.display().to_string());
    for b in &spec.binds {
        let ro = if b.read_only { ":ro" } else { "" };
        opt(
            "--bind",
            format!("{}:{}{ro}", b.source.display(), b.target.display()),
        );
    }
    let mut fresh = Vec::new();
    for (flag, w) in [("--work", &spec.work), ("--out", &spec.out)] {
        if let Writable::Host(p) = w {
            opt(flag, p.display().to_string());
            fresh.push(quote(&p.display().to_string()));
        }
    }
    for (k, v) in &spec.env {
        opt("--env", format!("{k}={v}"));
    }
    if let Some(arch) = &spec.arch {
        opt("--arch", arch.clone());
    }
    if let Some(t) = spec.timeout {
        opt("--timeout", t.as_secs().to_string());
    }
    if let Some(m) = spec.limits.memory {
        opt("--memory", m.to_string());
    }
    if let Some(n) = spec.limits.processes {
        opt("--processes", n.to_string());
    }
    if let Some(n) = spec.limits.open_files {
        opt("--open-files", n.to_string());
    }
    opt("--cwd", spec.cwd.display().to_string());
    opt("--log", dir.join("replay.log").display().to_string());
    let mut command = vec!["--".to_string()];
    command.extend(spec.command.iter().cloned());
    lines.push(command);
    let body = lines
        .iter()
        .map(|l| l.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(" \\\n    ");
    let text = format!(
        "#!/bin/sh\n# The action of `{label}` as refine ran it. Run `sh {}` to run it again by hand:\n# same root, mounts, environment and command; fresh /work and /out.\nset -e\nrm -rf {reset}\nmkdir -p {reset}\nexec {body}\n",
        quote(&path.display().to_string()),
        reset = fresh.join(" "),
    );
    fs_err::write(path, text)
}
