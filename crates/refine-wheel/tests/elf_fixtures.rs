//! The scan and the verdict on real ELF files: tiny shared libraries compiled here with gcc
//! (so that what they require is known), an s390x library from the test machine's s390x
//! root (checked against binutils' `readelf`), each zipped into a wheel in the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use refine_wheel::{Arch, Breach, WheelError, judge_file};
use zip::write::SimpleFileOptions;

const S390X_ROOT: &str = "/var/cache/refine-tests/s390x-bookworm";

/// Compiles `source` into a shared library `name` in `dir` with `gcc`, linking `extra`.
fn compile(dir: &Path, name: &str, source: &str, extra: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    fs_err::write(&c, source).unwrap();
    let out = dir.join(name);
    let status = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O1", "-fno-builtin", "-o"])
        .arg(&out)
        .arg(&c)
        .args(extra)
        .status()
        .expect("gcc must be installed to build the test's ELF fixtures");
    assert!(status.success(), "gcc failed on {name}");
    out
}

/// Zips `members` (path in the wheel, file on disk) into `dir/name`.
fn wheel(dir: &Path, name: &str, members: &[(&str, &Path)]) -> PathBuf {
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
    for (inside, file) in members {
        zip.start_file(*inside, SimpleFileOptions::default())
            .unwrap();
        std::io::copy(&mut fs_err::File::open(file).unwrap(), &mut zip).unwrap();
    }
    zip.start_file("pkg-1.0.dist-info/WHEEL", SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, b"Wheel-Version: 1.0\n").unwrap();
    zip.finish().unwrap();
    path
}

/// memcpy is `GLIBC_2.14` on x86_64 (`-fno-builtin` keeps the call): manylinux_2_17 is
/// the lowest policy, and 2_5 and 2_12 fail on exactly that symbol in that file.
#[test]
fn memcpy_needs_manylinux2014_on_x86_64() {
    let dir = tempfile::tempdir().unwrap();
    let so = compile(
        dir.path(),
        "_copy.so",
        "#include <string.h>\nvoid copy(char *d, const char *s, size_t n) { memcpy(d, s, n); }\n",
        &[],
    );
    let whl = wheel(
        dir.path(),
        "copy-1.0-cp311-cp311-linux_x86_64.whl",
        &[("pkg/_copy.so", &so)],
    );
    let verdict = judge_file(&whl).unwrap();
    assert_eq!(verdict.arch, Some(Arch::X86_64));
    let lowest = verdict.lowest.unwrap();
    assert_eq!(
        lowest.platform_tag(),
        "manylinux_2_17_x86_64.manylinux2014_x86_64"
    );
    assert_eq!(verdict.files[0].max_versions["GLIBC"], "2.14");
    assert_eq!(verdict.files[0].needed, ["libc.so.6"]);
    let failed: Vec<&str> = verdict.failures.iter().map(|f| f.policy.name()).collect();
    assert_eq!(failed, ["manylinux_2_5", "manylinux_2_12"]);
    let expected = Breach::Symbol {
        file: "pkg/_copy.so".into(),
        library: "libc.so.6".into(),
        version: "GLIBC_2.14".into(),
    };
    assert_eq!(verdict.failures[0].breaches, [expected]);
    verdict.check("manylinux2014").unwrap();
    verdict.check("manylinux_2_28_x86_64").unwrap();
}

/// arc4random is new in glibc 2.36 (this machine's): only 2_36 and later accept it, and a
/// promise of 2_28 fails naming the symbol, the file and the way out.
#[test]
fn a_newer_symbol_breaks_a_lower_promise() {
    let dir = tempfile::tempdir().unwrap();
    let so = compile(
        dir.path(),
        "_rand.so",
        "#include <stdlib.h>\nunsigned int draw(void) { return arc4random(); }\n",
        &[],
    );
    let whl = wheel(dir.path(), "rand.whl", &[("rand/_rand.so", &so)]);
    let verdict = judge_file(&whl).unwrap();
    assert_eq!(verdict.lowest.unwrap().name(), "manylinux_2_36");
    let err = verdict.check("manylinux_2_28").unwrap_err();
    let WheelError::Exceeds {
        breaches,
        advice,
        policy,
        ..
    } = &err
    else {
        panic!("expected Exceeds, got {err:?}");
    };
    assert_eq!(policy, "manylinux_2_28_x86_64");
    assert!(
        breaches
            .iter()
            .any(|b| matches!(b, Breach::Symbol { version, file, .. }
        if version == "GLIBC_2.36" && file == "rand/_rand.so"))
    );
    assert!(
        advice.contains("older glibc") && advice.contains("manylinux_2_36_x86_64"),
        "{advice}"
    );
    assert!(
        err.to_string()
            .contains("`rand/_rand.so` requires `GLIBC_2.36`"),
        "{err}"
    );
    assert!(matches!(
        verdict.check("manylinux_2_28_s390x"),
        Err(WheelError::PolicyArch { .. })
    ));
    assert!(matches!(
        verdict.check("manylinux_3_0"),
        Err(WheelError::UnknownPolicy { .. })
    ));
}

/// A needed library outside the allow list is fine when the wheel ships it (as repair
/// grafts it) and breaks every policy when it does not.
#[test]
fn needed_libraries_must_be_allowed_or_shipped() {
    let dir = tempfile::tempdir().unwrap();
    let helper = compile(
        dir.path(),
        "libhelper.so",
        "int helper(void) { return 7; }\n",
        &[],
    );
    let ext = compile(
        dir.path(),
        "_ext.so",
        "int helper(void);\nint ext(void) { return helper(); }\n",
        &["-L", dir.path().to_str().unwrap(), "-lhelper"],
    );
    let shipped = wheel(
        dir.path(),
        "shipped.whl",
        &[("ext/_ext.so", &ext), ("ext.libs/libhelper.so", &helper)],
    );
    let verdict = judge_file(&shipped).unwrap();
    assert_eq!(verdict.files.len(), 2);
    assert!(verdict.lowest.is_some());

    let bare = wheel(dir.path(), "bare.whl", &[("ext/_ext.so", &ext)]);
    let verdict = judge_file(&bare).unwrap();
    assert!(verdict.lowest.is_none());
    let breach = Breach::Library {
        file: "ext/_ext.so".into(),
        library: "libhelper.so".into(),
    };
    assert!(
        verdict
            .failures
            .iter()
            .all(|f| f.breaches.contains(&breach))
    );
    let advice = verdict.check("manylinux_2_36").unwrap_err().to_string();
    assert!(advice.contains("does not ship"), "{advice}");
}

/// An s390x library from a real bookworm root: the architecture is s390x, and the symbol
/// versions found are exactly those binutils' `readelf -V` lists in `.gnu.version_r`.
#[test]
fn s390x_library_agrees_with_readelf() {
    let lib = Path::new(S390X_ROOT).join("usr/lib/s390x-linux-gnu/libstdc++.so.6");
    assert!(
        lib.exists(),
        "the s390x test root is missing: {} (see docs/sandbox.md)",
        lib.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let whl = wheel(
        dir.path(),
        "s390x.whl",
        &[("pkg.libs/libstdc++.so.6", &lib)],
    );
    let verdict = judge_file(&whl).unwrap();
    assert_eq!(verdict.arch, Some(Arch::S390x));

    let out = Command::new("readelf")
        .args(["-V", "--wide"])
        .arg(&lib)
        .output()
        .expect("readelf (binutils) must be installed");
    let text = String::from_utf8(out.stdout).unwrap();
    let needs = text
        .split("'.gnu.version_r'")
        .nth(1)
        .expect("readelf shows .gnu.version_r");
    let mut expected: Vec<&str> = needs
        .lines()
        .filter_map(|l| l.split("Name: ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    expected.sort_unstable();
    expected.dedup();
    let mut found: Vec<&str> = verdict.files[0]
        .requires
        .iter()
        .map(|r| r.version.as_str())
        .collect();
    found.sort_unstable();
    found.dedup();
    assert_eq!(found, expected);
    let glibc = verdict.files[0].max_versions["GLIBC"].clone();
    let lowest = verdict.lowest.expect("libstdc++ meets some s390x policy");
    assert_eq!(
        lowest.name(),
        format!("manylinux_{}", glibc.replace('.', "_"))
    );
}

#[test]
fn damaged_inputs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let not_zip = dir.path().join("broken.whl");
    fs_err::write(&not_zip, b"not a zip at all").unwrap();
    assert!(matches!(judge_file(&not_zip), Err(WheelError::Zip { .. })));
    assert!(matches!(
        judge_file(&dir.path().join("absent.whl")),
        Err(WheelError::Open { .. })
    ));

    let fake = dir.path().join("fake.so");
    fs_err::write(&fake, b"\x7fELF\x02\x01\x01 truncated").unwrap();
    let whl = wheel(dir.path(), "fake.whl", &[("pkg/fake.so", &fake)]);
    match judge_file(&whl) {
        Err(WheelError::Elf { member, .. }) => assert_eq!(member, "pkg/fake.so"),
        other => panic!("expected an ELF error, got {other:?}"),
    }

    let text = dir.path().join("README");
    fs_err::write(&text, "pure python").unwrap();
    let pure = wheel(dir.path(), "pure.whl", &[("pkg/README", &text)]);
    let verdict = judge_file(&pure).unwrap();
    assert!(verdict.arch.is_none() && verdict.files.is_empty());
    verdict.check("manylinux_2_17").unwrap();
}
