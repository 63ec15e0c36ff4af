//! Every pack's `recipe` must be a file in the workspace. Checked when the workspace loads,
//! after the rule files are read (from the cache or not: a cached rule file says nothing about
//! whether its recipe still exists), so that `refine query` reports a missing recipe instead
//! of the build failing on it after the base is made.

use std::collections::HashSet;
use std::path::Path;

use miette::SourceSpan;

use crate::diag::{Errors, InputError, Source, did_you_mean};

use super::kinds::outside_workspace;
use super::model::{Spec, Target};

/// Reports each pack whose recipe is not a file under `root`, at the recipe's string.
pub(super) fn check_recipes(
    root: &Path,
    targets: &[Target],
    files: &[Source],
    errors: &mut Errors,
) {
    // Thousands of packs often share a few recipes: look each path up once.
    let mut present: HashSet<&str> = HashSet::new();
    for t in targets {
        let Spec::Pack(p) = &t.spec else { continue };
        // A path outside the workspace has its own diagnostic (`bad-recipe`).
        if present.contains(p.recipe.as_str()) || outside_workspace(&p.recipe) {
            continue;
        }
        if root.join(&p.recipe).is_file() {
            present.insert(&p.recipe);
            continue;
        }
        errors.push(missing(root, &p.recipe, &files[t.at.file], p.recipe_span));
    }
}

fn missing(root: &Path, recipe: &str, source: &Source, span: SourceSpan) -> InputError {
    if root.join(recipe).is_dir() {
        return InputError::at(
            "missing-recipe",
            source,
            span,
            format!("Recipe `{recipe}` is a folder, not a file"),
            "not a file",
        )
        .with_help("Name the recipe's script itself, such as `recipes/libyaml.sh`");
    }
    let near = nearby(root, recipe);
    let help = match did_you_mean(recipe, near.iter().map(String::as_str)) {
        Some(close) => format!("Did you mean `{close}`? Otherwise create `{recipe}`"),
        None => format!("Create `{recipe}` or fix the path"),
    };
    InputError::at(
        "missing-recipe",
        source,
        span,
        format!("Recipe `{recipe}` does not exist"),
        "no such file in the workspace",
    )
    .with_help(help)
}

/// Files a misspelt recipe path may have meant: those of its folder, or of `recipes/` when
/// the folder itself is wrong, with the same extension; as paths from the workspace root.
fn nearby(root: &Path, recipe: &str) -> Vec<String> {
    let asked = Path::new(recipe);
    let folder = match asked.parent() {
        Some(dir) if root.join(dir).is_dir() => dir.to_path_buf(),
        _ => Path::new("recipes").to_path_buf(),
    };
    let Ok(entries) = fs_err::read_dir(root.join(&folder)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| folder.join(e.file_name()))
        .filter(|p| p.extension() == asked.extension())
        .filter_map(|p| p.to_str().map(str::to_string))
        .collect()
}
