//! Re-tagging a wheel with another platform tag (PEP 425, PEP 427): the file name's last
//! part, the `Tag:` lines of `*.dist-info/WHEEL` (one per python-abi-platform combination)
//! and WHEEL's line in `RECORD` (PEP 376: urlsafe base64 sha256 without padding, size).
//!
//! The archive is rewritten entry by entry in its own order: every entry but WHEEL and
//! RECORD is copied as it is (compressed bytes, time, attributes), those two are written
//! anew with the original's time, attributes and compression method. The same input gives
//! the same bytes.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use refine_digest::Digest;
use zip::result::ZipError;

use crate::error::WheelError;

/// The name of `wheel` (`{dist}-{ver}[-{build}]-{py}-{abi}-{plat}.whl`) with its platform
/// tag replaced by `platform_tag` (which may be a dotted set, as PEP 425 compresses them);
/// `None` when the name has not the shape of a wheel's.
pub fn retagged_name(wheel: &str, platform_tag: &str) -> Option<String> {
    let stem = wheel.strip_suffix(".whl")?;
    let parts: Vec<&str> = stem.split('-').collect();
    if !(5..=6).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let kept = &parts[..parts.len() - 1];
    Some(format!("{}-{platform_tag}.whl", kept.join("-")))
}

/// The platform tag(s) of a wheel's file name: `manylinux_2_17_s390x.manylinux2014_s390x`.
pub fn platform_tag_of(wheel: &str) -> Option<&str> {
    retagged_name(wheel, "x")?;
    wheel.strip_suffix(".whl")?.rsplit('-').next()
}

/// WHEEL's text with its `Tag:` lines replaced: one line per python-abi pair of the old tags
/// (in their first-seen order) and platform of `platform_tag` (in its order), where the first
/// `Tag:` line was. Every other line is kept as it is, line ending included.
pub fn retag_wheel_metadata(text: &str, platform_tag: &str) -> String {
    let is_tag = |line: &str| line.starts_with("Tag:");
    let mut pairs: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| is_tag(l)) {
        let tag = line["Tag:".len()..].trim();
        // `py-abi-plat`: the platform is the last part, python and ABI tags hold no `-`.
        if let Some((pair, _)) = tag.rsplit_once('-')
            && !pairs.iter().any(|p| p == pair)
        {
            pairs.push(pair.to_owned());
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut written = false;
    for line in text.split_inclusive('\n') {
        if !is_tag(line) {
            out.push_str(line);
            continue;
        }
        if written {
            continue;
        }
        written = true;
        let ending = if line.ends_with("\r\n") { "\r\n" } else { "\n" };
        for pair in &pairs {
            for platform in platform_tag.split('.') {
                out.push_str(&format!("Tag: {pair}-{platform}{ending}"));
            }
        }
    }
    out
}

/// RECORD's text with the line of `member` (`pkg-1.0.dist-info/WHEEL`) saying the hash and
/// size of `contents`; `None` if RECORD has no line for it.
pub fn retag_record(text: &str, member: &str, contents: &[u8]) -> Option<String> {
    let prefix = format!("{member},");
    let mut found = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        if body.starts_with(&prefix) {
            found = true;
            out.push_str(&record_line(member, contents));
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    found.then_some(out)
}

/// `path,sha256=<urlsafe base64, no padding>,<size>` (PEP 376, PEP 427).
pub fn record_line(path: &str, contents: &[u8]) -> String {
    let digest = Digest::of_bytes(contents);
    format!(
        "{path},sha256={},{}",
        urlsafe_b64_nopad(digest.as_bytes()),
        contents.len()
    )
}

/// Base64 with the URL-safe alphabet (RFC 4648 §5), without `=` padding.
fn urlsafe_b64_nopad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Writes `wheel` re-tagged with `platform_tag` into `dir` under its new name and returns that
/// path. `dir` must not be the wheel's own folder when the name stays the same.
pub fn retag(wheel: &Path, platform_tag: &str, dir: &Path) -> Result<PathBuf, WheelError> {
    let name = wheel
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| retagged_name(n, platform_tag))
        .ok_or_else(|| WheelError::NotAWheelName {
            path: wheel.to_owned(),
        })?;
    let input = fs_err::File::open(wheel).map_err(|source| WheelError::Open {
        path: wheel.to_owned(),
        source,
    })?;
    let out_path = dir.join(name);
    let output = fs_err::File::create(&out_path).map_err(|source| WheelError::Write {
        path: out_path.clone(),
        source,
    })?;
    let written = retag_archive(wheel, input, output, platform_tag);
    if written.is_err() {
        let _ = fs_err::remove_file(&out_path);
    }
    written?.sync_all().map_err(|source| WheelError::Write {
        path: out_path.clone(),
        source,
    })?;
    Ok(out_path)
}

/// The archive `input` (the wheel at `path`) re-tagged into `output`.
pub fn retag_archive<R: Read + Seek, W: Write + Seek>(
    path: &Path,
    input: R,
    output: W,
    platform_tag: &str,
) -> Result<W, WheelError> {
    let read_err = |source| WheelError::Zip {
        path: path.to_owned(),
        source,
    };
    let write_err = |source: ZipError| WheelError::Rewrite {
        path: path.to_owned(),
        source,
    };
    let mut archive = zip::ZipArchive::new(input).map_err(read_err)?;
    let names = archive
        .file_names()
        .map(|n| n.map(std::borrow::Cow::into_owned))
        .collect::<Result<Vec<String>, _>>()
        .map_err(read_err)?;
    let dist_info = names
        .iter()
        .filter_map(|n| n.strip_suffix(".dist-info/WHEEL"))
        .find(|d| !d.contains('/'))
        .ok_or_else(|| WheelError::NoMetadata {
            path: path.to_owned(),
        })?
        .to_owned();
    let wheel_member = format!("{dist_info}.dist-info/WHEEL");
    let record_member = format!("{dist_info}.dist-info/RECORD");

    let metadata = read_text(&mut archive, path, &wheel_member)?;
    let metadata = retag_wheel_metadata(&metadata, platform_tag);
    let record = if names.contains(&record_member) {
        let text = read_text(&mut archive, path, &record_member)?;
        let record = retag_record(&text, &wheel_member, metadata.as_bytes()).ok_or_else(|| {
            WheelError::NoMetadata {
                path: path.to_owned(),
            }
        })?;
        Some(record)
    } else {
        None
    };

    let mut writer = zip::ZipWriter::new(output);
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(read_err)?;
        let name = entry.name().map_err(read_err)?.into_owned();
        let contents = if name == wheel_member {
            Some(metadata.as_bytes())
        } else if name == record_member {
            record.as_deref().map(str::as_bytes)
        } else {
            None
        };
        match contents {
            None => writer.raw_copy_file(entry).map_err(write_err)?,
            Some(bytes) => {
                let options = entry.options();
                drop(entry);
                writer.start_file(&name, options).map_err(write_err)?;
                writer
                    .write_all(bytes)
                    .map_err(|source| write_err(ZipError::Io(source)))?;
            }
        }
    }
    let comment = archive.comment().to_vec();
    if !comment.is_empty() {
        writer
            .set_raw_comment(comment.into_boxed_slice())
            .map_err(write_err)?;
    }
    writer.finish().map_err(write_err)
}

fn read_text<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    path: &Path,
    member: &str,
) -> Result<String, WheelError> {
    let mut entry = archive.by_name(member).map_err(|source| WheelError::Zip {
        path: path.to_owned(),
        source,
    })?;
    let mut text = String::new();
    entry
        .read_to_string(&mut text)
        .map_err(|source| WheelError::Member {
            path: path.to_owned(),
            member: member.to_owned(),
            source,
        })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, DateTime};

    use super::*;

    #[test]
    fn names_keep_everything_but_the_platform() {
        assert_eq!(
            retagged_name(
                "PyYAML-6.0.2-cp311-cp311-manylinux_2_36_s390x.whl",
                "manylinux_2_17_s390x.manylinux2014_s390x"
            )
            .as_deref(),
            Some("PyYAML-6.0.2-cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x.whl")
        );
        // A build tag, and a name already carrying a dotted set of tags.
        assert_eq!(
            retagged_name(
                "a-1.0-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "manylinux_2_5_x86_64.manylinux1_x86_64"
            )
            .as_deref(),
            Some("a-1.0-1-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64.whl")
        );
        assert_eq!(retagged_name("a-1.0.tar.gz", "x"), None);
        assert_eq!(retagged_name("a-1.0-py3-none.whl", "x"), None);
        assert_eq!(
            platform_tag_of("a-1.0-cp311-cp311-manylinux_2_34_s390x.whl"),
            Some("manylinux_2_34_s390x")
        );
    }

    #[test]
    fn tag_lines_are_one_per_python_abi_and_platform() {
        let text = "Wheel-Version: 1.0\nGenerator: setuptools (75.8.0)\nRoot-Is-Purelib: false\n\
                    Tag: cp311-cp311-manylinux_2_36_s390x\nTag: cp311-cp311-linux_s390x\n\
                    Tag: cp311-abi3-manylinux_2_36_s390x\n\n";
        assert_eq!(
            retag_wheel_metadata(text, "manylinux_2_17_s390x.manylinux2014_s390x"),
            "Wheel-Version: 1.0\nGenerator: setuptools (75.8.0)\nRoot-Is-Purelib: false\n\
             Tag: cp311-cp311-manylinux_2_17_s390x\nTag: cp311-cp311-manylinux2014_s390x\n\
             Tag: cp311-abi3-manylinux_2_17_s390x\nTag: cp311-abi3-manylinux2014_s390x\n\n"
        );
        // Line endings are kept, and re-tagging twice is re-tagging once.
        let crlf = "Wheel-Version: 1.0\r\nTag: py3-none-linux_s390x\r\n";
        let once = retag_wheel_metadata(crlf, "manylinux_2_34_s390x");
        assert_eq!(
            once,
            "Wheel-Version: 1.0\r\nTag: py3-none-manylinux_2_34_s390x\r\n"
        );
        assert_eq!(retag_wheel_metadata(&once, "manylinux_2_34_s390x"), once);
    }

    /// The empty file's sha256, as pip and `wheel` write it in RECORD.
    #[test]
    fn record_lines_use_urlsafe_base64_without_padding() {
        assert_eq!(
            record_line("a/WHEEL", b""),
            "a/WHEEL,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0"
        );
        assert_eq!(urlsafe_b64_nopad(b"\xfb\xff"), "-_8");
        assert_eq!(urlsafe_b64_nopad(b"abc"), "YWJj");
        assert_eq!(urlsafe_b64_nopad(b"a"), "YQ");
        let record =
            "p/__init__.py,sha256=x,1\np-1.dist-info/WHEEL,sha256=old,9\np-1.dist-info/RECORD,,\n";
        assert_eq!(
            retag_record(record, "p-1.dist-info/WHEEL", b"").unwrap(),
            "p/__init__.py,sha256=x,1\np-1.dist-info/WHEEL,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\np-1.dist-info/RECORD,,\n"
        );
        assert_eq!(retag_record(record, "q-1.dist-info/WHEEL", b""), None);
    }

    const WHEEL: &str = "Wheel-Version: 1.0\nGenerator: bdist_wheel (0.45.1)\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_36_s390x\n\n";

    /// A small wheel the way a build tool writes one: a stored and a deflated member, the
    /// dist-info last, RECORD holding WHEEL's hash.
    fn sample() -> Vec<u8> {
        let time = DateTime::from_date_and_time(1980, 1, 1, 0, 0, 0).unwrap();
        let deflated = SimpleFileOptions::default()
            .last_modified_time(time)
            .unix_permissions(0o755);
        let stored = deflated
            .compression_method(CompressionMethod::Stored)
            .unix_permissions(0o644);
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let members: [(&str, &[u8], SimpleFileOptions); 3] = [
            ("p/__init__.py", b"x = 1\n", stored),
            ("p/_c.so", &[7u8; 4000], deflated),
            ("p-1.0.dist-info/WHEEL", WHEEL.as_bytes(), stored),
        ];
        let mut record = String::new();
        for (name, bytes, options) in members {
            zip.start_file(name, options).unwrap();
            zip.write_all(bytes).unwrap();
            record.push_str(&record_line(name, bytes));
            record.push('\n');
        }
        record.push_str("p-1.0.dist-info/RECORD,,\n");
        zip.start_file("p-1.0.dist-info/RECORD", deflated).unwrap();
        zip.write_all(record.as_bytes()).unwrap();
        zip.finish().unwrap().into_inner()
    }

    fn retagged(input: &[u8], tag: &str) -> Vec<u8> {
        retag_archive(
            Path::new("p.whl"),
            Cursor::new(input),
            Cursor::new(Vec::new()),
            tag,
        )
        .unwrap()
        .into_inner()
    }

    fn member(zip: &[u8], name: &str) -> String {
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn archives_keep_order_times_and_compression_and_are_reproducible() {
        let input = sample();
        let tag = "manylinux_2_17_s390x.manylinux2014_s390x";
        let out = retagged(&input, tag);
        assert_eq!(out, retagged(&input, tag), "same input, same bytes");

        let wheel = member(&out, "p-1.0.dist-info/WHEEL");
        assert!(
            wheel.ends_with(
                "Tag: cp311-cp311-manylinux_2_17_s390x\nTag: cp311-cp311-manylinux2014_s390x\n\n"
            ),
            "{wheel}"
        );
        let record = member(&out, "p-1.0.dist-info/RECORD");
        assert!(
            record.contains(&record_line("p-1.0.dist-info/WHEEL", wheel.as_bytes())),
            "{record}"
        );
        // Every other RECORD line, and every other member, as it was.
        let old_record = member(&input, "p-1.0.dist-info/RECORD");
        let differs: Vec<_> = old_record
            .lines()
            .zip(record.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(differs.len(), 1, "{differs:?}");

        let mut a = zip::ZipArchive::new(Cursor::new(&input)).unwrap();
        let mut b = zip::ZipArchive::new(Cursor::new(&out)).unwrap();
        assert_eq!(a.len(), b.len());
        for i in 0..a.len() {
            let (x, y) = (a.by_index_raw(i).unwrap(), b.by_index_raw(i).unwrap());
            assert_eq!(x.name().unwrap(), y.name().unwrap());
            assert_eq!(x.compression(), y.compression(), "{:?}", x.name());
            assert_eq!(x.last_modified(), y.last_modified());
            assert_eq!(x.unix_mode(), y.unix_mode());
            if !x.name().unwrap().contains(".dist-info/") {
                assert_eq!(x.crc32(), y.crc32());
                assert_eq!(x.compressed_size(), y.compressed_size());
            }
        }
    }

    /// A wheel already tagged with several platforms (name and WHEEL) ends with exactly the
    /// new ones; re-tagging the result with the same tag changes nothing.
    #[test]
    fn a_wheel_with_several_tags_gets_exactly_the_new_ones() {
        let input = sample();
        let many = retagged(
            &input,
            "manylinux_2_17_s390x.manylinux2014_s390x.manylinux_2_36_s390x",
        );
        assert_eq!(
            member(&many, "p-1.0.dist-info/WHEEL")
                .lines()
                .filter(|l| l.starts_with("Tag:"))
                .count(),
            3
        );
        let once = retagged(&many, "manylinux_2_28_s390x");
        let tags: Vec<String> = member(&once, "p-1.0.dist-info/WHEEL")
            .lines()
            .filter(|l| l.starts_with("Tag:"))
            .map(str::to_owned)
            .collect();
        assert_eq!(tags, ["Tag: cp311-cp311-manylinux_2_28_s390x"]);
        assert_eq!(retagged(&once, "manylinux_2_28_s390x"), once);
        assert_eq!(
            retagged_name(
                "p-1.0-cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x.manylinux_2_36_s390x.whl",
                "manylinux_2_28_s390x"
            )
            .as_deref(),
            Some("p-1.0-cp311-cp311-manylinux_2_28_s390x.whl")
        );
    }

    #[test]
    fn files_are_written_under_the_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir
            .path()
            .join("p-1.0-cp311-cp311-manylinux_2_36_s390x.whl");
        fs_err::write(&src, sample()).unwrap();
        let out = dir.path().join("out");
        fs_err::create_dir(&out).unwrap();
        let path = retag(&src, "manylinux_2_34_s390x", &out).unwrap();
        assert_eq!(path, out.join("p-1.0-cp311-cp311-manylinux_2_34_s390x.whl"));
        let bytes = fs_err::read(&path).unwrap();
        assert!(
            member(&bytes, "p-1.0.dist-info/WHEEL")
                .contains("Tag: cp311-cp311-manylinux_2_34_s390x\n")
        );
        let err = retag(&dir.path().join("nope.zip"), "x", &out).unwrap_err();
        assert!(matches!(err, WheelError::NotAWheelName { .. }), "{err:?}");
    }
}
