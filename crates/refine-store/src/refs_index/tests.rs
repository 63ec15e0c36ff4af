//! The no-op index's fault tests: what a build is told when the index is missing, truncated,
//! corrupted, behind or ahead of the refs, and what `verify` and `gc` do with it.

use std::fs;
use std::time::{Duration, SystemTime};

use crate::tests::{KEY_A, KEY_B, age, sample_tree, store};
use crate::*;

fn put(s: &LocalStore, dir: &std::path::Path, key: &str, payload: &str) -> CachedArtifact {
    let t = dir.join(format!("t-{key}-{payload}"));
    sample_tree(&t);
    fs::write(t.join("payload"), payload).unwrap();
    let input = ArtifactInput::new(Kind::Wheel, key, "//wheels:demo-py312").tree(&t);
    let manifest = s.put_artifact(&input).unwrap();
    let content = s.read_manifest(&manifest).unwrap().content_digest();
    CachedArtifact { manifest, content }
}

fn index_path(s: &LocalStore) -> std::path::PathBuf {
    s.root().join("refs.idx")
}

fn entries(s: &LocalStore) -> Vec<(Kind, String, CachedArtifact, u64)> {
    match s.read_refs_index() {
        super::Loaded::Valid(i) => i
            .entries()
            .map(|e| {
                let key = Digest::from_sha256_bytes(e.key).hex();
                (e.kind, key, e.artifact, e.used)
            })
            .collect(),
        super::Loaded::Unusable(why) => panic!("the index is unusable: {why:?}"),
    }
}

fn reopen(s: &LocalStore) -> LocalStore {
    LocalStore::open(s.root()).unwrap()
}

#[test]
fn the_index_answers_without_a_ref_file() {
    let (dir, s) = store();
    let a = put(&s, dir.path(), KEY_A, "a");
    s.sync_index().unwrap();
    assert_eq!(entries(&s).len(), 1);
    // Nothing per node is read: with `refs/` moved away the index still answers.
    let refs = s.root().join("refs");
    let moved = dir.path().join("refs-moved");
    fs::rename(&refs, &moved).unwrap();
    let s2 = reopen(&s);
    assert_eq!(s2.lookup_artifact(Kind::Wheel, KEY_A).unwrap(), Some(a));
    assert_eq!(s2.lookup_artifact(Kind::Wheel, KEY_B).unwrap(), None);
    assert_eq!(s2.lookup_artifact(Kind::Pack, KEY_A).unwrap(), None);
    drop(s2);
    fs::remove_dir_all(&refs).unwrap();
    fs::rename(&moved, &refs).unwrap();
}

#[test]
fn a_missing_index_is_rebuilt_from_the_refs() {
    let (dir, s) = store();
    let a = put(&s, dir.path(), KEY_A, "a");
    s.sync_index().unwrap();
    fs::remove_file(index_path(&s)).unwrap();
    let s2 = reopen(&s);
    assert_eq!(s2.lookup_artifact(Kind::Wheel, KEY_A).unwrap(), Some(a));
    s2.sync_index().unwrap();
    assert_eq!(entries(&s2), [(Kind::Wheel, KEY_A.to_owned(), a, 0)]);
}

#[test]
fn a_truncated_or_corrupted_index_is_ignored_and_rebuilt() {
    let (dir, s) = store();
    let a = put(&s, dir.path(), KEY_A, "a");
    let b = put(&s, dir.path(), KEY_B, "b");
    s.sync_index().unwrap();
    let good = fs::read(index_path(&s)).unwrap();
    // A flipped bit in a manifest digest, a cut-off tail, a header of another version.
    let mut flipped = good.clone();
    flipped[24 + 40] ^= 1;
    let mut version = good.clone();
    version[16] = 9;
    let cases = [
        ("flipped", flipped, "checksum"),
        ("truncated", good[..good.len() - 10].to_vec(), "truncated"),
        ("version", version, "version 9"),
        ("empty", Vec::new(), "header"),
    ];
    for (what, bytes, reason) in cases {
        fs::write(index_path(&s), &bytes).unwrap();
        let report = s.verify(VerifyOptions::default()).unwrap();
        let messages: Vec<_> = report.problems.iter().map(|p| &p.message).collect();
        assert!(
            messages.len() == 1 && messages[0].contains(reason),
            "{what}: {messages:?}"
        );
        // The refs win: every lookup gives what the refs say.
        let s2 = reopen(&s);
        assert_eq!(
            s2.lookup_artifact(Kind::Wheel, KEY_A).unwrap(),
            Some(a),
            "{what}"
        );
        assert_eq!(
            s2.lookup_artifact(Kind::Wheel, KEY_B).unwrap(),
            Some(b),
            "{what}"
        );
        // And the end of the command rebuilds it.
        s2.sync_index().unwrap();
        assert_eq!(entries(&s2).len(), 2, "{what}");
        assert!(s2.verify(VerifyOptions::default()).unwrap().is_clean());
    }
    // `verify --fix` rebuilds a damaged index too.
    fs::write(index_path(&s), &good[..30]).unwrap();
    let fixed = s.verify(VerifyOptions { fix: true }).unwrap();
    assert!(fixed.fixed && fixed.problems.len() == 1);
    assert_eq!(entries(&s).len(), 2);
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());
}

/// A crash after the artifact and its ref were written and before the index learnt of them
/// (the process is forgotten, so nothing at its end runs).
#[test]
fn an_index_behind_the_refs_is_caught_up_by_the_next_lookup() {
    let (dir, s) = store();
    let a = put(&s, dir.path(), KEY_A, "a");
    s.sync_index().unwrap();
    let crashed = reopen(&s);
    let b = put(&crashed, dir.path(), KEY_B, "b");
    std::mem::forget(crashed);
    assert_eq!(entries(&s).len(), 1);
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());

    let s2 = reopen(&s);
    assert_eq!(s2.lookup_artifact(Kind::Wheel, KEY_A).unwrap(), Some(a));
    assert_eq!(s2.lookup_artifact(Kind::Wheel, KEY_B).unwrap(), Some(b));
    s2.sync_index().unwrap();
    let keys: Vec<_> = entries(&s2).into_iter().map(|e| e.1).collect();
    assert_eq!(keys, [KEY_A, KEY_B]);
}

/// Another process rewrote a ref the index holds: the index's artifact is still one built
/// for that key until that process merges, and then the ref's wins.
#[test]
fn a_rewritten_ref_wins_at_the_merge() {
    let (dir, s) = store();
    let old = put(&s, dir.path(), KEY_A, "old");
    s.sync_index().unwrap();
    let other = reopen(&s);
    let new = put(&other, dir.path(), KEY_A, "new");
    assert_ne!(old, new);
    assert_eq!(
        reopen(&s).lookup_artifact(Kind::Wheel, KEY_A).unwrap(),
        Some(old)
    );
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());
    other.sync_index().unwrap();
    assert_eq!(
        reopen(&s).lookup_artifact(Kind::Wheel, KEY_A).unwrap(),
        Some(new)
    );
}

#[test]
fn verify_reports_an_entry_without_its_ref_or_manifest() {
    let (dir, s) = store();
    let a = put(&s, dir.path(), KEY_A, "a");
    put(&s, dir.path(), KEY_B, "b");
    s.sync_index().unwrap();
    fs::remove_file(s.root().join("refs/wheel").join(&KEY_B[..2]).join(KEY_B)).unwrap();
    fs::remove_file(s.root().join("blobs/sha256").join(a.manifest.hex())).unwrap();
    let report = s.verify(VerifyOptions::default()).unwrap();
    let messages: Vec<_> = report.problems.iter().map(|p| p.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains(&format!("wheel/{KEY_B}` of `refs.idx` has no ref"))),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains(&format!("wheel/{KEY_A}` of `refs.idx` points at manifest"))),
        "{messages:?}"
    );
    s.verify(VerifyOptions { fix: true }).unwrap();
    assert!(entries(&s).is_empty());
    assert_eq!(s.lookup_artifact(Kind::Wheel, KEY_A).unwrap(), None);
}

/// gc removes refs and blobs; the index it leaves names none of them, and a lookup the index
/// answered counts as a use for gc's eviction.
#[test]
fn gc_keeps_the_index_true_and_counts_its_uses() {
    let (dir, s) = store();
    put(&s, dir.path(), KEY_A, "a");
    let b = put(&s, dir.path(), KEY_B, "b");
    s.sync_index().unwrap();
    let refs = s.root().join("refs/wheel");
    age(&refs.join(&KEY_A[..2]).join(KEY_A), 3 * 3600);
    age(&refs.join(&KEY_B[..2]).join(KEY_B), 3 * 3600);
    // B is looked up through the index (its recorded use is none yet, so stale): the use
    // lands in the index at the end of the command, not on the ref.
    let s2 = reopen(&s);
    assert_eq!(s2.lookup_artifact(Kind::Wheel, KEY_B).unwrap(), Some(b));
    s2.sync_index().unwrap();
    let now = super::seconds(SystemTime::now());
    let used_b = entries(&s)
        .into_iter()
        .find(|e| e.1 == KEY_B)
        .map(|e| e.3)
        .unwrap();
    assert!(now - used_b < 60, "{used_b} vs {now}");
    let r = s
        .gc(&GcOptions {
            older_than: Some(Duration::from_secs(3600)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.evicted, [format!("wheel/{KEY_A}")]);
    let keys: Vec<_> = entries(&s).into_iter().map(|e| e.1).collect();
    assert_eq!(keys, [KEY_B]);
    assert_eq!(
        reopen(&s).lookup_artifact(Kind::Wheel, KEY_A).unwrap(),
        None
    );
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());
}
