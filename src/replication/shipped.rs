//! The `repro` binary a replication package ships, and what a replicator must know to run it.
//!
//! Owns: locating the running executable (the binary that makes the package), its sha256, the
//! target triple it was compiled for, and the C library it needs: the newest `GLIBC_*` symbol
//! version it references, read from the ELF's version-needs section (`.gnu.version_r`) with the
//! `object` crate. Deliberately does not own: where the package puts the binary or what `run.sh`
//! does with it (`package`, `runsh`), or the README's words (`readme`).

use std::path::PathBuf;

use repro_kind::diag::Failure;

/// The target triple this repro was compiled for (`TARGET` of its build script).
pub const TARGET: &str = env!("REPRO_TARGET");

/// The running `repro`, as a package ships it.
#[derive(Debug, Clone)]
pub struct Shipped {
    pub path: PathBuf,
    pub sha256: String,
    pub target: &'static str,
    pub libc: LibcNeed,
}

/// The C library a binary needs from the machine it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibcNeed {
    /// glibc, at least this version (`2.34`): the newest `GLIBC_` version of its symbols.
    Glibc(String),
    /// No versioned glibc symbol: statically linked or another libc.
    NoGlibcVersion,
    /// Not an ELF file this code reads (another platform): why.
    Unknown(String),
}

impl LibcNeed {
    /// For the README and run.sh: what the machine needs.
    pub fn describe(&self) -> String {
        match self {
            LibcNeed::Glibc(v) => format!("glibc {v} or newer"),
            LibcNeed::NoGlibcVersion => "no versioned glibc symbol (static or non-glibc)".into(),
            LibcNeed::Unknown(why) => format!("unknown ({why})"),
        }
    }
}

/// The running executable with its facts.
pub fn this_binary() -> Result<Shipped, Failure> {
    let path = std::env::current_exe()
        .map_err(|e| Failure::io("cannot find the running repro executable to ship it", &e))?;
    let bytes = std::fs::read(&path)
        .map_err(|e| Failure::io(format!("cannot read `{}`", path.display()), &e))?;
    let (sha256, _) = crate::replication::files::digests(bytes.as_slice())
        .map_err(|e| Failure::io(format!("cannot read `{}`", path.display()), &e))?;
    let libc = libc_need(&bytes);
    if let LibcNeed::Unknown(why) = &libc {
        tracing::warn!("cannot tell which libc `{}` needs: {why}", path.display());
    }
    Ok(Shipped {
        path,
        sha256,
        target: TARGET,
        libc,
    })
}

/// The newest glibc version an ELF file's symbols need. Other libraries' versions (`GCC_3.0` of
/// libgcc_s, `GLIBC_PRIVATE`) are ignored.
pub fn libc_need(elf: &[u8]) -> LibcNeed {
    match glibc_versions(elf) {
        Err(why) => LibcNeed::Unknown(why),
        Ok(versions) => versions
            .into_iter()
            .max()
            .map(|v| {
                let parts: Vec<String> = v.iter().map(u32::to_string).collect();
                LibcNeed::Glibc(parts.join("."))
            })
            .unwrap_or(LibcNeed::NoGlibcVersion),
    }
}

/// Every `GLIBC_x.y[.z]` the file's version-needs section names, as numbers.
fn glibc_versions(data: &[u8]) -> Result<Vec<Vec<u32>>, String> {
    let names = match object::FileKind::parse(data).map_err(|e| e.to_string())? {
        object::FileKind::Elf64 => needs::<object::elf::FileHeader64<object::Endianness>>(data)?,
        object::FileKind::Elf32 => needs::<object::elf::FileHeader32<object::Endianness>>(data)?,
        other => return Err(format!("a {other:?} file, not ELF")),
    };
    Ok(names
        .iter()
        .filter_map(|n| n.strip_prefix("GLIBC_"))
        .filter_map(|v| v.split('.').map(|p| p.parse::<u32>().ok()).collect())
        .collect())
}

/// The version names of every needed version (`vna_name`) of an ELF file.
fn needs<Elf: object::read::elf::FileHeader<Endian = object::Endianness>>(
    data: &[u8],
) -> Result<Vec<String>, String> {
    let err = |e: object::read::Error| e.to_string();
    let header = Elf::parse(data).map_err(err)?;
    let endian = header.endian().map_err(err)?;
    let sections = header.sections(endian, data).map_err(err)?;
    let mut names = Vec::new();
    let Some((mut needs, link)) = sections.gnu_verneed(endian, data).map_err(err)? else {
        return Ok(names);
    };
    let strings = sections.strings(endian, data, link).map_err(err)?;
    while let Some((_, mut aux)) = needs.next().map_err(err)? {
        while let Some(a) = aux.next().map_err(err)? {
            let name = a.name(endian, strings).map_err(err)?;
            names.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_elf() {
        assert!(matches!(libc_need(b"not a binary"), LibcNeed::Unknown(_)));
    }
}
