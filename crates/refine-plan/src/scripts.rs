//! The action scripts refine runs for toolchains, runtimes, wheels and repairs (`recipes/actions/`,
//! documented in `docs/actions.md`), built into the binary. Their digests are in the keys of
//! the targets they build, so that changing a script rebuilds what it made.
//!
//! `recipes/lib.sh` holds the helpers the scripts share. A script uses it by holding the line
//! [`LIB_LINE`] (`. "$REFINE_LIB"`) alone on a line; only then does the executor stage the lib
//! and set `REFINE_LIB`, and only then does the lib's digest enter the script's digest
//! ([`keyed`]). A script without that line is keyed by its own digest, exactly as before the
//! lib existed. The action scripts use refine's own copy ([`LIB`]); a pack recipe uses the
//! workspace's ([`WORKSPACE_LIB`]), since recipes are workspace files.

pub const RUNTIME: &str = include_str!("../../../recipes/actions/runtime.sh");
pub const WHEEL: &str = include_str!("../../../recipes/actions/wheel.sh");
pub const REPAIR: &str = include_str!("../../../recipes/actions/repair.sh");
/// A repair with `strip`: runs [`REPAIR`] (staged beside it), then strips the wheel.
pub const REPAIR_STRIP: &str = include_str!("../../../recipes/actions/repair-strip.sh");
/// Assembles a toolchain from its Debian packages (docs/toolchains.md).
pub const TOOLCHAIN: &str = include_str!("../../../recipes/actions/toolchain.sh");
/// The lib the action scripts above source.
pub const LIB: &str = include_str!("../../../recipes/lib.sh");

/// The line by which a script sources the lib; leading and trailing blanks aside, exact.
pub const LIB_LINE: &str = ". \"$REFINE_LIB\"";
/// The lib a pack recipe sources, relative to the workspace root.
pub const WORKSPACE_LIB: &str = "recipes/lib.sh";
/// Where the lib is staged in the sandbox (the value of `REFINE_LIB`), beside `recipe.sh`.
pub const LIB_IN_SANDBOX: &str = "/src/lib.sh";

/// `sha256:<hex>` of a script's text.
pub fn digest(script: &str) -> String {
    hex_digest(script.as_bytes())
}

fn hex_digest(bytes: &[u8]) -> String {
    refine_digest::Digest::of_bytes(bytes).to_string()
}

/// Whether `script` sources the lib: one of its lines is [`LIB_LINE`].
pub fn uses_lib(script: &[u8]) -> bool {
    script
        .split(|&b| b == b'\n')
        .any(|line| line.trim_ascii() == LIB_LINE.as_bytes())
}

/// The digest of a script that sources the lib, from the two files' digests: a new digest,
/// so that editing either file changes it.
pub fn with_lib(script_digest: &str, lib_digest: &str) -> String {
    hex_digest(format!("{script_digest}\n{lib_digest}\n").as_bytes())
}

/// The digest a key holds for `script`: its own, or with `lib`'s folded in when it uses it.
pub fn keyed(script: &str, lib: &str) -> String {
    if uses_lib(script.as_bytes()) {
        with_lib(&digest(script), &digest(lib))
    } else {
        digest(script)
    }
}

/// The digest a key holds for one of refine's action scripts.
pub fn action_digest(script: &str) -> String {
    keyed(script, LIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed action's full log must say what ran: the frontend's install and the build
    /// (wheel), the install and `auditwheel repair` (repair) go through lib.sh's `run`, which
    /// prints each command line, quoted, before running it.
    #[test]
    fn the_actions_print_their_command_lines() {
        for (script, lines) in [
            (
                WHEEL,
                &[
                    "run pipi install",
                    "run \"$W/venv/bin/python\" -m build --wheel",
                ][..],
            ),
            (REPAIR, &["run pipi install", "run auditwheel repair"][..]),
        ] {
            for line in lines {
                assert!(script.contains(line), "`{line}` is not run through `run`");
            }
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{LIB}\nrun echo plain 'two words' ''"))
            .output()
            .expect("sh runs");
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "plain two words \n");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "+ echo plain 'two words' ''\n"
        );
    }

    #[test]
    fn the_action_scripts_source_the_lib() {
        for script in [RUNTIME, WHEEL, REPAIR, TOOLCHAIN] {
            assert!(uses_lib(script.as_bytes()));
            assert_ne!(action_digest(script), digest(script));
        }
    }

    #[test]
    fn the_line_is_found_only_alone() {
        assert!(uses_lib(b"#!/bin/sh\n  . \"$REFINE_LIB\"  \r\nmake\n"));
        for other in [
            "#!/bin/sh\n# . \"$REFINE_LIB\"\n",
            "#!/bin/sh\n. \"$REFINE_LIB\" # helpers\n",
            "#!/bin/sh\n. $REFINE_LIB\n",
            "#!/bin/sh\nsource \"$REFINE_LIB\"\n",
        ] {
            assert!(!uses_lib(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn the_lib_enters_the_digest_of_its_users_only() {
        let user = "#!/bin/sh\n. \"$REFINE_LIB\"\npick_src '*.whl'\n";
        let other = "#!/bin/sh\nmake\n";
        let (lib, edited) = (LIB, format!("{LIB}\n# edited\n"));
        assert_ne!(keyed(user, lib), keyed(user, &edited));
        assert_ne!(keyed(user, lib), digest(user));
        assert_eq!(keyed(other, lib), digest(other));
        assert_eq!(keyed(other, &edited), digest(other));
        // Editing the script itself still changes it.
        assert_ne!(keyed(user, lib), keyed(&format!("{user}make\n"), lib));
    }
}
