//! The crate layers, enforced (as Buck2 bans dependency paths): every workspace crate may
//! depend on the workspace crates its layer allows, and on no other: normal, build and dev
//! dependencies alike, so that not even a test reaches up a layer. The table below is the
//! rule; the picture of the layers in `docs/architecture.md` draws it. A new crate fails the
//! test until it is given a layer here.
//!
//! The edges come from `cargo metadata --no-deps` (each package's declared dependencies), so
//! this needs no build and sees exactly what Cargo would compile.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// A crate, the workspace crates it may use, and its job (said when an edge is refused).
struct Layer {
    name: &'static str,
    may_use: Uses,
    job: &'static str,
}

enum Uses {
    Only(&'static [&'static str]),
    /// Every crate but the CLI and the server (the facade: it re-exports every layer).
    Any,
}

/// The binary, which nothing may depend on.
const CLI: &str = "refine";
/// The server, above the engine: only the CLI may use it.
const SERVER: &str = "refine-serve";

const LAYERS: &[Layer] = &[
    Layer {
        name: "refine-digest",
        may_use: Uses::Only(&[]),
        job: "the leaf: digests, hashing writers, file kinds",
    },
    Layer {
        name: "refine-sandbox",
        may_use: Uses::Only(&[]),
        job: "the namespaces sandbox, which knows nothing of the engine",
    },
    Layer {
        name: "refine-store",
        may_use: Uses::Only(&["refine-digest"]),
        job: "the local store",
    },
    Layer {
        name: "refine-rules",
        may_use: Uses::Only(&["refine-digest"]),
        job: "the rule language, graph, queries and formatter",
    },
    Layer {
        name: "refine-oci",
        may_use: Uses::Only(&["refine-digest"]),
        job: "the one OCI layer (registries, credentials)",
    },
    Layer {
        name: "refine-wheel",
        may_use: Uses::Only(&["refine-digest"]),
        job: "the wheel scanner: ELF files judged against the manylinux policies",
    },
    Layer {
        name: "refine-fetch",
        may_use: Uses::Only(&[
            "refine-digest",
            "refine-store",
            "refine-rules",
            "refine-oci",
        ]),
        job: "fetching sources and base images",
    },
    Layer {
        name: "refine-attest",
        may_use: Uses::Only(&["refine-digest"]),
        job: "provenance statements, signed envelopes and trusted keys",
    },
    Layer {
        name: "refine-remote",
        may_use: Uses::Only(&[
            "refine-digest",
            "refine-store",
            "refine-oci",
            "refine-attest",
        ]),
        job: "the remote store, provenance and the wheel mirror",
    },
    Layer {
        name: "refine-plan",
        may_use: Uses::Only(&["refine-digest", "refine-store", "refine-rules"]),
        job: "keys and planning",
    },
    Layer {
        name: "refine-reapi",
        may_use: Uses::Only(&["refine-digest", "refine-store", "refine-sandbox"]),
        job: "remote execution: the REAPI client and the Bots worker",
    },
    // refine-oci is not allowed here: the executor reaches images through refine-fetch.
    Layer {
        name: "refine-exec",
        may_use: Uses::Only(&[
            "refine-digest",
            "refine-store",
            "refine-rules",
            "refine-plan",
            "refine-fetch",
            "refine-sandbox",
            "refine-wheel",
            "refine-attest",
            "refine-reapi",
        ]),
        job: "the executor",
    },
    Layer {
        name: "refine-engine",
        may_use: Uses::Any,
        job: "the facade over every layer",
    },
    Layer {
        name: "refine-serve",
        may_use: Uses::Only(&["refine-engine"]),
        job: "the HTTP control plane over the engine",
    },
    // The sandbox directly for `refine sandbox`, `refine doctor` and the sandbox helper that
    // the binary re-executes as; everything else through the engine.
    Layer {
        name: "refine",
        may_use: Uses::Only(&["refine-engine", "refine-sandbox", "refine-serve"]),
        job: "the CLI, which parses arguments and prints",
    },
];

fn layer(name: &str) -> Option<&'static Layer> {
    LAYERS.iter().find(|l| l.name == name)
}

/// One declared dependency between two workspace crates.
struct Edge {
    from: String,
    to: String,
    /// `normal`, `dev` or `build`.
    kind: String,
}

/// The workspace's crates and the dependencies among them, as Cargo reads the manifests.
fn workspace_edges() -> (BTreeSet<String>, Vec<Edge>) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .args(["--manifest-path", manifest])
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("package name").to_string())
        .collect();
    let mut edges = Vec::new();
    for p in packages {
        for d in p["dependencies"].as_array().expect("dependencies") {
            let to = d["name"].as_str().expect("dependency name");
            if names.contains(to) {
                edges.push(Edge {
                    from: p["name"].as_str().unwrap().to_string(),
                    to: to.to_string(),
                    kind: d["kind"].as_str().unwrap_or("normal").to_string(),
                });
            }
        }
    }
    (names, edges)
}

/// Why `edge` is refused, or `None` when its layer allows it.
fn refusal(edge: &Edge) -> Option<String> {
    // A crate without a layer is reported once, by name.
    let from = layer(&edge.from)?;
    let allowed = match from.may_use {
        Uses::Any if edge.to != CLI && edge.to != SERVER => return None,
        Uses::Any => &[][..],
        Uses::Only(list) => list,
    };
    if allowed.contains(&edge.to.as_str()) {
        return None;
    }
    let kind = match edge.kind.as_str() {
        "normal" => "dependency".to_string(),
        other => format!("{other}-dependency"),
    };
    let may = match allowed {
        [] => "no workspace crate".to_string(),
        list => list.join(", "),
    };
    let to_job = layer(&edge.to).map_or("a crate with no layer", |l| l.job);
    Some(format!(
        "{} → {} ({kind}) is banned: {} is {}, and may use only {may}; {} is {to_job}",
        edge.from, edge.to, edge.from, from.job, edge.to
    ))
}

#[test]
fn every_dependency_stays_within_its_layer() {
    let (names, edges) = workspace_edges();
    let mut refused: Vec<String> = names
        .iter()
        .filter(|n| layer(n).is_none())
        .map(|n| {
            format!(
                "{n} has no layer: give it one in tests/it/layers.rs (and docs/architecture.md)"
            )
        })
        .collect();
    refused.extend(edges.iter().filter_map(refusal));
    assert!(
        refused.is_empty(),
        "banned dependency edges:\n  {}",
        refused.join("\n  ")
    );
    // The test sees the real graph: the CLI's edge to the engine is there.
    assert!(
        edges
            .iter()
            .any(|e| e.from == "refine" && e.to == "refine-engine"),
        "cargo metadata listed no edge refine → refine-engine"
    );
}

/// The table itself: it names only crates of the workspace, and it has no cycle (so no chain
/// of allowed edges leads back up).
#[test]
fn the_layers_form_no_cycle() {
    let (names, _) = workspace_edges();
    for l in LAYERS {
        assert!(
            names.contains(l.name),
            "{} is not a workspace crate",
            l.name
        );
        if let Uses::Only(list) = l.may_use {
            for u in list {
                assert!(
                    names.contains(*u),
                    "{} may use {u}, which does not exist",
                    l.name
                );
            }
        }
    }
    let below = |l: &Layer| -> Vec<&'static str> {
        match l.may_use {
            Uses::Only(list) => list.to_vec(),
            Uses::Any => LAYERS
                .iter()
                .map(|o| o.name)
                .filter(|n| *n != l.name && *n != CLI && *n != SERVER)
                .collect(),
        }
    };
    // Depth-first: a crate met again while still on the path closes a cycle.
    fn visit(
        name: &'static str,
        below: &dyn Fn(&Layer) -> Vec<&'static str>,
        state: &mut BTreeMap<&'static str, bool>,
        path: &mut Vec<&'static str>,
    ) {
        match state.get(name) {
            Some(true) => return,
            Some(false) => panic!("the layers have a cycle: {} → {name}", path.join(" → ")),
            None => {}
        }
        state.insert(name, false);
        path.push(name);
        for next in below(layer(name).expect("checked above")) {
            visit(next, below, state, path);
        }
        path.pop();
        state.insert(name, true);
    }
    let mut state = BTreeMap::new();
    for l in LAYERS {
        visit(l.name, &below, &mut state, &mut Vec::new());
    }
}
