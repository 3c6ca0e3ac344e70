//! The page walker: translates a linear address under the current paging mode, checks
//! permissions, sets accessed/dirty bits, and reports #PF error codes as the SDM defines
//! them.
//!
//! It knows nothing of `CpuState`: the CPU hands it a [`PagingContext`] (the control
//! registers and CPL) and the kind of access. Paging-structure entries are read from and
//! written to guest RAM through [`GuestRam`].

use crate::{AccessKind, GuestRam};

/// CR0.WP: supervisor writes honour read-only pages.
pub const CR0_WP: u64 = 1 << 16;
/// CR0.PG.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PSE: 4 MiB pages in 32-bit paging.
pub const CR4_PSE: u64 = 1 << 4;
/// CR4.PAE.
pub const CR4_PAE: u64 = 1 << 5;
/// CR4.PGE: global pages.
pub const CR4_PGE: u64 = 1 << 7;
/// CR4.SMEP.
pub const CR4_SMEP: u64 = 1 << 20;
/// CR4.SMAP.
pub const CR4_SMAP: u64 = 1 << 21;
/// EFER.NXE.
pub const EFER_NXE: u64 = 1 << 11;
/// EFER.LMA.
pub const EFER_LMA: u64 = 1 << 10;

/// #PF error code bits.
pub mod error_code {
    /// The fault was a protection violation (the page was present).
    pub const PRESENT: u32 = 1 << 0;
    /// The access was a write.
    pub const WRITE: u32 = 1 << 1;
    /// The access was a user-mode access.
    pub const USER: u32 = 1 << 2;
    /// A reserved bit was set in a paging-structure entry.
    pub const RESERVED: u32 = 1 << 3;
    /// The access was an instruction fetch (reported when NX or SMEP is enabled).
    pub const FETCH: u32 = 1 << 4;
}

const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const ACCESSED: u64 = 1 << 5;
const DIRTY: u64 = 1 << 6;
const PS: u64 = 1 << 7;
const GLOBAL: u64 = 1 << 8;
const NX: u64 = 1 << 63;
/// Physical address width of the virtual CPU (CPUID 0x80000008 says 40 bits).
pub const PHYS_ADDR_BITS: u32 = 40;
const PHYS_MASK: u64 = ((1 << PHYS_ADDR_BITS) - 1) & !0xfff;

/// The paging mode the control registers select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingMode {
    /// CR0.PG = 0: linear = physical.
    Off,
    /// 32-bit paging (two levels of 4-byte entries, optional 4 MiB pages).
    Legacy,
    /// PAE paging (PDPT, PD, PT of 8-byte entries; 2 MiB pages).
    Pae,
    /// 4-level long-mode paging (2 MiB and 1 GiB pages).
    Long,
}

/// What the page walker needs to know about the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagingContext {
    /// CR0.
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// Current privilege level.
    pub cpl: u8,
    /// RFLAGS.AC (SMAP override for explicit supervisor accesses).
    pub ac: bool,
}

impl PagingContext {
    /// The paging mode these registers select.
    pub fn mode(&self) -> PagingMode {
        if self.cr0 & CR0_PG == 0 {
            PagingMode::Off
        } else if self.efer & EFER_LMA != 0 {
            PagingMode::Long
        } else if self.cr4 & CR4_PAE != 0 {
            PagingMode::Pae
        } else {
            PagingMode::Legacy
        }
    }
}

/// Who performs an access: the program at its CPL, or the CPU itself on the program's
/// behalf (descriptor-table and TSS reads are supervisor accesses whatever the CPL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// An access made by the instruction at the current CPL.
    Current,
    /// An implicit supervisor-mode access.
    Supervisor,
}

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Physical address of the byte.
    pub phys: u64,
    /// Size of the page that maps it (4 KiB, 2 MiB, 4 MiB or 1 GiB).
    pub page_size: u64,
    /// Writes are allowed for this privilege (and the dirty bit is set).
    pub writable: bool,
    /// Instruction fetches are allowed for this privilege.
    pub executable: bool,
    /// The mapping is global (survives CR3 writes when CR4.PGE is set).
    pub global: bool,
    /// The page is a user page (U/S set at every level).
    pub user: bool,
}

/// A page fault: the linear address and the error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFault {
    /// The faulting linear address (CR2).
    pub addr: u64,
    /// The #PF error code.
    pub error_code: u32,
}

/// Accumulated rights along a walk.
struct Rights {
    writable: bool,
    user: bool,
    nx: bool,
}

/// One level of the walk.
struct Level {
    /// Linear-address bit where this level's index starts.
    shift: u32,
    /// Whether a PS bit here maps a large page.
    large_ok: bool,
}

const LONG_LEVELS: [Level; 4] = [
    Level {
        shift: 39,
        large_ok: false,
    },
    Level {
        shift: 30,
        large_ok: true,
    },
    Level {
        shift: 21,
        large_ok: true,
    },
    Level {
        shift: 12,
        large_ok: false,
    },
];
const PAE_LEVELS: [Level; 3] = [
    Level {
        shift: 30,
        large_ok: false,
    },
    Level {
        shift: 21,
        large_ok: true,
    },
    Level {
        shift: 12,
        large_ok: false,
    },
];

/// Translates `linear` for an access of `kind` by `who`.
pub fn translate(
    ctx: &PagingContext,
    ram: &mut GuestRam,
    linear: u64,
    kind: AccessKind,
    who: Privilege,
) -> Result<Translation, PageFault> {
    match ctx.mode() {
        PagingMode::Off => Ok(Translation {
            phys: linear & 0xffff_ffff,
            page_size: 1 << 12,
            writable: true,
            executable: true,
            global: true,
            user: true,
        }),
        PagingMode::Legacy => walk_legacy(&Request::new(ctx, linear & 0xffff_ffff, kind, who), ram),
        PagingMode::Pae => {
            let request = Request::new(ctx, linear & 0xffff_ffff, kind, who);
            walk_wide(&request, ram, ctx.cr3 & 0xffff_ffe0, &PAE_LEVELS)
        }
        PagingMode::Long => walk_wide(
            &Request::new(ctx, linear, kind, who),
            ram,
            ctx.cr3 & PHYS_MASK,
            &LONG_LEVELS,
        ),
    }
}

/// One translation request: what is accessed, how, and by whom.
struct Request<'a> {
    ctx: &'a PagingContext,
    linear: u64,
    kind: AccessKind,
    who: Privilege,
    /// The error-code bits describing the access itself.
    bits: u32,
}

impl<'a> Request<'a> {
    fn new(ctx: &'a PagingContext, linear: u64, kind: AccessKind, who: Privilege) -> Self {
        let user = who == Privilege::Current && ctx.cpl == 3;
        Request {
            ctx,
            linear,
            kind,
            who,
            bits: access_bits(ctx, kind, user),
        }
    }

    /// A #PF for this access with `extra` error-code bits (P, RSVD).
    fn fault(&self, extra: u32) -> PageFault {
        PageFault {
            addr: self.linear,
            error_code: self.bits | extra,
        }
    }

    /// Completes the walk at a leaf `entry` mapping a `page_size` page at `frame`: checks
    /// the rights gathered on the way, then sets the accessed/dirty bits of the `used`
    /// entries (8 bytes wide or 4) and builds the translation.
    fn map(
        &self,
        ram: &mut GuestRam,
        rights: &Rights,
        (entry, page_size, frame): (u64, u64, u64),
        used: &[(u64, u64)],
        wide: bool,
    ) -> Result<Translation, PageFault> {
        check_rights(self.ctx, rights, self.kind, self.who)
            .map_err(|_| self.fault(error_code::PRESENT))?;
        let last = used.len() - 1;
        for (i, &(addr, value)) in used.iter().enumerate() {
            let mut updated = value | ACCESSED;
            if i == last && self.kind == AccessKind::Write {
                updated |= DIRTY;
            }
            if updated != value {
                write_entry(ram, addr, updated, wide);
            }
        }
        let dirty = entry & DIRTY != 0 || self.kind == AccessKind::Write;
        let writable = check_rights(self.ctx, rights, AccessKind::Write, self.who).is_ok() && dirty;
        let executable = check_rights(self.ctx, rights, AccessKind::Execute, self.who).is_ok();
        Ok(Translation {
            phys: frame | (self.linear & (page_size - 1)),
            page_size,
            writable,
            executable,
            global: entry & GLOBAL != 0 && self.ctx.cr4 & CR4_PGE != 0,
            user: rights.user,
        })
    }
}

/// The error-code bits that describe the access itself.
fn access_bits(ctx: &PagingContext, kind: AccessKind, user: bool) -> u32 {
    let mut bits = 0;
    if kind == AccessKind::Write {
        bits |= error_code::WRITE;
    }
    if user {
        bits |= error_code::USER;
    }
    // I/D is reported for fetches only where a fetch can be refused: NX under PAE/long
    // paging, or SMEP.
    let nx_paging = ctx.mode() != PagingMode::Legacy && ctx.efer & EFER_NXE != 0;
    if kind == AccessKind::Execute && (nx_paging || ctx.cr4 & CR4_SMEP != 0) {
        bits |= error_code::FETCH;
    }
    bits
}

fn read_entry(ram: &GuestRam, addr: u64, wide: bool) -> u64 {
    let mut bytes = [0u8; 8];
    let len = if wide { 8 } else { 4 };
    // An entry outside RAM reads as all ones (open bus), which faults as reserved/present.
    if ram.read_bytes(addr, &mut bytes[..len]).is_err() {
        return if wide { u64::MAX } else { u64::from(u32::MAX) };
    }
    u64::from_le_bytes(bytes)
}

fn write_entry(ram: &mut GuestRam, addr: u64, value: u64, wide: bool) {
    let len = if wide { 8 } else { 4 };
    // Writes of A/D bits to a table outside RAM are dropped, as on a bus with nothing there.
    let _ = ram.write_bytes(addr, &value.to_le_bytes()[..len]);
}

/// Reserved bits of a PAE/long-mode entry that are set in `entry`: address bits beyond
/// MAXPHYADDR, NX without EFER.NXE, the PAE PDPTE's reserved bits, large-page frame bits
/// below the page size (bit 12 is PAT), and PS in a PML4E.
fn reserved_bits(
    ctx: &PagingContext,
    entry: u64,
    level: &Level,
    large: bool,
    is_pdpte_pae: bool,
) -> u64 {
    let mut reserved = ((1u64 << 52) - 1) & !((1u64 << PHYS_ADDR_BITS) - 1);
    if ctx.efer & EFER_NXE == 0 {
        reserved |= NX;
    }
    if is_pdpte_pae {
        reserved |= 0xfff0_0000_0000_0000 | RW | US | 0x1e0;
    }
    if large {
        reserved |= ((1u64 << level.shift) - 1) & !0x1fff;
    }
    if level.shift == 39 {
        reserved |= PS;
    }
    entry & reserved
}

/// PAE and 4-level walks: 8-byte entries, `levels` from the root table at `root`.
fn walk_wide(
    request: &Request,
    ram: &mut GuestRam,
    root: u64,
    levels: &[Level],
) -> Result<Translation, PageFault> {
    let ctx = request.ctx;
    let linear = request.linear;
    let mut table = root;
    let mut rights = Rights {
        writable: true,
        user: true,
        nx: false,
    };
    let mut used: [(u64, u64); 4] = [(0, 0); 4];
    let mut count = 0;
    for (depth, level) in levels.iter().enumerate() {
        let is_pdpte_pae = ctx.mode() == PagingMode::Pae && depth == 0;
        let index = (linear >> level.shift) & if is_pdpte_pae { 3 } else { 511 };
        let entry_addr = table + index * 8;
        let entry = read_entry(ram, entry_addr, true);
        if entry & P == 0 {
            return Err(request.fault(0));
        }
        let large = level.large_ok && entry & PS != 0;
        if reserved_bits(ctx, entry, level, large, is_pdpte_pae) != 0 {
            return Err(request.fault(error_code::PRESENT | error_code::RESERVED));
        }
        // PAE PDPTEs are loaded into registers on hardware and get no accessed bit.
        if !is_pdpte_pae {
            used[count] = (entry_addr, entry);
            count += 1;
            rights.writable &= entry & RW != 0;
            rights.user &= entry & US != 0;
            rights.nx |= entry & NX != 0 && ctx.efer & EFER_NXE != 0;
        }
        if large || depth == levels.len() - 1 {
            let page_size = 1u64 << level.shift;
            let frame = entry & PHYS_MASK & !(page_size - 1);
            return request.map(
                ram,
                &rights,
                (entry, page_size, frame),
                &used[..count],
                true,
            );
        }
        table = entry & PHYS_MASK;
    }
    unreachable!("the last level always maps a page")
}

/// 32-bit paging: 4-byte entries, 4 KiB pages or (with CR4.PSE) 4 MiB pages.
fn walk_legacy(request: &Request, ram: &mut GuestRam) -> Result<Translation, PageFault> {
    let (ctx, linear) = (request.ctx, request.linear);
    let pde_addr = (ctx.cr3 & 0xffff_f000) + ((linear >> 22) << 2);
    let pde = read_entry(ram, pde_addr, false);
    if pde & P == 0 {
        return Err(request.fault(0));
    }
    let mut rights = Rights {
        writable: pde & RW != 0,
        user: pde & US != 0,
        nx: false,
    };
    if pde & PS != 0 && ctx.cr4 & CR4_PSE != 0 {
        // PSE-36: bits 20:13 of the PDE are physical-address bits 39:32.
        if pde & (1 << 21) != 0 {
            return Err(request.fault(error_code::PRESENT | error_code::RESERVED));
        }
        let frame = (pde & 0xffc0_0000) | ((pde >> 13) & 0xff) << 32;
        return request.map(
            ram,
            &rights,
            (pde, 1 << 22, frame),
            &[(pde_addr, pde)],
            false,
        );
    }
    let pte_addr = (pde & 0xffff_f000) + (((linear >> 12) & 0x3ff) << 2);
    let pte = read_entry(ram, pte_addr, false);
    if pte & P == 0 {
        return Err(request.fault(0));
    }
    rights.writable &= pte & RW != 0;
    rights.user &= pte & US != 0;
    request.map(
        ram,
        &rights,
        (pte, 1 << 12, pte & 0xffff_f000),
        &[(pde_addr, pde), (pte_addr, pte)],
        false,
    )
}

/// Whether `rights` allow the access (U/S, R/W with CR0.WP, NX, SMEP, SMAP).
fn check_rights(
    ctx: &PagingContext,
    rights: &Rights,
    kind: AccessKind,
    who: Privilege,
) -> Result<(), ()> {
    let user_access = who == Privilege::Current && ctx.cpl == 3;
    if user_access && !rights.user {
        return Err(());
    }
    match kind {
        AccessKind::Write if !rights.writable && (user_access || ctx.cr0 & CR0_WP != 0) => {
            return Err(())
        }
        AccessKind::Execute if rights.nx => return Err(()),
        AccessKind::Execute if !user_access && rights.user && ctx.cr4 & CR4_SMEP != 0 => {
            return Err(())
        }
        AccessKind::Read | AccessKind::Write
            if !user_access && rights.user && ctx.cr4 & CR4_SMAP != 0 =>
        {
            let explicit_with_ac = who == Privilege::Current && ctx.ac;
            if !explicit_with_ac {
                return Err(());
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
