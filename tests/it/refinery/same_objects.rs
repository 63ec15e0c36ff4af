//! The identity check of docs/toolchains.md ("Identity"): the ELF files of two trees, one
//! built with every compiler under qemu and one with the native compilers of a toolchain,
//! compared in this process (goblin) rather than by the root's binutils under qemu, which
//! takes hours over the thousands of objects in OpenBLAS's archive.
//!
//! What may differ, and nothing else:
//! - `.comment`: the compiler's version string (the cross gcc says `12.2.0-14`, the root's
//!   `12.2.0-14+deb12u1`);
//! - `.note.gnu.build-id`: a hash over the rest, so over `.comment` too;
//! - the packs' mount paths, `/opt/packs/<name>/<digest>`, wherever a string holds one: the
//!   two platforms' variants of a pack have different names and digests. String tables are
//!   compared with those paths mapped to one, and the sections that point into them (symbol
//!   tables, `.dynamic`, the line tables of `.debug_line`, whose include folders name the
//!   packs) decoded, names resolved.
//!
//! Archives are compared member by member, in order.

use std::path::{Path, PathBuf};

use goblin::elf::Elf;
use goblin::elf::dynamic::{DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME};
use goblin::elf::section_header::SHT_NOBITS;
use goblin::strtab::Strtab;

/// Sections whose differences are the compilers' own (see the module's doc).
const MAY_DIFFER: [&str; 2] = [".comment", ".note.gnu.build-id"];

/// Compares every `*.o`, `*.a`, `*.so` and `*.so.N` file below `a` with the file at the same
/// path below `b`. Returns how many ELF files (archive members counted one by one) are the
/// same, or the first difference, named.
pub fn same_objects(a: &Path, b: &Path) -> Result<usize, String> {
    let mut same = 0;
    for rel in object_files(a, Path::new("")) {
        let (fa, fb) = (a.join(&rel), b.join(&rel));
        let shown = rel.display().to_string();
        let da = fs_err::read(&fa).map_err(|e| e.to_string())?;
        let db = fs_err::read(&fb).map_err(|e| format!("MISSING {shown}: {e}"))?;
        if shown.ends_with(".a") {
            same += same_archives(&shown, &da, &db)?;
        } else {
            same_elves(&shown, &da, &db)?;
            same += 1;
        }
    }
    if same == 0 {
        return Err(format!("no ELF files below {}", a.display()));
    }
    Ok(same)
}

/// The object files below `dir`, as paths relative to the tree's top, sorted.
fn object_files(top: &Path, rel: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<_> = fs_err::read_dir(top.join(rel))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(fs_err::DirEntry::file_name);
    let mut out = Vec::new();
    for entry in entries {
        let rel = rel.join(entry.file_name());
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.extend(object_files(top, &rel));
        } else if kind.is_file()
            && (name.ends_with(".o")
                || name.ends_with(".a")
                || name.ends_with(".so")
                || name.contains(".so."))
        {
            out.push(rel);
        }
    }
    out
}

fn same_archives(shown: &str, da: &[u8], db: &[u8]) -> Result<usize, String> {
    let parse =
        |d| goblin::archive::Archive::parse(d).map_err(|e| format!("{shown}: not an archive: {e}"));
    let (aa, ab) = (parse(da)?, parse(db)?);
    if aa.len() != ab.len() {
        return Err(format!(
            "DIFF {shown}: {} members against {}",
            aa.len(),
            ab.len()
        ));
    }
    // Every member that differs is named, not only the first.
    let mut differ = Vec::new();
    for i in 0..aa.len() {
        let (ma, mb) = (aa.get_at(i).unwrap(), ab.get_at(i).unwrap());
        let name = ma.extended_name();
        if name != mb.extended_name() {
            return Err(format!(
                "DIFF {shown}: member {i} is `{name}` against `{}`",
                mb.extended_name()
            ));
        }
        fn bytes<'d>(d: &'d [u8], m: &goblin::archive::Member) -> &'d [u8] {
            &d[m.offset as usize..m.offset as usize + m.size()]
        }
        if let Err(e) = same_elves(&format!("{shown}({name})"), bytes(da, ma), bytes(db, mb)) {
            differ.push(e);
        }
    }
    if differ.is_empty() {
        Ok(aa.len())
    } else {
        Err(format!(
            "{} of {} members differ:\n{}",
            differ.len(),
            aa.len(),
            differ.join("\n")
        ))
    }
}

fn same_elves(shown: &str, da: &[u8], db: &[u8]) -> Result<(), String> {
    let parse = |d| Elf::parse(d).map_err(|e| format!("{shown}: not an ELF file: {e}"));
    let (ea, eb) = (parse(da)?, parse(db)?);
    if (ea.header.e_machine, ea.header.e_type, ea.entry)
        != (eb.header.e_machine, eb.header.e_type, eb.entry)
    {
        return Err(format!("DIFF {shown}: ELF header"));
    }
    let names = |e: &Elf| -> Vec<String> {
        e.section_headers
            .iter()
            .map(|s| e.shdr_strtab.get_at(s.sh_name).unwrap_or("?").to_string())
            .collect()
    };
    let (na, nb) = (names(&ea), names(&eb));
    if na != nb {
        return Err(format!("DIFF {shown}: sections {na:?} against {nb:?}"));
    }
    for (i, name) in na.iter().enumerate() {
        if MAY_DIFFER.contains(&name.as_str()) {
            continue;
        }
        let (sa, sb) = (&ea.section_headers[i], &eb.section_headers[i]);
        let same = if sa.sh_type == SHT_NOBITS {
            (sa.sh_type, sa.sh_size) == (sb.sh_type, sb.sh_size)
        } else {
            let content = |d: &'_ [u8], s: &goblin::elf::SectionHeader| -> Vec<u8> {
                s.file_range().map_or_else(Vec::new, |r| d[r].to_vec())
            };
            let (ca, cb) = (content(da, sa), content(db, sb));
            ca == cb
                || match name.as_str() {
                    ".strtab" | ".dynstr" | ".shstrtab" | ".debug_str" | ".debug_line_str" => {
                        mask_pack_paths(&ca) == mask_pack_paths(&cb)
                    }
                    ".debug_line" => match (line_rows(&ea, da), line_rows(&eb, db)) {
                        (Ok(ra), Ok(rb)) => ra == rb,
                        _ => false,
                    },
                    ".symtab" => symbols(&ea, false) == symbols(&eb, false),
                    ".dynsym" => symbols(&ea, true) == symbols(&eb, true),
                    ".dynamic" => dynamic(&ea) == dynamic(&eb),
                    _ => false,
                }
        };
        if !same {
            return Err(format!("DIFF {shown} {name}"));
        }
    }
    Ok(())
}

/// A symbol table decoded: name (pack paths mapped), value, size, type and binding,
/// visibility, and the name of its section.
fn symbols(e: &Elf, dynamic: bool) -> Vec<(Vec<u8>, u64, u64, u8, u8, String)> {
    let (syms, strtab) = if dynamic {
        (&e.dynsyms, &e.dynstrtab)
    } else {
        (&e.syms, &e.strtab)
    };
    syms.iter()
        .map(|s| {
            let section = e
                .section_headers
                .get(s.st_shndx)
                .and_then(|h| e.shdr_strtab.get_at(h.sh_name))
                .map_or_else(|| format!("#{}", s.st_shndx), str::to_string);
            (
                name(strtab, s.st_name),
                s.st_value,
                s.st_size,
                s.st_info,
                s.st_other,
                section,
            )
        })
        .collect()
}

/// `.dynamic` decoded: each entry's tag and value, or, for entries that name a string, the
/// string with pack paths mapped.
fn dynamic(e: &Elf) -> Vec<(u64, Vec<u8>)> {
    let Some(d) = &e.dynamic else {
        return Vec::new();
    };
    d.dyns
        .iter()
        .map(|x| match x.d_tag {
            DT_NEEDED | DT_SONAME | DT_RPATH | DT_RUNPATH => {
                (x.d_tag, name(&e.dynstrtab, x.d_val as usize))
            }
            // Addresses and sizes that follow from the string table's length.
            goblin::elf::dynamic::DT_STRSZ => (x.d_tag, Vec::new()),
            _ => (x.d_tag, x.d_val.to_le_bytes().to_vec()),
        })
        .collect()
}

/// One row of a line table: the file's path (its folder joined, pack paths mapped), the
/// address, line and column, and whether it starts a statement or ends a sequence.
type LineRow = (Vec<u8>, u64, u64, u64, bool, bool);

/// Every row of every line program of `e` (whose bytes are `d`), unit by unit: what
/// `readelf --debug-dump=decodedline` prints.
fn line_rows(e: &Elf, d: &[u8]) -> Result<Vec<LineRow>, gimli::Error> {
    use gimli::{ColumnType, EndianSlice, RunTimeEndian};
    let endian = if e.little_endian {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let section = |id: gimli::SectionId| -> Result<EndianSlice<'_, RunTimeEndian>, gimli::Error> {
        let bytes = e
            .section_headers
            .iter()
            .find(|s| e.shdr_strtab.get_at(s.sh_name) == Some(id.name()))
            .and_then(goblin::elf::SectionHeader::file_range)
            .map_or(&[][..], |r| &d[r]);
        Ok(EndianSlice::new(bytes, endian))
    };
    let dwarf = gimli::Dwarf::load(section)?;
    let mut rows = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let Some(program) = unit.line_program.clone() else {
            continue;
        };
        let mut program = program.rows();
        while let Some((header, row)) = program.next_row()? {
            let mut path = Vec::new();
            if let Some(file) = row.file(header) {
                if let Some(dir) = file.directory(header) {
                    path.extend_from_slice(dwarf.attr_string(&unit, dir)?.slice());
                    path.push(b'/');
                }
                path.extend_from_slice(dwarf.attr_string(&unit, file.path_name())?.slice());
            }
            let column = match row.column() {
                ColumnType::LeftEdge => 0,
                ColumnType::Column(c) => c.get(),
            };
            rows.push((
                mask_pack_paths(&path),
                row.address(),
                row.line().map_or(0, std::num::NonZero::get),
                column,
                row.is_stmt(),
                row.end_sequence(),
            ));
        }
    }
    Ok(rows)
}

fn name(strtab: &Strtab, at: usize) -> Vec<u8> {
    mask_pack_paths(strtab.get_at(at).unwrap_or("?").as_bytes())
}

/// `bytes` with every `/opt/packs/<name>/<hex digest>` written as `/opt/packs/P`.
fn mask_pack_paths(bytes: &[u8]) -> Vec<u8> {
    const PACKS: &[u8] = b"/opt/packs/";
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(PACKS) {
            let mut j = i + PACKS.len();
            while j < bytes.len()
                && (bytes[j].is_ascii_alphanumeric() || b"._-".contains(&bytes[j]))
            {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'/' {
                let mut k = j + 1;
                while k < bytes.len() && bytes[k].is_ascii_hexdigit() {
                    k += 1;
                }
                if k > j + 1 {
                    out.extend_from_slice(b"/opt/packs/P");
                    i = k;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Builds `t.so` with `-g` in `dir/src` (the same folder every time, so that only the pack
    /// differs), including `h.h` (holding `header`) from the absolute folder `dir/src/<pack>`,
    /// and returns a folder `dir/<name>` holding the library alone.
    fn library(dir: &Path, name: &str, pack: &str, header: &str) -> std::path::PathBuf {
        let src = dir.join("src");
        let _ = fs_err::remove_dir_all(&src);
        let include = src.join(pack);
        fs_err::create_dir_all(&include).unwrap();
        fs_err::write(include.join("h.h"), header).unwrap();
        fs_err::write(
            src.join("t.c"),
            "#include <h.h>\nint api(int x) { return twice(x) + 1; }\n",
        )
        .unwrap();
        let status = std::process::Command::new("gcc")
            .current_dir(&src)
            .args(["-shared", "-fPIC", "-g", "-O0", "-o", "t.so", "t.c", "-I"])
            .arg(&include)
            .status()
            .expect("gcc must be installed for the comparator's tests");
        assert!(status.success(), "gcc failed in {}", src.display());
        let out = dir.join(name);
        fs_err::create_dir_all(&out).unwrap();
        fs_err::copy(src.join("t.so"), out.join("t.so")).unwrap();
        out
    }

    const HEADER: &str = "static inline int twice(int x) {\n    return 2 * x;\n}\n";

    /// The line table is decoded: the header's rows name it with the pack path mapped, at its
    /// own lines.
    #[test]
    fn line_tables_are_decoded_with_pack_paths_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let lib = library(dir.path(), "a", "opt/packs/yaml/0a1b2c/include", HEADER);
        let bytes = fs_err::read(lib.join("t.so")).unwrap();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        let rows = super::line_rows(&elf, &bytes).unwrap();
        let header_lines: Vec<u64> = rows
            .iter()
            .filter(|r| r.0.ends_with(b"/src/opt/packs/P/include/h.h"))
            .map(|r| r.2)
            .collect();
        assert!(header_lines.contains(&2), "{rows:?}");
        assert!(
            rows.iter().any(|r| r.0.ends_with(b"t.c") && r.2 == 2),
            "{rows:?}"
        );
    }

    /// One source built against two packs' mount paths (other names, other lengths) holds the
    /// same objects; a header moved down one line does not.
    #[test]
    fn pack_paths_are_the_only_difference_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let a = library(dir.path(), "a", "opt/packs/yaml/0a1b2c/include", HEADER);
        let b = library(
            dir.path(),
            "b",
            "opt/packs/yaml-s390x-native-compilers/9f8e7d6c5b4a/include",
            HEADER,
        );
        let moved = library(
            dir.path(),
            "c",
            "opt/packs/yaml/0a1b2c/include",
            &format!("\n{HEADER}"),
        );
        assert_eq!(super::same_objects(&a, &b), Ok(1));
        let differ = super::same_objects(&a, &moved);
        assert!(differ.is_err(), "{differ:?}");
    }

    #[test]
    fn pack_paths_are_mapped_to_one() {
        assert_eq!(
            super::mask_pack_paths(b"-L/opt/packs/openblas-s390x-native-compilers/0a9f/lib:/usr"),
            b"-L/opt/packs/P/lib:/usr"
        );
        assert_eq!(
            super::mask_pack_paths(b"/opt/packs/libyaml/"),
            b"/opt/packs/libyaml/"
        );
    }
}
