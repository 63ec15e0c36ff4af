//! `workspace.kdl`: the workspace's name, platforms, stores and defaults.

use kdl::{KdlDocument, KdlNode};

use super::kinds::read_policy;
use super::model::*;
use super::reader::FileReader;

const TOP: &[&str] = &["workspace", "platform", "store", "defaults", "trust"];

/// Reads `workspace.kdl`; errors go to `r`, and what could be read is kept.
pub fn read_workspace(r: &mut FileReader<'_>, doc: &KdlDocument) -> WorkspaceConfig {
    let mut ws = WorkspaceConfig::default();
    let mut seen_name = false;
    let mut default_platforms_spans: Vec<(String, miette::SourceSpan)> = Vec::new();
    for node in doc.nodes() {
        match node.name().value() {
            "workspace" => read_name(r, node, &mut ws, &mut seen_name),
            "platform" => read_platform(r, node, &mut ws),
            "store" => read_store(r, node, &mut ws.store),
            "trust" => read_trust(r, node, &mut ws.trust),
            "defaults" => {
                if let Some(spans) = read_defaults(r, node, &mut ws.defaults) {
                    default_platforms_spans = spans;
                }
            }
            other => unknown_node(r, node, other),
        }
    }
    // Checked once every node is read: the platforms may be declared after the defaults.
    if !seen_name {
        r.error(
            "missing-field",
            miette::SourceSpan::from(0..0),
            "workspace.kdl does not name the workspace".into(),
            "expected `workspace \"NAME\"`",
            "Add `workspace \"NAME\"` at the top".into(),
        );
    }
    check_default_platform(r, doc, &ws);
    check_default_set(r, &ws, &default_platforms_spans);
    ws
}

/// `workspace "NAME"`, given once.
fn read_name(r: &mut FileReader<'_>, node: &KdlNode, ws: &mut WorkspaceConfig, seen: &mut bool) {
    r.check_props(node, &[]);
    r.check_children(node, &[]);
    if *seen {
        r.error(
            "duplicate-field",
            node.name().span(),
            "`workspace` is given more than once".into(),
            "again here",
            "Keep one `workspace` node".into(),
        );
    }
    *seen = true;
    if let Some(n) = r.one_arg(node) {
        ws.name = n.value;
    }
}

/// `platform "NAME" arch=… policy=… base=… [toolchain=…]`: kept only when whole and not
/// declared before.
fn read_platform(r: &mut FileReader<'_>, node: &KdlNode, ws: &mut WorkspaceConfig) {
    r.check_props(node, &["arch", "policy", "base", "toolchain"]);
    r.check_children(node, &[]);
    let pname = r.one_arg(node);
    let arch = r.required_prop(node, "arch", "\"s390x\"");
    let policy = r
        .required_prop(node, "policy", "\"manylinux_2_28\"")
        .and_then(|p| read_policy(r, &p));
    let base = r
        .required_prop(node, "base", "\"//bases:NAME\"")
        .and_then(|b| r.label(&b, false));
    let toolchain = r.prop(node, "toolchain").map(|t| r.label(&t, false));
    let (Some(pname), Some(arch), Some(policy), Some(base)) = (pname, arch, policy, base) else {
        return;
    };
    if ws.platforms.iter().any(|p| p.name == pname.value) {
        r.error(
            "duplicate-platform",
            pname.span,
            format!("Platform `{}` is declared twice", pname.value),
            "declared again",
            "Give each platform its own name".into(),
        );
    } else {
        ws.platforms.push(Platform {
            name: pname.value,
            arch: arch.value,
            policy,
            base,
            toolchain: toolchain.flatten(),
        });
    }
}

/// `store { local …; remote "oci://…"; mirror "s3://…"; executor "reapi://…" }`.
fn read_store(r: &mut FileReader<'_>, node: &KdlNode, store: &mut StoreConfig) {
    const FIELDS: &[&str] = &["local", "remote", "mirror", "executor"];
    r.check_props(node, &[]);
    r.check_children(node, FIELDS);
    r.unique_children(node, FIELDS);
    for child in node.iter_children() {
        match child.name().value() {
            "local" => {
                r.check_props(child, &[]);
                store.local = r.one_arg(child).map(|s| s.value);
            }
            "remote" => read_remote(r, child, store),
            "mirror" => read_mirror(r, child, store),
            "executor" => store.executor = read_executor(r, child),
            _ => {}
        }
    }
}

/// `remote "oci://HOST[:PORT][/PREFIX]"`: the shared artifact store.
fn read_remote(r: &mut FileReader<'_>, child: &KdlNode, store: &mut StoreConfig) {
    r.check_props(child, &[]);
    let Some(url) = r.one_arg(child) else {
        return;
    };
    if url
        .value
        .strip_prefix("oci://")
        .is_some_and(|rest| !rest.is_empty())
    {
        store.remote = Some(url.value);
    } else {
        r.error(
            "bad-store",
            url.span,
            format!("`{}` is not an OCI registry URL", url.value),
            "expected oci://HOST[:PORT][/PREFIX]",
            "Write it as `remote \"oci://registry.example:5000/artifacts\"`".into(),
        );
    }
}

/// `trust { key "NAME" "ed25519:HEX" … }`: the keys whose signatures make an artifact from the
/// remote store usable (docs/security.md). Names and keys are each given once.
fn read_trust(r: &mut FileReader<'_>, node: &KdlNode, trust: &mut Vec<TrustedKey>) {
    r.check_props(node, &[]);
    r.check_children(node, &["key"]);
    for child in node.iter_children() {
        if child.name().value() != "key" {
            continue;
        }
        r.check_props(child, &[]);
        let args = r.string_args(child);
        let [name, public] = args.as_slice() else {
            r.error(
                "bad-trust",
                child.span(),
                "`key` takes a name and a public key".into(),
                "here",
                "Write it as `key \"ci-2026\" \"ed25519:<64 hex digits>\"`, as `refine key generate` prints it".into(),
            );
            continue;
        };
        let well_formed = public
            .value
            .strip_prefix("ed25519:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !well_formed {
            r.error(
                "bad-trust",
                public.span,
                format!(
                    "`{}` is not an Ed25519 public key",
                    public.value.chars().take(40).collect::<String>()
                ),
                "expected ed25519:<64 hex digits>",
                "Paste the line `refine key generate NAME` printed".into(),
            );
            continue;
        }
        if let Some(same) = trust
            .iter()
            .find(|k| k.name == name.value || k.public == public.value)
        {
            let what = if same.name == name.value {
                "name"
            } else {
                "key"
            };
            r.error(
                "duplicate-trust",
                child.span(),
                format!("This trusted {what} is listed twice (as `{}`)", same.name),
                "again here",
                "List each key once, under one name".into(),
            );
            continue;
        }
        trust.push(TrustedKey {
            name: name.value.clone(),
            public: public.value.to_ascii_lowercase(),
        });
    }
}

/// `executor "reapi://HOST:PORT[/INSTANCE]" [queue-timeout=SECS] { property NAME VALUE … }`:
/// the Remote Execution API farm that runs the actions (docs/remote-execution.md). Its token
/// never sits in the workspace: it comes from `REFINE_EXECUTOR_TOKEN` or a file given on the
/// command line.
fn read_executor(r: &mut FileReader<'_>, child: &KdlNode) -> Option<ExecutorConfig> {
    const SCHEMES: &[&str] = &["reapi://", "reapi+http://", "grpc://", "grpcs://"];
    r.check_props(child, &["queue-timeout"]);
    r.check_children(child, &["property"]);
    let url = r.one_arg(child);
    let queue_timeout = read_queue_timeout(r, child);
    let mut properties: Vec<(String, String)> = Vec::new();
    for p in child.iter_children() {
        if p.name().value() != "property" {
            continue;
        }
        r.check_props(p, &[]);
        match r.string_args(p).as_slice() {
            [name, value] if !name.value.is_empty() => {
                if properties.iter().any(|(n, _)| *n == name.value) {
                    r.error(
                        "duplicate-field",
                        name.span,
                        format!("Platform property `{}` is given twice", name.value),
                        "given again here",
                        "Keep one `property` line per name".into(),
                    );
                }
                properties.push((name.value.clone(), value.value.clone()));
            }
            _ => r.error(
                "bad-store",
                p.span(),
                "`property` takes a name and a value".into(),
                "expected two strings",
                "Write it as `property \"container-image\" \"docker://registry.example/s390x-base\"`"
                    .into(),
            ),
        }
    }
    let url = url?;
    if SCHEMES.iter().any(|s| {
        url.value
            .strip_prefix(s)
            .is_some_and(|rest| !rest.is_empty())
    }) {
        Some(ExecutorConfig {
            url: url.value,
            properties,
            queue_timeout,
        })
    } else {
        r.error(
            "bad-store",
            url.span,
            format!("`{}` is not a Remote Execution API URL", url.value),
            "expected reapi://HOST:PORT[/INSTANCE]",
            "Write it as `executor \"reapi://farm.example:8980/main\"` (`reapi+http://` for plain HTTP/2 off loopback)".into(),
        );
        None
    }
}

/// `queue-timeout=SECS` on `executor`: a whole number of seconds, 1 or more.
fn read_queue_timeout(r: &mut FileReader<'_>, node: &KdlNode) -> Option<u64> {
    let entry = node
        .entries()
        .iter()
        .rev()
        .find(|e| e.name().is_some_and(|n| n.value() == "queue-timeout"))?;
    match entry.value() {
        kdl::KdlValue::Integer(secs) if *secs > 0 => u64::try_from(*secs).ok(),
        other => {
            r.error(
                "bad-store",
                entry.span(),
                format!("`queue-timeout` is {other}, not a number of seconds"),
                "expected a whole number of seconds, 1 or more",
                "Write it as `queue-timeout=600`".into(),
            );
            None
        }
    }
}

/// `mirror "s3://BUCKET" [endpoint=…] [region=…] [public-url=…]`: where wheels are published,
/// and where the bucket is served to pip (a website, a CDN).
fn read_mirror(r: &mut FileReader<'_>, child: &KdlNode, store: &mut StoreConfig) {
    r.check_props(child, &["endpoint", "region", "public-url"]);
    let url = r.one_arg(child);
    let endpoint = r.prop(child, "endpoint").map(|e| e.value);
    let region = r.prop(child, "region").map(|e| e.value);
    let public_url = r.prop(child, "public-url");
    if let Some(p) = &public_url
        && !(p.value.starts_with("http://") || p.value.starts_with("https://"))
    {
        r.error(
            "bad-store",
            p.span,
            format!("`{}` is not an HTTP URL", p.value),
            "expected http:// or https://",
            "Give the address pip reads the bucket at, e.g. `public-url=\"https://wheels.example.com/\"`".into(),
        );
    }
    let public_url = public_url.map(|p| p.value);
    let Some(url) = url else {
        return;
    };
    if url
        .value
        .strip_prefix("s3://")
        .is_some_and(|b| !b.is_empty())
    {
        store.mirror = Some(Mirror {
            url: url.value,
            endpoint,
            region,
            public_url,
        });
    } else {
        r.error(
            "bad-store",
            url.span,
            format!("`{}` is not an S3 bucket URL", url.value),
            "expected s3://BUCKET",
            "Write it as `mirror \"s3://wheels\" endpoint=\"http://127.0.0.1:9000\"`".into(),
        );
    }
}

/// `defaults { … }`. Gives the names in `platforms` with their spans when it is there: they
/// are checked against the declared platforms once the whole file is read.
fn read_defaults(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    defaults: &mut Defaults,
) -> Option<Vec<(String, miette::SourceSpan)>> {
    r.check_props(node, &[]);
    r.check_children(
        node,
        &[
            "platform",
            "platforms",
            "frontend",
            "repair-tool",
            "patchelf",
            "requires",
            "resolver",
        ],
    );
    r.unique_children(
        node,
        &[
            "platform",
            "platforms",
            "frontend",
            "repair-tool",
            "resolver",
        ],
    );
    let mut platforms_spans = None;
    for child in node.iter_children() {
        match child.name().value() {
            "platform" => {
                r.check_props(child, &[]);
                defaults.platform = r.one_arg(child).map(|s| s.value);
            }
            "platforms" => {
                r.check_props(child, &[]);
                r.check_children(child, &[]);
                let names = r.some_args(child);
                platforms_spans = Some(names.iter().map(|n| (n.value.clone(), n.span)).collect());
                defaults.platforms = names.into_iter().map(|s| s.value).collect();
            }
            "frontend" => defaults.frontend = r.pinned(child),
            "repair-tool" => defaults.repair_tool = r.pinned(child),
            "patchelf" => defaults.patchelf.extend(r.pinned(child)),
            "requires" => defaults.requires.extend(r.pinned(child)),
            "resolver" => defaults.resolver = r.pinned(child),
            _ => {}
        }
    }
    platforms_spans
}

fn unknown_node(r: &mut FileReader<'_>, node: &KdlNode, other: &str) {
    let help = match crate::diag::did_you_mean(other, TOP.iter().copied()) {
        Some(near) => format!("Did you mean `{near}`?"),
        None => "workspace.kdl holds `workspace`, `platform`, `store` and `defaults`; rules go in `rules/*.kdl`".into(),
    };
    r.error(
        "unknown-field",
        node.name().span(),
        format!("Unknown node `{other}` in workspace.kdl"),
        "not a workspace setting",
        help,
    );
}

/// `defaults { platform … }` names a declared platform.
fn check_default_platform(r: &mut FileReader<'_>, doc: &KdlDocument, ws: &WorkspaceConfig) {
    let Some(default) = &ws.defaults.platform else {
        return;
    };
    if ws.platforms.iter().any(|p| &p.name == default) {
        return;
    }
    let span = doc
        .get("defaults")
        .and_then(|d| d.children())
        .and_then(|c| c.get("platform"))
        .map_or(miette::SourceSpan::from(0..0), kdl::KdlNode::span);
    r.error(
        "unknown-platform",
        span,
        format!("The default platform `{default}` is not declared"),
        "no such platform",
        "Declare it with `platform \"NAME\" arch=… policy=… base=…`".into(),
    );
}

/// `defaults { platforms … }`: declared platforms, each once, holding the default platform.
fn check_default_set(
    r: &mut FileReader<'_>,
    ws: &WorkspaceConfig,
    names: &[(String, miette::SourceSpan)],
) {
    for (i, (name, span)) in names.iter().enumerate() {
        if names[..i].iter().any(|(n, _)| n == name) {
            r.error(
                "duplicate-field",
                *span,
                format!("Platform `{name}` is listed twice"),
                "listed again",
                "Keep one".into(),
            );
        } else if ws.platform(name).is_none() {
            let spanned = super::reader::Spanned {
                value: name.clone(),
                span: *span,
            };
            super::platforms::known_platform(r, ws, &spanned);
        }
    }
    if let (Some(default), Some((_, first))) = (&ws.defaults.platform, names.first())
        && !names.iter().any(|(n, _)| n == default)
    {
        r.error(
            "unknown-platform",
            *first,
            format!("The default platform `{default}` is not in `defaults.platforms`"),
            "does not hold the default platform",
            format!(
                "Add `\"{default}\"` to `platforms`, or make one of these the default `platform`"
            ),
        );
    }
}
