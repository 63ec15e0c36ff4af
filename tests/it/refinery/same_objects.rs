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
//!   tables, `.dynamic`) decoded, names resolved.
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
                    ".strtab" | ".dynstr" | ".shstrtab" => {
                        mask_pack_paths(&ca) == mask_pack_paths(&cb)
                    }
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
