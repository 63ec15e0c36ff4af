//! Reading a wheel (PEP 427: a zip archive) and picking out its ELF files by their magic
//! bytes, whatever their names (extension modules, grafted `.libs/` libraries, executables).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::elf::{ElfFile, ElfProblem};
use crate::error::WheelError;

const ELF_MAGIC: [u8; 4] = *b"\x7fELF";

/// A wheel's ELF files, in archive order.
#[derive(Debug, Clone)]
pub struct Wheel {
    pub path: PathBuf,
    pub elf_files: Vec<ElfFile>,
}

/// Reads the wheel at `path` and parses every ELF file in it.
pub fn read_wheel(path: &Path) -> Result<Wheel, WheelError> {
    let file = fs_err::File::open(path).map_err(|source| WheelError::Open {
        path: path.to_owned(),
        source,
    })?;
    let zip_err = |source| WheelError::Zip {
        path: path.to_owned(),
        source,
    };
    let mut archive = zip::ZipArchive::new(file).map_err(zip_err)?;
    let mut elf_files = Vec::new();
    for index in 0..archive.len() {
        let mut member = archive.by_index(index).map_err(zip_err)?;
        if member.is_dir() {
            continue;
        }
        let name = member.name().map_err(zip_err)?.into_owned();
        let Some(bytes) = read_if_elf(&mut member).map_err(|source| WheelError::Member {
            path: path.to_owned(),
            member: name.clone(),
            source,
        })?
        else {
            continue;
        };
        elf_files.push(
            ElfFile::parse(&name, &bytes).map_err(|problem| match problem {
                ElfProblem::Parse(source) => WheelError::Elf {
                    path: path.to_owned(),
                    member: name.clone(),
                    source,
                },
                ElfProblem::UnknownMachine(machine) => WheelError::UnknownMachine {
                    path: path.to_owned(),
                    member: name.clone(),
                    machine,
                },
            })?,
        );
    }
    Ok(Wheel {
        path: path.to_owned(),
        elf_files,
    })
}

/// The whole member if it starts with the ELF magic, else `None` (having read four bytes).
fn read_if_elf(member: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(ELF_MAGIC.len());
    member
        .by_ref()
        .take(ELF_MAGIC.len() as u64)
        .read_to_end(&mut head)?;
    if head != ELF_MAGIC {
        return Ok(None);
    }
    member.read_to_end(&mut head)?;
    Ok(Some(head))
}
