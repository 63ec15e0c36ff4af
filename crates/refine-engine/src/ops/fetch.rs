//! `refine fetch`: bring fixed-output sources into the local store, from their origin
//! (PyPI, apt, URLs) for the targets' inputs, or from files at hand (`--import`), for
//! machines without network, like Bazel's distdir.

use std::path::{Path, PathBuf};

use refine_fetch::{FetchError, Fetchable, PipConfig};
use refine_store::{Digest, LocalStore, StoreError};

use super::OpError;
use crate::session::Session;

/// What happened to one input, as it happens.
#[derive(Debug)]
pub enum FetchEvent<'a> {
    /// Fetched now and verified.
    Fetched {
        input: &'a Fetchable,
        digest: &'a Digest,
    },
    /// Not fetched; the others are still tried.
    Failed {
        input: &'a Fetchable,
        error: FetchError,
    },
}

/// What fetching the targets' inputs did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchSummary {
    /// Inputs of the targets and their dependencies, each counted once.
    pub inputs: usize,
    pub fetched: usize,
    /// Already in the store.
    pub present: usize,
    /// Those that failed, described.
    pub failed: Vec<String>,
}

/// Fetches and verifies every fixed-output input of the session's targets and of their
/// dependencies that the store does not hold yet. A failure does not stop the others.
pub fn fetch_inputs(
    session: &Session,
    on_each: &mut dyn FnMut(FetchEvent<'_>),
) -> Result<FetchSummary, OpError> {
    let graph = session.graph();
    let mut member = vec![false; graph.len()];
    for &root in session.roots() {
        member[root] = true;
    }
    let closure = graph.deps_closure(&member);
    let ids: Vec<usize> = (0..graph.len()).filter(|&i| closure[i]).collect();
    let store = session.store();
    let pip = PipConfig::load();
    let work = store.tmp_dir();
    let inputs = refine_fetch::inputs_of(graph, &ids);
    let mut summary = FetchSummary {
        inputs: inputs.len(),
        ..FetchSummary::default()
    };
    for input in &inputs {
        match refine_fetch::fetch(store, input, &pip, &work) {
            Ok((digest, true)) => {
                summary.fetched += 1;
                on_each(FetchEvent::Fetched {
                    input,
                    digest: &digest,
                });
            }
            Ok((_, false)) => summary.present += 1,
            Err(error) => {
                summary.failed.push(input.describe());
                on_each(FetchEvent::Failed { input, error });
            }
        }
    }
    store.sync_index()?;
    Ok(summary)
}

/// One file given to `refine fetch --import`, with the sha256 it must have, if given.
#[derive(Clone, Debug)]
pub struct ImportFile {
    pub file: PathBuf,
    pub expected: Option<Digest>,
}

/// What happened to one imported file.
#[derive(Debug)]
pub struct Imported<'a> {
    pub file: &'a Path,
    /// Its digest, or why it was not stored (a wrong sha256 stores nothing).
    pub result: Result<Digest, StoreError>,
}

/// Puts files into the store under their sha256, each verified against the one given for
/// it, and records their names. A file that does not verify does not stop the others.
pub fn import(
    store: &LocalStore,
    files: &[ImportFile],
    on_each: &mut dyn FnMut(Imported<'_>),
) -> Result<(), OpError> {
    for ImportFile { file, expected } in files {
        let result = store.put_source_file(file, expected.as_ref());
        if let (Ok(digest), Some(name)) = (&result, file.file_name().and_then(|n| n.to_str())) {
            store
                .record_name(digest, name)
                .map_err(|error| OpError::RecordName {
                    file: file.clone(),
                    error,
                })?;
        }
        on_each(Imported { file, result });
    }
    Ok(())
}
