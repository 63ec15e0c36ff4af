//! Local store lookup and insert cost at 1,000, 10,000 and 100,000 entries.
//!
//! `cargo bench -p refine-engine --bench store`
//!
//! One store grows from 0 to 100,000 artifacts (each: a small file layer, a manifest, a ref
//! and a label record, like a real wheel); at each size criterion measures:
//! - `lookup_hit`: `lookup(kind, key)` of a present key (keys cycled, spread over the fan-out);
//! - `lookup_miss`: `lookup` of an absent key;
//! - `insert`: `put_artifact` of a small artifact with a new manifest, with fsync (the real
//!   cost); it rewrites one of 100 refs so that measuring does not grow the store;
//! - `insert_nofsync`: the same without fsync, to show the filesystem work apart from the disk;
//! - `sync_index`: regenerating `index.json` from every ref (once per command, not per insert;
//!   includes one insert so that the file really changes).
//!
//! Filling the store uses `with_fsync(false)`; set `REFINE_BENCH_DIR` to keep it on a given
//! filesystem (default: the system temporary folder).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use refine_store::{ArtifactInput, Kind, LocalStore};

fn key(i: u64) -> String {
    blake3::hash(&i.to_le_bytes()).to_hex().to_string()
}

/// Artifact `k` (its key), made unique by `i` (its key fields, hence its manifest).
fn input(work: &Path, k: u64, i: u64) -> ArtifactInput {
    let file = work.join(format!("f{}", i % 64));
    if !file.exists() {
        std::fs::write(&file, format!("payload {i}")).unwrap();
    }
    ArtifactInput::new(Kind::Wheel, key(k), format!("//wheels:w{k}"))
        .file(file, "demo-1.0-cp312-cp312-linux_s390x.whl")
        .key_fields(serde_json::json!({ "i": i }))
}

/// Inserts rewrite one of this many refs (with a new manifest each time), so that measuring
/// does not grow the store past its nominal size by more than this.
const INSERT_POOL: u64 = 100;

fn bench(c: &mut Criterion) {
    let base = std::env::var_os("REFINE_BENCH_DIR").map(std::path::PathBuf::from);
    let tmp = match &base {
        Some(b) => tempfile::tempdir_in(b).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let fill = LocalStore::open(tmp.path().join("store"))
        .unwrap()
        .with_fsync(false);
    let synced = LocalStore::open(tmp.path().join("store")).unwrap();
    let mut group = c.benchmark_group("store");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(4));
    let mut filled = 0u64;
    let mut next_new = 1u64 << 40;
    for n in [1_000u64, 10_000, 100_000] {
        while filled < n {
            fill.put_artifact(&input(&work, filled, filled)).unwrap();
            filled += 1;
        }
        fill.sync_index().unwrap();
        // Flush what filling left dirty, so that its writeback does not run during measuring.
        let _ = std::process::Command::new("sync").status();
        let mut i = 0u64;
        group.bench_with_input(BenchmarkId::new("lookup_hit", n), &n, |b, &n| {
            b.iter(|| {
                i = (i + 7919) % n;
                let d = synced.lookup("wheel", &key(i)).unwrap();
                assert!(d.is_some());
                black_box(d)
            });
        });
        let mut j = 1u64 << 50;
        group.bench_with_input(BenchmarkId::new("lookup_miss", n), &n, |b, _| {
            b.iter(|| {
                j += 1;
                black_box(synced.lookup("wheel", &key(j)).unwrap())
            });
        });
        group.bench_with_input(BenchmarkId::new("insert", n), &n, |b, _| {
            b.iter(|| {
                next_new += 1;
                black_box(
                    synced
                        .put_artifact(&input(&work, (1 << 40) + next_new % INSERT_POOL, next_new))
                        .unwrap(),
                )
            });
        });
        group.bench_with_input(BenchmarkId::new("insert_nofsync", n), &n, |b, _| {
            b.iter(|| {
                next_new += 1;
                black_box(
                    fill.put_artifact(&input(&work, (1 << 40) + next_new % INSERT_POOL, next_new))
                        .unwrap(),
                )
            });
        });
        // Once per command, not per insert: listing every ref and rewriting index.json.
        group.sample_size(10);
        group.bench_with_input(BenchmarkId::new("sync_index", n), &n, |b, _| {
            b.iter(|| {
                // Rewrite one ref so that index.json really changes each time.
                next_new += 1;
                fill.put_artifact(&input(&work, (1 << 40) + 1, next_new))
                    .unwrap();
                fill.sync_index().unwrap();
            });
        });
        group.sample_size(50);
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
