//! The cost of signed provenance per artifact: signing a provenance statement, and the check a
//! remote hit passes in a workspace with trusted keys (decode, Ed25519 strict verification of
//! the PAE, statement subject and key), against the peer cost a signature can be compared with:
//! hashing the artifact's bytes once (sha256, as every pull does), for a 1 MiB artifact.
//!
//! `cargo bench -p refine-attest --bench attest`
//!
//! The record is a real one's shape (a wheel action's: 14 key fields, 9 inputs, the command
//! and 12 environment variables), about 3 KiB as a statement.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use refine_attest::{PublicKey, SigningKey, TrustedKeys, sign_record};
use refine_digest::Digest;

fn record() -> serde_json::Value {
    let pairs = |n: usize, what: &str| -> Vec<[String; 2]> {
        (0..n)
            .map(|i| {
                [
                    format!("{what}_{i}"),
                    format!(
                        "sha256:{}",
                        Digest::of_bytes(format!("{what}{i}").as_bytes()).hex()
                    ),
                ]
            })
            .collect()
    };
    serde_json::json!({
        "label": "//wheels:pyyaml-py311", "kind": "wheel",
        "key": Digest::of_bytes(b"key").hex(),
        "key_fields": pairs(14, "field"), "inputs": pairs(9, "input"),
        "command": ["/bin/sh", "-eu", "/refine/recipe.sh"], "env": pairs(12, "ENV"),
        "platform": "s390x", "emulator": "/usr/bin/qemu-s390x-static",
        "started_unix": 1_764_547_200.0, "seconds": 42.0, "exit": "Exited(0)",
        "log": format!("sha256:{}", Digest::of_bytes(b"log").hex()),
        "refine_version": "0.1.0"
    })
}

// The envelope size goes to stderr beside criterion's own report.
#[allow(clippy::print_stderr)]
fn bench(c: &mut Criterion) {
    let key = SigningKey::generate().expect("randomness");
    let public: PublicKey = key.public();
    let others: Vec<(String, PublicKey)> = (0..2)
        .map(|i| (format!("old-{i}"), SigningKey::generate().unwrap().public()))
        .collect();
    // Three trusted keys, the signer last: the worst case of a rotation.
    let mut keys = others;
    keys.push(("ci".into(), public));
    let trust = TrustedKeys::new(keys);
    let subject = Digest::of_bytes(b"manifest");
    let record = record();
    let envelope = sign_record(&key, &subject, &record);
    eprintln!("statement envelope: {} bytes", envelope.len());
    let kind_key = record["key"].as_str().unwrap().to_string();
    let artifact = vec![7u8; 1 << 20];

    let mut g = c.benchmark_group("attest");
    g.bench_function("sign", |b| {
        b.iter(|| sign_record(black_box(&key), black_box(&subject), black_box(&record)));
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            trust
                .check(
                    std::slice::from_ref(black_box(&envelope)),
                    &subject,
                    "wheel",
                    &kind_key,
                )
                .expect("trusted");
        });
    });
    g.bench_function("sha256_1MiB_peer", |b| {
        b.iter(|| Digest::of_bytes(black_box(&artifact)));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
