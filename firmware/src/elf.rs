//! A minimal reader of ELF executables: the header and the PT_LOAD segments, for ELF32 and
//! ELF64 little-endian x86 images (a Linux vmlinux, a multiboot kernel). Segments are
//! loaded at their physical addresses (`p_paddr`), their BSS tails zeroed.

use crate::FirmwareError;
use softvisor_mmu::GuestRam;

/// "\x7fELF".
pub const MAGIC: &[u8; 4] = b"\x7fELF";
const CLASS_32: u8 = 1;
const CLASS_64: u8 = 2;
const LITTLE_ENDIAN: u8 = 1;
const EXEC: u16 = 2;
const MACHINE_386: u16 = 3;
const MACHINE_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;

/// ELF32 or ELF64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// 32-bit (i386).
    Elf32,
    /// 64-bit (x86-64).
    Elf64,
}

/// One loadable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Offset in the file.
    pub offset: u64,
    /// Physical load address.
    pub paddr: u64,
    /// Bytes in the file.
    pub filesz: u64,
    /// Bytes in memory (the rest is zeroed).
    pub memsz: u64,
}

/// A parsed executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Its class.
    pub class: Class,
    /// The entry point.
    pub entry: u64,
    /// The PT_LOAD segments.
    pub segments: Vec<Segment>,
}

fn bad(why: &'static str) -> FirmwareError {
    FirmwareError::BadElf(why)
}

fn field(bytes: &[u8], at: usize, len: usize) -> Result<u64, FirmwareError> {
    let slice = bytes
        .get(at..at + len)
        .ok_or(bad("a header runs past the end of the file"))?;
    let mut word = [0u8; 8];
    word[..len].copy_from_slice(slice);
    Ok(u64::from_le_bytes(word))
}

/// Whether `bytes` start like an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Parses the ELF header and program headers of an x86 executable.
pub fn parse(bytes: &[u8]) -> Result<Image, FirmwareError> {
    if !is_elf(bytes) || bytes.len() < 52 {
        return Err(bad("not an ELF file"));
    }
    if bytes[5] != LITTLE_ENDIAN {
        return Err(bad("not little-endian"));
    }
    let class = match bytes[4] {
        CLASS_32 => Class::Elf32,
        CLASS_64 => Class::Elf64,
        _ => return Err(bad("unknown ELF class")),
    };
    let wide = class == Class::Elf64;
    if field(bytes, 16, 2)? as u16 != EXEC {
        return Err(bad("not an executable (ET_EXEC)"));
    }
    let machine = field(bytes, 18, 2)? as u16;
    if machine != if wide { MACHINE_X86_64 } else { MACHINE_386 } {
        return Err(bad("not an x86 executable"));
    }
    let (entry, phoff, phentsize, phnum) = if wide {
        (
            field(bytes, 24, 8)?,
            field(bytes, 32, 8)?,
            field(bytes, 54, 2)?,
            field(bytes, 56, 2)?,
        )
    } else {
        (
            field(bytes, 24, 4)?,
            field(bytes, 28, 4)?,
            field(bytes, 42, 2)?,
            field(bytes, 44, 2)?,
        )
    };
    let mut segments = Vec::new();
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).map_err(|_| bad("bad e_phoff"))?;
        if field(bytes, at, 4)? as u32 != PT_LOAD {
            continue;
        }
        let segment = if wide {
            Segment {
                offset: field(bytes, at + 8, 8)?,
                paddr: field(bytes, at + 24, 8)?,
                filesz: field(bytes, at + 32, 8)?,
                memsz: field(bytes, at + 40, 8)?,
            }
        } else {
            Segment {
                offset: field(bytes, at + 4, 4)?,
                paddr: field(bytes, at + 12, 4)?,
                filesz: field(bytes, at + 16, 4)?,
                memsz: field(bytes, at + 20, 4)?,
            }
        };
        if segment.filesz > segment.memsz
            || segment
                .offset
                .checked_add(segment.filesz)
                .is_none_or(|end| end > bytes.len() as u64)
        {
            return Err(bad("a segment lies outside the file"));
        }
        segments.push(segment);
    }
    if segments.is_empty() {
        return Err(bad("no loadable segments"));
    }
    Ok(Image {
        class,
        entry,
        segments,
    })
}

impl Image {
    /// The end of the highest segment in memory.
    pub fn end(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.paddr + s.memsz)
            .max()
            .unwrap_or(0)
    }

    /// Copies the segments into `ram` at their physical addresses.
    pub fn load(&self, bytes: &[u8], ram: &mut GuestRam) -> Result<(), FirmwareError> {
        let ram_mib = ram.size() >> 20;
        let too_small = |_| FirmwareError::MemoryTooSmall(ram_mib);
        for s in &self.segments {
            if s.paddr
                .checked_add(s.memsz)
                .is_none_or(|end| end > ram.size())
            {
                return Err(FirmwareError::KernelTooLarge {
                    needed: s.paddr.saturating_add(s.memsz).div_ceil(1 << 20),
                    available: ram.size() >> 20,
                });
            }
            let data = &bytes[s.offset as usize..(s.offset + s.filesz) as usize];
            ram.write_bytes(s.paddr, data).map_err(too_small)?;
            let zeros = vec![0u8; (s.memsz - s.filesz) as usize];
            ram.write_bytes(s.paddr + s.filesz, &zeros)
                .map_err(too_small)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An ELF32 or ELF64 executable with one PT_LOAD of `code` at `paddr` (plus `bss`
    /// zeroed bytes), entry at `paddr`.
    pub(crate) fn executable(class: Class, paddr: u64, code: &[u8], bss: u64) -> Vec<u8> {
        let wide = class == Class::Elf64;
        let (ehsize, phsize) = if wide { (64, 56) } else { (52, 32) };
        let data_at = ehsize + phsize;
        let mut f = vec![0u8; data_at];
        f[..4].copy_from_slice(MAGIC);
        f[4] = if wide { CLASS_64 } else { CLASS_32 };
        f[5] = LITTLE_ENDIAN;
        f[6] = 1;
        let put = |f: &mut Vec<u8>, at: usize, len: usize, v: u64| {
            f[at..at + len].copy_from_slice(&v.to_le_bytes()[..len]);
        };
        put(&mut f, 16, 2, u64::from(EXEC));
        let machine = if wide { MACHINE_X86_64 } else { MACHINE_386 };
        put(&mut f, 18, 2, u64::from(machine));
        let size = code.len() as u64;
        if wide {
            put(&mut f, 24, 8, paddr);
            put(&mut f, 32, 8, ehsize as u64);
            put(&mut f, 54, 2, phsize as u64);
            put(&mut f, 56, 2, 1);
            let ph = ehsize;
            put(&mut f, ph, 4, u64::from(PT_LOAD));
            put(&mut f, ph + 8, 8, data_at as u64);
            put(&mut f, ph + 16, 8, 0xffff_ffff_8000_0000 + paddr);
            put(&mut f, ph + 24, 8, paddr);
            put(&mut f, ph + 32, 8, size);
            put(&mut f, ph + 40, 8, size + bss);
        } else {
            put(&mut f, 24, 4, paddr);
            put(&mut f, 28, 4, ehsize as u64);
            put(&mut f, 42, 2, phsize as u64);
            put(&mut f, 44, 2, 1);
            let ph = ehsize;
            put(&mut f, ph, 4, u64::from(PT_LOAD));
            put(&mut f, ph + 4, 4, data_at as u64);
            put(&mut f, ph + 8, 4, paddr);
            put(&mut f, ph + 12, 4, paddr);
            put(&mut f, ph + 16, 4, size);
            put(&mut f, ph + 20, 4, size + bss);
        }
        f.extend_from_slice(code);
        f
    }

    #[test]
    fn parses_and_loads_both_classes() {
        for class in [Class::Elf32, Class::Elf64] {
            let file = executable(class, 0x20_0000, &[0x90, 0xf4], 6);
            let image = parse(&file).unwrap();
            assert_eq!(
                (image.class, image.entry, image.end()),
                (class, 0x20_0000, 0x20_0008)
            );
            let mut ram = GuestRam::new(4 << 20).unwrap();
            ram.write_bytes(0x20_0002, &[0xaa; 6]).unwrap();
            image.load(&file, &mut ram).unwrap();
            let mut got = [0xffu8; 8];
            ram.read_bytes(0x20_0000, &mut got).unwrap();
            assert_eq!(got, [0x90, 0xf4, 0, 0, 0, 0, 0, 0], "code, then zeroed BSS");
        }
    }

    #[test]
    fn rejects_truncated_and_foreign_files() {
        let mut file = executable(Class::Elf64, 0x20_0000, &[0x90; 16], 0);
        file.truncate(file.len() - 4);
        assert_eq!(parse(&file), Err(bad("a segment lies outside the file")));
        let mut arm = executable(Class::Elf64, 0x20_0000, &[0x90], 0);
        arm[18] = 183;
        assert_eq!(parse(&arm), Err(bad("not an x86 executable")));
        assert_eq!(parse(b"\x7fELF"), Err(bad("not an ELF file")));
    }
}
