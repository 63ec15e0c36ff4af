//! A wheel build that failed for want of a native library: the header, library or
//! pkg-config module the compiler or linker could not find, read from the end of the log,
//! with the pack that likely provides it (by name, among the workspace's packs) and where to
//! add it.

use refine_rules::graph::{TargetGraph, TargetId};
use refine_rules::rules::{SourceSpec, Spec};

use crate::error::ActionError;

/// What the log says is missing: `yaml.h`, `-lffi`, pkg-config's `libxml-2.0`.
fn missing(tail: &str) -> Option<String> {
    for line in tail.lines() {
        // gcc/clang: `x.c:1:10: fatal error: yaml.h: No such file or directory`
        if let Some((_, rest)) = line.split_once("fatal error: ")
            && let Some((file, _)) = rest.split_once(": No such file or directory")
        {
            return Some(
                file.trim()
                    .trim_matches(['\'', '\u{2018}', '\u{2019}'])
                    .to_string(),
            );
        }
        // ld: `cannot find -lffi`
        if let Some((_, rest)) = line.split_once("cannot find -l") {
            let lib = rest.split_whitespace().next().unwrap_or(rest);
            let lib = lib.trim_end_matches([':', ',']);
            return Some(format!("-l{lib}"));
        }
        // pkg-config: `Package libxml-2.0 was not found in the pkg-config search path.`
        if let Some((_, rest)) = line.split_once("Package ")
            && let Some((module, _)) = rest.split_once(" was not found")
        {
            return Some(format!("pkg-config `{module}`"));
        }
    }
    None
}

/// The stem a pack's name would carry: `yaml.h` → `yaml`, `-lffi` → `ffi`,
/// `openssl/ssl.h` → `openssl`, pkg-config `libxml-2.0` → `xml`.
fn stem(missing: &str) -> String {
    let s = missing
        .trim_start_matches("pkg-config `")
        .trim_end_matches('`')
        .trim_start_matches("-l");
    let s = s.split('/').next().unwrap_or(s);
    let s = s.trim_end_matches(".h");
    let s = s.trim_start_matches("lib");
    s.split(['-', '.', '_']).next().unwrap_or(s).to_lowercase()
}

/// The packs whose rule name holds the stem (`libyaml` for `yaml.h`), as labels.
fn candidates(graph: &TargetGraph, stem: &str) -> Vec<String> {
    if stem.len() < 2 {
        return Vec::new();
    }
    let mut out: Vec<String> = graph
        .targets()
        .iter()
        .filter(|t| matches!(t.spec, Spec::Pack(_)) && t.rule.to_lowercase().contains(stem))
        .map(|t| format!("//{}:{}", t.label.package, t.rule))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The failure of wheel target `id` explained when its log shows a missing native
/// dependency; `None` otherwise. `tail` is what the error shows of the log.
pub fn explain_missing_native(
    graph: &TargetGraph,
    id: TargetId,
    log: &str,
    tail: &str,
) -> Option<ActionError> {
    let target = graph.target(id);
    let Spec::Wheel(w) = &target.spec else {
        return None;
    };
    let missing = missing(log)?;
    let package = match &w.source {
        SourceSpec::Pypi { name, .. } => refine_rules::rules::normalize(name),
        _ => target.rule.clone(),
    };
    let packs = candidates(graph, &stem(&missing));
    let pack = packs
        .first()
        .cloned()
        .unwrap_or_else(|| "//packs:NAME".to_string());
    let mut advice = if packs.is_empty() {
        format!(
            "No pack of the workspace provides it: write one (a `pack` rule and a recipe, docs/rules.md), then give it to `{package}`"
        )
    } else {
        format!("`{pack}` looks like it provides it")
    };
    if target.label.package.starts_with("requests/") {
        advice.push_str(&format!(
            ": add `override \"{package}\" {{ packs \"{pack}\" }}` to the request (and to its `packs` if it lists them), or `source \"{package}\" {{ packs \"{pack}\" }}` to catalog/native.kdl"
        ));
    } else {
        advice.push_str(&format!(
            ": add `packs \"{pack}\"` to the rule, or `source \"{package}\" {{ packs \"{pack}\" }}` to catalog/native.kdl"
        ));
    }
    Some(ActionError::MissingNative {
        package,
        missing,
        advice,
        tail: tail.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compilers_linkers_and_pkg_config_say_what_is_missing() {
        assert_eq!(
            missing("ext/_yaml.c:1215:10: fatal error: yaml.h: No such file or directory\n compilation terminated.").as_deref(),
            Some("yaml.h")
        );
        assert_eq!(
            missing("/usr/bin/ld: cannot find -lffi: No such file or directory").as_deref(),
            Some("-lffi")
        );
        assert_eq!(
            missing("Package libxml-2.0 was not found in the pkg-config search path.").as_deref(),
            Some("pkg-config `libxml-2.0`")
        );
        assert_eq!(missing("error: command 'gcc' failed"), None);
        assert_eq!(stem("yaml.h"), "yaml");
        assert_eq!(stem("-lffi"), "ffi");
        assert_eq!(stem("openssl/ssl.h"), "openssl");
        assert_eq!(stem("pkg-config `libxml-2.0`"), "xml");
        assert_eq!(stem("zlib.h"), "z");
    }
}
