//! A farm that requires mutual TLS: BuildGrid listening with a server certificate from a
//! private CA and requiring client certificates signed by it (certificates made by `openssl`
//! here); refine trusts the CA with `--executor-tls-ca` and answers with
//! `--executor-tls-cert`/`--executor-tls-key`. Without a client certificate the farm refuses
//! the connection and the build says so. The worker connects through the same listener, with
//! `--tls-ca`, `--tls-cert` and `--tls-key`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Worker;
use crate::common::buildgrid::{Farm, FarmOptions, FarmTls};
use crate::common::registry::free_port;
use crate::common::{run_refine, stderr, tiny};
use crate::remote_exec::build::{keys_and_contents, provenance, refine_ok};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("`openssl` is missing: apt-get install openssl (see .ci/setup.d/reapi.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a certificate it signs for `name` with the extensions in `ext` (a config file).
fn signed(dir: &Path, name: &str, subject: &str, ext: &str) -> (PathBuf, PathBuf) {
    fs_err::write(dir.join(format!("{name}.ext")), ext).unwrap();
    let (key, csr, pem, extfile) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &extfile,
        ],
    );
    (dir.join(pem), dir.join(key))
}

#[test]
fn a_farm_that_requires_a_client_certificate_gets_one() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=refine test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let (server_cert, server_key) = signed(
        dir,
        "server",
        "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    let (client_cert, client_key) = signed(
        dir,
        "client",
        "/CN=refine client",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    );
    let tls_port = free_port();
    let _farm = Farm::start_with(FarmOptions {
        mtls: Some(FarmTls {
            port: tls_port,
            server_cert,
            server_key,
            client_ca: dir.join("ca.pem"),
        }),
        ..Default::default()
    });
    let url = format!("grpcs://localhost:{tls_port}/main");
    let ca = dir.join("ca.pem");
    let ca = ca.to_str().unwrap();
    // The worker too talks to the farm only through the listener that requires a certificate.
    let worker = Worker::start_at(
        &url,
        "bot-tls",
        &[
            "--tls-ca",
            ca,
            "--tls-cert",
            client_cert.to_str().unwrap(),
            "--tls-key",
            client_key.to_str().unwrap(),
        ],
    );
    let ws = tiny(&[("hello", "echo hi > /out/hello.txt\n", &[])]);
    let stores = tempfile::tempdir().unwrap();
    let (local, remote, refused) = (
        stores.path().join("local"),
        stores.path().join("remote"),
        stores.path().join("refused"),
    );

    // Trusting the CA but showing no certificate: the farm closes the handshake.
    let out = run_refine(
        ws.path(),
        &[
            "--store",
            refused.to_str().unwrap(),
            "build",
            "//...",
            "--executor",
            &url,
            "--executor-tls-ca",
            ca,
        ],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Cannot connect to the farm at `reapi://localhost:")
            && text.contains("`--executor-tls-cert`")
            && text.contains("1 failed"),
        "the failure names the farm and what to give it:\n{text}"
    );

    refine_ok(ws.path(), &local, &["build", "//..."]);
    let said = refine_ok(
        ws.path(),
        &remote,
        &[
            "build",
            "//...",
            "--executor",
            &url,
            "--executor-tls-ca",
            ca,
            "--executor-tls-cert",
            client_cert.to_str().unwrap(),
            "--executor-tls-key",
            client_key.to_str().unwrap(),
        ],
    );
    assert!(said.contains("2 built"), "{said}");
    assert_eq!(
        keys_and_contents(ws.path(), &remote),
        keys_and_contents(ws.path(), &local)
    );
    let hello = provenance(ws.path(), &remote, "//packs:hello");
    let executor = &hello["predicate"]["buildDefinition"]["internalParameters"]["executor"];
    assert_eq!(executor["worker"], "bot-tls", "{hello:#}");
    assert!(
        worker.log().contains("exit 0"),
        "the worker ran the action over mutual TLS:\n{}",
        worker.log()
    );
}
