//! `--executor-verify`: an action the farm's action cache already answers for is run once
//! more, ignoring that cache, and what the two runs left under `out` is compared file by file.
//!
//! A worker whose output differs for the same action (a recipe that is not reproducible, a
//! worker with another kernel or a broken CPU) is then reported naming both workers and the
//! paths that differ, and nothing is stored: neither in refine's store, nor in the farm's
//! action cache, since the second run is sent as an `Action` with `do_not_cache` set (a
//! different action digest, so the farm's first answer stays as it was).

use std::collections::BTreeMap;

use crate::cas::Cas;
use crate::digest::ReDigest;
use crate::endpoint::{AuthChannel, Endpoint};
use crate::error::ReapiError;
use crate::proto::re::action_cache_client::ActionCacheClient;
use crate::proto::re::{ActionResult, GetActionResultRequest};
use crate::tree::MerkleTree;

/// What one path under `out` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    File { digest: ReDigest, executable: bool },
    Link(String),
    Dir,
}

/// The farm's cached result for `action`, if it has one.
pub(crate) async fn cached_result(
    channel: &AuthChannel,
    endpoint: &Endpoint,
    action: &ReDigest,
) -> Result<Option<ActionResult>, ReapiError> {
    let mut client = ActionCacheClient::new(channel.clone());
    let request = GetActionResultRequest {
        instance_name: endpoint.instance.clone(),
        action_digest: Some(action.proto()),
        inline_stdout: false,
        inline_stderr: false,
        inline_output_files: Vec::new(),
        digest_function: 0,
    };
    match client.get_action_result(request).await {
        Ok(r) => Ok(Some(r.into_inner())),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(ReapiError::call(endpoint, "GetActionResult")(s)),
    }
}

/// Compares two results of the same action; an error naming the workers and the differing
/// paths when their outputs differ.
pub(crate) async fn compare(
    cas: &Cas,
    endpoint: &Endpoint,
    action: &ReDigest,
    cached: &ActionResult,
    fresh: &ActionResult,
) -> Result<(), ReapiError> {
    let worker = |r: &ActionResult| {
        r.execution_metadata
            .as_ref()
            .map(|m| m.worker.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "an unnamed worker".into())
    };
    let mut differences = Vec::new();
    if cached.exit_code != fresh.exit_code {
        differences.push(format!(
            "the exit code ({} then {})",
            cached.exit_code, fresh.exit_code
        ));
    }
    differences.extend(paths_that_differ(
        &outputs(cas, cached).await?,
        &outputs(cas, fresh).await?,
    ));
    if differences.is_empty() {
        return Ok(());
    }
    Err(ReapiError::OutputsDiffer {
        endpoint: endpoint.to_string(),
        action: action.to_string(),
        first: worker(cached),
        second: worker(fresh),
        differences,
    })
}

/// Every path under `out` in a result, with what it holds.
async fn outputs(cas: &Cas, result: &ActionResult) -> Result<BTreeMap<String, Entry>, ReapiError> {
    let mut entries = BTreeMap::new();
    for dir in &result.output_directories {
        let tree = cas.read_output_tree(dir).await?;
        entries.insert(dir.path.clone(), Entry::Dir);
        walk(&tree, &tree.root, &dir.path, &mut entries)?;
    }
    for f in &result.output_files {
        entries.insert(
            f.path.clone(),
            Entry::File {
                digest: ReDigest::from_field(&f.digest)?,
                executable: f.is_executable,
            },
        );
    }
    #[allow(deprecated)]
    for l in result
        .output_symlinks
        .iter()
        .chain(&result.output_file_symlinks)
        .chain(&result.output_directory_symlinks)
    {
        entries.insert(l.path.clone(), Entry::Link(l.target.clone()));
    }
    Ok(entries)
}

fn walk(
    tree: &MerkleTree,
    dir: &ReDigest,
    at: &str,
    entries: &mut BTreeMap<String, Entry>,
) -> Result<(), ReapiError> {
    let d = tree.dir(dir).ok_or_else(|| ReapiError::BadReply {
        what: format!("directory `{dir}`"),
        reason: "the tree does not hold it".into(),
    })?;
    for f in &d.files {
        entries.insert(
            format!("{at}/{}", f.name),
            Entry::File {
                digest: ReDigest::from_field(&f.digest)?,
                executable: f.is_executable,
            },
        );
    }
    for l in &d.symlinks {
        entries.insert(format!("{at}/{}", l.name), Entry::Link(l.target.clone()));
    }
    for sub in &d.directories {
        let path = format!("{at}/{}", sub.name);
        entries.insert(path.clone(), Entry::Dir);
        let digest = ReDigest::from_field(&sub.digest)?;
        walk(tree, &digest, &path, entries)?;
    }
    Ok(())
}

/// How the second listing differs from the first, one phrase per path, in path order.
fn paths_that_differ(
    first: &BTreeMap<String, Entry>,
    second: &BTreeMap<String, Entry>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, a) in first {
        match second.get(path) {
            None => out.push(format!("`{path}` only in the first run")),
            Some(b) if a == b => {}
            Some(b) => out.push(format!("`{path}` {}", how(a, b))),
        }
    }
    for path in second.keys().filter(|p| !first.contains_key(*p)) {
        out.push(format!("`{path}` only in the second run"));
    }
    out
}

fn how(a: &Entry, b: &Entry) -> &'static str {
    match (a, b) {
        (Entry::File { digest: x, .. }, Entry::File { digest: y, .. }) if x == y => {
            "changed its executable bit"
        }
        (Entry::File { .. }, Entry::File { .. }) => "has other content",
        (Entry::Link(_), Entry::Link(_)) => "points elsewhere",
        _ => "is another kind of file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::digest_of;

    fn file(content: &[u8], executable: bool) -> Entry {
        Entry::File {
            digest: digest_of(content),
            executable,
        }
    }

    #[test]
    fn every_kind_of_difference_is_named_in_path_order() {
        let first = BTreeMap::from([
            ("out".to_string(), Entry::Dir),
            ("out/same".to_string(), file(b"a", false)),
            ("out/blob".to_string(), file(b"1", false)),
            ("out/tool".to_string(), file(b"t", false)),
            ("out/gone".to_string(), file(b"g", false)),
            ("out/link".to_string(), Entry::Link("a".into())),
        ]);
        let second = BTreeMap::from([
            ("out".to_string(), Entry::Dir),
            ("out/same".to_string(), file(b"a", false)),
            ("out/blob".to_string(), file(b"2", false)),
            ("out/tool".to_string(), file(b"t", true)),
            ("out/link".to_string(), Entry::Dir),
            ("out/new".to_string(), file(b"n", false)),
        ]);
        assert_eq!(
            paths_that_differ(&first, &second),
            [
                "`out/blob` has other content",
                "`out/gone` only in the first run",
                "`out/link` is another kind of file",
                "`out/tool` changed its executable bit",
                "`out/new` only in the second run",
            ]
        );
        assert!(paths_that_differ(&first, &first).is_empty());
    }
}
