//! The memory a real machine's CPU sees: RAM and MMIO windows in one physical address space,
//! reached through the page walker and the software TLB, with code-page tracking for the
//! JIT's self-modifying-code detection.

use crate::bus::Bus;
use crate::paging::{self, PagingContext, Privilege, Translation, CR4_PGE};
use crate::tlb::{tlb_set, Tlb, TlbFill};
use crate::{fill_repeated, AccessKind, CodeWrite, GuestRam, MemFault, Memory, PAGE_SIZE};

/// RAM, MMIO, paging and the TLB of one vCPU.
pub struct SystemMemory {
    /// Guest RAM at physical address 0.
    pub ram: GuestRam,
    /// MMIO windows (addresses outside RAM).
    pub mmio: Bus,
    /// The software TLB (boxed: about 42 KiB). Kernel translations of user pages under
    /// SMAP go to its AC set ([`crate::tlb::SUPERVISOR_AC_SET`]): without them every
    /// byte of copy_to_user walked the page tables, and with them in the AC set translated
    /// copy loops probe them inline.
    pub tlb: Box<Tlb>,
    paging: PagingContext,
    /// One bit per RAM page: the page holds translated code.
    code_pages: Vec<u64>,
    /// Code pages written since the last drain, with the bytes written in each.
    written_code: Vec<CodeWrite>,
    /// The pages the last drain stopped tracking: no TLB entry has let a write through to
    /// them since (see [`Memory::track_code_page`]).
    just_released: Vec<u64>,
    /// An access reached MMIO since [`Memory::take_side_exit`] last looked.
    mmio_touched: bool,
}

/// Where a physical page lives.
enum Target {
    Ram(u64),
    Mmio(u64),
}

impl SystemMemory {
    /// Memory with paging off.
    pub fn new(ram: GuestRam, mmio: Bus) -> Self {
        let pages = ram.size().div_ceil(PAGE_SIZE) as usize;
        Self {
            ram,
            mmio,
            tlb: Tlb::new(),
            paging: PagingContext::default(),
            code_pages: vec![0; pages.div_ceil(64)],
            written_code: Vec::new(),
            just_released: Vec::new(),
            mmio_touched: false,
        }
    }

    /// The current paging context.
    pub fn paging(&self) -> &PagingContext {
        &self.paging
    }

    /// Marks the RAM page holding `phys` as holding translated code: writes to it now take
    /// the slow path and are reported by [`Memory::take_written_code`].
    pub fn mark_code_page(&mut self, phys: u64) {
        if self.set_code_bit(phys) {
            self.tlb.protect_phys_page(phys & !(PAGE_SIZE - 1));
        }
    }

    /// Sets the code bit of `phys`'s page, if it is in RAM; returns whether it is.
    fn set_code_bit(&mut self, phys: u64) -> bool {
        let page = phys / PAGE_SIZE;
        let word = self.code_pages.get_mut((page / 64) as usize);
        word.map(|word| *word |= 1 << (page % 64)).is_some()
    }

    /// Unmarks a code page (its blocks were dropped).
    pub fn unmark_code_page(&mut self, phys: u64) {
        let page = phys / PAGE_SIZE;
        if let Some(word) = self.code_pages.get_mut((page / 64) as usize) {
            *word &= !(1 << (page % 64));
        }
    }

    /// Records a write of `len` bytes at `phys`, within one tracked code page.
    fn note_code_write(&mut self, phys: u64, len: u64) {
        let page = phys & !(PAGE_SIZE - 1);
        let end = phys + len;
        match self.written_code.iter_mut().find(|w| w.page == page) {
            Some(w) => {
                w.start = w.start.min(phys);
                w.end = w.end.max(end);
            }
            None => self.written_code.push(CodeWrite {
                page,
                start: phys,
                end,
            }),
        }
    }

    fn is_code_page(&self, phys: u64) -> bool {
        let page = phys / PAGE_SIZE;
        self.code_pages
            .get((page / 64) as usize)
            .is_some_and(|w| w & (1 << (page % 64)) != 0)
    }

    /// Translates `linear` (fast path first) and returns the physical address.
    fn translate(
        &mut self,
        linear: u64,
        kind: AccessKind,
        who: Privilege,
    ) -> Result<u64, MemFault> {
        // Implicit supervisor accesses (descriptor tables) look in set 0 and are never
        // cached (see `fill_tlb`), so SMAP never lets them through a cached user page.
        let mode = if who == Privilege::Supervisor {
            0
        } else {
            tlb_set(&self.paging)
        };
        if let Some(host) = self.tlb.lookup(mode, linear, kind) {
            return Ok(host.wrapping_sub(self.ram_base()));
        }
        let t = paging::translate(&self.paging, &mut self.ram, linear, kind, who).map_err(|f| {
            MemFault {
                addr: f.addr,
                kind,
                error_code: f.error_code,
            }
        })?;
        self.fill_tlb(mode, linear, &t, who);
        Ok(t.phys)
    }

    fn ram_base(&self) -> u64 {
        self.ram.slice(0, 0).map_or(0, |s| s.as_ptr() as u64)
    }

    /// Caches a RAM translation in set `mode`. MMIO pages and implicit supervisor accesses
    /// are left uncached.
    fn fill_tlb(&mut self, mode: usize, linear: u64, t: &Translation, who: Privilege) {
        let phys_page = t.phys & !(PAGE_SIZE - 1);
        if phys_page >= self.ram.size() || who == Privilege::Supervisor {
            return;
        }
        // An entry may now write to a page the last drain released.
        self.just_released.clear();
        let fill = TlbFill {
            linear,
            phys_page,
            host_page: self.ram_base().wrapping_add(phys_page),
            read: true,
            write: t.writable && !self.is_code_page(phys_page),
            exec: t.executable,
            page_size: t.page_size,
            global: t.global,
        };
        self.tlb.fill(mode, &fill);
    }

    fn flush_all_tlbs(&mut self, keep_global: bool) {
        if keep_global {
            self.tlb.flush_non_global();
        } else {
            self.tlb.flush_all();
        }
    }

    fn target(&self, phys: u64) -> Target {
        if phys < self.ram.size() {
            Target::Ram(phys)
        } else {
            Target::Mmio(phys)
        }
    }

    /// Splits `[addr, addr+len)` at page boundaries and translates every piece before any
    /// is accessed, so a fault on the second page leaves the first untouched.
    fn translate_range(
        &mut self,
        addr: u64,
        len: usize,
        kind: AccessKind,
        who: Privilege,
    ) -> Result<[(u64, usize); 2], MemFault> {
        let first_len = ((PAGE_SIZE - (addr & (PAGE_SIZE - 1))) as usize).min(len);
        let first = self.translate(addr, kind, who)?;
        let second = if first_len < len {
            self.translate(addr.wrapping_add(first_len as u64), kind, who)?
        } else {
            0
        };
        Ok([(first, first_len), (second, len - first_len)])
    }

    fn read_as(
        &mut self,
        addr: u64,
        buf: &mut [u8],
        kind: AccessKind,
        who: Privilege,
    ) -> Result<(), MemFault> {
        let pieces = self.translate_range(addr, buf.len(), kind, who)?;
        let mut at = 0;
        for (phys, len) in pieces {
            let part = &mut buf[at..at + len];
            match self.target(phys) {
                Target::Ram(p) => {
                    if self.ram.read_bytes(p, part).is_err() {
                        part.fill(0xff);
                    }
                }
                Target::Mmio(p) => {
                    self.mmio_touched = true;
                    self.mmio.read(p, part);
                }
            }
            at += len;
        }
        Ok(())
    }

    /// The pieces of `len` bytes at `addr` (see `translate_range`, with the access's side
    /// effects on the page tables) when all of them are RAM and, for a write, no tracked
    /// code page; `None` otherwise.
    fn plain_ram_pieces(
        &mut self,
        addr: u64,
        len: usize,
        kind: AccessKind,
    ) -> Option<[(u64, usize); 2]> {
        let pieces = self
            .translate_range(addr, len, kind, Privilege::Current)
            .ok()?;
        let plain = pieces
            .iter()
            .filter(|&&(_, len)| len > 0)
            .all(|&(phys, len)| {
                let in_ram = phys + len as u64 <= self.ram.size();
                in_ram && (kind != AccessKind::Write || !self.is_code_page(phys))
            });
        plain.then_some(pieces)
    }

    fn write_as(&mut self, addr: u64, data: &[u8], who: Privilege) -> Result<(), MemFault> {
        let pieces = self.translate_range(addr, data.len(), AccessKind::Write, who)?;
        let mut at = 0;
        for (phys, len) in pieces {
            let part = &data[at..at + len];
            match self.target(phys) {
                Target::Ram(p) => {
                    if self.is_code_page(p) {
                        self.note_code_write(p, len as u64);
                    }
                    let _ = self.ram.write_bytes(p, part);
                }
                Target::Mmio(p) => {
                    self.mmio_touched = true;
                    self.mmio.write(p, part);
                }
            }
            at += len;
        }
        Ok(())
    }
}

impl SystemMemory {
    /// The RAM bytes of a `size`-byte explicit access at `linear` when the TLB holds its
    /// page for `kind` and the access stays in that page: exactly what `read_as` and
    /// `write_as` would touch, with nothing else to do (a TLB hit walks nothing, a tagged
    /// page is RAM, and a page with a write tag holds no tracked code).
    fn tlb_hit_bytes(&mut self, linear: u64, size: usize, kind: AccessKind) -> Option<&mut [u8]> {
        if (linear & (PAGE_SIZE - 1)) as usize + size > PAGE_SIZE as usize {
            return None;
        }
        let host = self.tlb.lookup(tlb_set(&self.paging), linear, kind)?;
        let phys = host.wrapping_sub(self.ram_base());
        self.ram.slice_mut(phys, size)
    }
}

impl Memory for SystemMemory {
    fn read(&mut self, addr: u64, buf: &mut [u8], kind: AccessKind) -> Result<(), MemFault> {
        self.read_as(addr, buf, kind, Privilege::Current)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemFault> {
        self.write_as(addr, data, Privilege::Current)
    }

    // The interpreter's scalar accesses: on a TLB hit, a fixed-size little-endian copy
    // instead of the general piecewise path (whose runtime-length copies were a host
    // `memmove` call each).
    fn read_sized(&mut self, addr: u64, size: usize) -> Result<u64, MemFault> {
        let Some(bytes) = self.tlb_hit_bytes(addr, size, AccessKind::Read) else {
            let mut bytes = [0u8; 8];
            self.read_as(
                addr,
                &mut bytes[..size],
                AccessKind::Read,
                Privilege::Current,
            )?;
            return Ok(u64::from_le_bytes(bytes));
        };
        Ok(match bytes.len() {
            1 => u64::from(bytes[0]),
            2 => u64::from(u16::from_le_bytes([bytes[0], bytes[1]])),
            4 => u64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
            8 => u64::from_le_bytes(<[u8; 8]>::try_from(&bytes[..]).unwrap_or_default()),
            _ => {
                let mut wide = [0u8; 8];
                wide[..bytes.len()].copy_from_slice(bytes);
                u64::from_le_bytes(wide)
            }
        })
    }

    fn write_sized(&mut self, addr: u64, size: usize, value: u64) -> Result<(), MemFault> {
        let bytes = value.to_le_bytes();
        match self.tlb_hit_bytes(addr, size, AccessKind::Write) {
            Some(ram) => match ram.len() {
                1 => ram[0] = bytes[0],
                2 => ram.copy_from_slice(&bytes[..2]),
                4 => ram.copy_from_slice(&bytes[..4]),
                8 => ram.copy_from_slice(&bytes),
                n => ram.copy_from_slice(&bytes[..n]),
            },
            None => self.write_as(addr, &bytes[..size], Privilege::Current)?,
        }
        Ok(())
    }

    fn fetch(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize, MemFault> {
        // Fetch what the first page holds; continue into the next only if it translates.
        let first_len = ((PAGE_SIZE - (addr & (PAGE_SIZE - 1))) as usize).min(buf.len());
        self.read_as(
            addr,
            &mut buf[..first_len],
            AccessKind::Execute,
            Privilege::Current,
        )?;
        if first_len < buf.len() {
            let next = addr.wrapping_add(first_len as u64);
            if self
                .read_as(
                    next,
                    &mut buf[first_len..],
                    AccessKind::Execute,
                    Privilege::Current,
                )
                .is_err()
            {
                return Ok(first_len);
            }
        }
        Ok(buf.len())
    }

    fn read_supervisor(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        self.read_as(addr, buf, AccessKind::Read, Privilege::Supervisor)
    }

    fn write_supervisor(&mut self, addr: u64, data: &[u8]) -> Result<(), MemFault> {
        self.write_as(addr, data, Privilege::Supervisor)
    }

    fn set_paging(&mut self, ctx: &PagingContext) {
        let old = self.paging;
        self.paging = *ctx;
        let structural = old.cr0 != ctx.cr0 || old.cr4 != ctx.cr4 || old.efer != ctx.efer;
        if structural || (old.cr3 != ctx.cr3 && ctx.cr4 & CR4_PGE == 0) {
            self.flush_all_tlbs(false);
        } else if old.cr3 != ctx.cr3 {
            self.flush_all_tlbs(true);
        }
    }

    fn code_address(&mut self, linear: u64) -> Option<u64> {
        let phys = self
            .translate(linear, AccessKind::Execute, Privilege::Current)
            .ok()?;
        if phys >= self.ram.size() {
            return None;
        }
        if !self.is_code_page(phys) {
            self.mark_code_page(phys);
        }
        Some(phys)
    }

    fn take_written_code(&mut self) -> Vec<CodeWrite> {
        let written = std::mem::take(&mut self.written_code);
        self.just_released.clear();
        for w in &written {
            self.unmark_code_page(w.page);
            self.just_released.push(w.page);
        }
        written
    }

    fn track_code_page(&mut self, phys: u64) {
        let page = phys & !(PAGE_SIZE - 1);
        if self.just_released.contains(&page) {
            // Tracked until the drain, and no access has filled the TLB since: no entry
            // can write to it, so the bit alone tracks it again (a page a kernel patches
            // many times had each write scan the whole TLB).
            self.set_code_bit(page);
        } else if phys < self.ram.size() {
            self.mark_code_page(phys);
        }
    }

    fn fast_tlb(&mut self) -> Option<&mut Tlb> {
        Some(&mut self.tlb)
    }

    fn is_ram(&mut self, linear: u64, kind: AccessKind) -> bool {
        self.translate(linear, kind, Privilege::Current)
            .is_ok_and(|phys| phys < self.ram.size())
    }

    fn read_plain(&mut self, addr: u64, size: usize) -> Option<u64> {
        let pieces = self.plain_ram_pieces(addr, size, AccessKind::Read)?;
        let mut bytes = [0u8; 8];
        let mut at = 0;
        for (phys, len) in pieces {
            self.ram.read_bytes(phys, &mut bytes[at..at + len]).ok()?;
            at += len;
        }
        Some(u64::from_le_bytes(bytes))
    }

    fn write_plain(&mut self, addr: u64, size: usize, value: u64) -> bool {
        let Some(pieces) = self.plain_ram_pieces(addr, size, AccessKind::Write) else {
            return false;
        };
        let bytes = value.to_le_bytes();
        let mut at = 0;
        for (phys, len) in pieces {
            if self.ram.write_bytes(phys, &bytes[at..at + len]).is_err() {
                return false;
            }
            at += len;
        }
        true
    }

    fn copy_plain(&mut self, src: u64, dst: u64, len: usize) -> bool {
        let Some([(from, _), (_, 0)]) = self.plain_ram_pieces(src, len, AccessKind::Read) else {
            return false;
        };
        let Some([(to, _), (_, 0)]) = self.plain_ram_pieces(dst, len, AccessKind::Write) else {
            return false;
        };
        // A forward copy onto a higher overlapping address repeats the source's start,
        // which a move does not: that one is left to the caller's element path. Onto a
        // lower one (memmove's forward case, `rep movsb` in Linux's memmove) the two agree.
        let repeats = from < to && to < from + len as u64;
        !repeats && self.ram.copy(from, to, len)
    }

    fn fill_plain(&mut self, dst: u64, pattern: &[u8], len: usize) -> bool {
        let Some([(to, _), (_, 0)]) = self.plain_ram_pieces(dst, len, AccessKind::Write) else {
            return false;
        };
        let Some(bytes) = self.ram.slice_mut(to, len) else {
            return false;
        };
        fill_repeated(bytes, pattern);
        true
    }

    fn take_side_exit(&mut self) -> bool {
        std::mem::take(&mut self.mmio_touched) || !self.written_code.is_empty()
    }

    fn invalidate_page(&mut self, linear: u64) {
        self.tlb.flush_page(linear);
    }

    fn flush_tlb(&mut self) {
        self.flush_all_tlbs(self.paging.cr4 & CR4_PGE != 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::{CR0_PG, CR0_WP, CR4_PAE, CR4_SMAP, EFER_LMA, EFER_NXE};
    use crate::tlb::SUPERVISOR_AC_SET;

    const PT_FLAGS: u64 = 7;

    /// Long-mode identity map of the first 2 MiB with 4 KiB pages, plus linear 0x40_0000
    /// -> physical 0x5000 (a second mapping of that page).
    fn machine() -> SystemMemory {
        let mut ram = GuestRam::new(0x40_0000).unwrap();
        let put =
            |ram: &mut GuestRam, a: u64, v: u64| ram.write_bytes(a, &v.to_le_bytes()).unwrap();
        put(&mut ram, 0x1000, 0x2000 | PT_FLAGS);
        put(&mut ram, 0x2000, 0x3000 | PT_FLAGS);
        put(&mut ram, 0x3000, 0x4000 | PT_FLAGS);
        put(&mut ram, 0x3000 + 16, 0x8000 | PT_FLAGS);
        for i in 0..512u64 {
            put(&mut ram, 0x4000 + 8 * i, (i << 12) | PT_FLAGS | 0x60);
        }
        put(&mut ram, 0x8000, 0x5000 | PT_FLAGS | 0x60);
        let mut mem = SystemMemory::new(ram, Bus::new());
        let ctx = PagingContext {
            cr0: CR0_PG | CR0_WP | 1,
            cr3: 0x1000,
            cr4: CR4_PAE,
            efer: EFER_LMA | EFER_NXE,
            cpl: 0,
            ac: false,
        };
        mem.set_paging(&ctx);
        mem
    }

    #[test]
    fn paged_accesses_and_tlb_fill() {
        let mut mem = machine();
        mem.write_u32(0x5010, 0xdead_beef).unwrap();
        assert_eq!(mem.read_u32(0x40_0010).unwrap(), 0xdead_beef);
        assert!(mem.tlb.lookup(0, 0x40_0010, AccessKind::Read).is_some());
        let fault = mem.read_u8(0x60_0000).unwrap_err();
        assert_eq!((fault.addr, fault.error_code), (0x60_0000, 0));
    }

    #[test]
    fn scalar_accesses_on_tlb_hits_match_the_general_path() {
        let mut mem = machine();
        // Fill the TLB for both pages (reads, then writes of dirty pages), then access
        // every size at offsets inside a page and across into the next.
        for addr in [0x6000u64, 0x7000] {
            mem.read_u8(addr).unwrap();
            mem.write_u8(addr, 0).unwrap();
        }
        for (offset, size) in [
            (0x10, 1),
            (0x21, 2),
            (0x33, 4),
            (0x48, 8),
            (0xffd, 8),
            (0xfff, 2),
        ] {
            let addr = 0x6000 + offset;
            let value = 0x8877_6655_4433_2211u64 >> (64 - 8 * size);
            mem.write_sized(addr, size, value).unwrap();
            let mut general = [0u8; 8];
            mem.read(addr, &mut general[..size], AccessKind::Read)
                .unwrap();
            assert_eq!(u64::from_le_bytes(general), value, "{addr:#x}/{size}");
            mem.write(addr, &(!value).to_le_bytes()[..size]).unwrap();
            let mask = u64::MAX >> (64 - 8 * size);
            assert_eq!(mem.read_sized(addr, size).unwrap(), !value & mask);
        }
    }

    #[test]
    fn kernel_translations_of_user_pages_under_smap_are_cached_for_ac_only() {
        let mut mem = machine();
        let smap = PagingContext {
            cr4: CR4_PAE | CR4_SMAP,
            ..*mem.paging()
        };
        mem.set_paging(&smap);
        assert!(mem.read_u8(0x6000).is_err(), "SMAP without AC faults");
        mem.set_paging(&PagingContext { ac: true, ..smap });
        mem.write_u8(0x6000, 5).unwrap();
        mem.read_u8(0x7000).unwrap();
        assert!(
            mem.tlb.lookup(0, 0x6000, AccessKind::Read).is_none(),
            "not in the supervisor set, which code running without AC probes"
        );
        for page in [0x6000, 0x7000] {
            assert!(
                mem.tlb
                    .lookup(SUPERVISOR_AC_SET, page, AccessKind::Read)
                    .is_some(),
                "in the AC set, which code running with AC probes"
            );
        }
        // Unmapping without INVLPG: the cached translation still serves, as on hardware.
        mem.write_u64(0x4000 + 8 * 6, 0).unwrap();
        assert_eq!(mem.read_u8(0x6000).unwrap(), 5);
        mem.set_paging(&smap);
        assert!(
            mem.read_u8(0x6000).is_err(),
            "the cache is not used once AC is clear"
        );
        mem.set_paging(&PagingContext { ac: true, ..smap });
        mem.invalidate_page(0x6000);
        assert!(mem.read_u8(0x6000).is_err(), "INVLPG drops it");
    }

    #[test]
    fn plain_accesses_reach_ram_only_and_do_nothing_otherwise() {
        let mut mem = machine();
        assert!(mem.write_plain(0x5010, 4, 0xdead_beef));
        assert_eq!(mem.read_plain(0x40_0010, 4), Some(0xdead_beef));
        assert_eq!(mem.read_plain(0x60_0000, 1), None, "not mapped");
        // Linear 0x1f_f000 -> physical 0x50_0000, past RAM: MMIO.
        mem.write_u64(0x4000 + 8 * 511, 0x50_0000 | PT_FLAGS | 0x60)
            .unwrap();
        assert_eq!(mem.read_plain(0x1f_f000, 4), None);
        assert!(!mem.write_plain(0x1f_effe, 4, 1), "crosses into MMIO");
        assert_eq!(mem.read_u16(0x1f_effe).unwrap(), 0, "and wrote nothing");
        assert!(!mem.take_side_exit(), "no device was touched");
        mem.mark_code_page(0x5000);
        assert_eq!(mem.read_plain(0x5010, 4), Some(0xdead_beef));
        assert!(
            !mem.write_plain(0x40_0010, 4, 1),
            "a code page, through an alias"
        );
        assert_eq!(mem.read_u32(0x5010).unwrap(), 0xdead_beef);
        assert!(mem.take_written_code().is_empty());
    }

    #[test]
    fn bulk_copies_and_fills_take_plain_ram_only() {
        let mut mem = machine();
        mem.write_u64(0x6000, 0x0807_0605_0403_0201).unwrap();
        assert!(mem.copy_plain(0x6000, 0x7003, 8));
        assert_eq!(mem.read_u64(0x7003).unwrap(), 0x0807_0605_0403_0201);
        assert!(mem.fill_plain(0x7100, &[0xaa, 0xbb], 5));
        assert_eq!(
            mem.read_u64(0x7100).unwrap() & 0xff_ffff_ffff,
            0xaa_bbaa_bbaa
        );
        assert!(!mem.copy_plain(0x6000, 0x60_0000, 8), "not mapped");
        // 0x40_0000 maps physical 0x5000: the same RAM through two linear pages.
        assert!(
            !mem.copy_plain(0x40_0000, 0x5004, 8),
            "aliased, overlapping from above"
        );
        mem.write_u64(0x5000, 0x0807_0605_0403_0201).unwrap();
        mem.write_u64(0x5008, 0x1817_1615_1413_1211).unwrap();
        assert!(
            mem.copy_plain(0x40_0004, 0x5000, 8),
            "aliased, overlapping from below: a move"
        );
        assert_eq!(mem.read_u64(0x5000).unwrap(), 0x1413_1211_0807_0605);
        mem.mark_code_page(0x7000);
        assert!(!mem.copy_plain(0x6000, 0x7000, 8), "a code page");
        assert!(!mem.fill_plain(0x7000, &[0], 8), "a code page");
        assert_eq!(mem.read_u64(0x7000).unwrap() >> 24, 0x05_0403_0201);
        assert!(mem.copy_plain(0x7000, 0x6100, 8), "code pages can be read");
        assert!(mem.take_written_code().is_empty());
    }

    #[test]
    fn page_crossing_write_is_all_or_nothing() {
        let mut mem = machine();
        // 0x1f_fffe is mapped, 0x20_0000 is not.
        let fault = mem.write_u32(0x1f_fffe, 0x1122_3344).unwrap_err();
        assert_eq!(fault.addr, 0x20_0000);
        assert_eq!(mem.read_u16(0x1f_fffe).unwrap(), 0);
    }

    #[test]
    fn code_page_writes_are_reported_through_either_alias() {
        let mut mem = machine();
        // What the drain reports: page 0x5000, written from `start` to `end`.
        let drained = |mem: &mut SystemMemory, start: u64, end: u64| {
            let written = CodeWrite {
                page: 0x5000,
                start,
                end,
            };
            assert_eq!(mem.take_written_code(), vec![written]);
        };
        let writable = |mem: &mut SystemMemory| mem.tlb.lookup(0, 0x5000, AccessKind::Write);
        mem.write_u8(0x5000, 1).unwrap();
        mem.mark_code_page(0x5000);
        assert!(writable(&mut mem).is_none());
        mem.write_u8(0x40_0001, 2).unwrap();
        mem.write_u8(0x5002, 3).unwrap();
        drained(&mut mem, 0x5001, 0x5003);
        assert!(mem.take_written_code().is_empty());
        // Tracked again (its code outlived the write): the next write is reported.
        mem.track_code_page(0x5000);
        assert!(writable(&mut mem).is_none());
        mem.write_u16(0x5ffe, 4).unwrap();
        drained(&mut mem, 0x5ffe, 0x6000);
        // Released, then written through a fresh TLB entry: tracking it again takes that
        // entry's write permission away too.
        mem.write_u8(0x5003, 5).unwrap();
        assert!(writable(&mut mem).is_some());
        mem.track_code_page(0x5000);
        assert!(writable(&mut mem).is_none());
        mem.write_u16(0x5ffe, 4).unwrap();
        drained(&mut mem, 0x5ffe, 0x6000);
        // Tracked again straight after the drain: still reported.
        mem.track_code_page(0x5000);
        mem.write_u8(0x5004, 6).unwrap();
        drained(&mut mem, 0x5004, 0x5005);
    }

    #[test]
    fn cr3_write_flushes_and_invlpg_drops_one_page() {
        let mut mem = machine();
        mem.read_u8(0x40_0000).unwrap();
        mem.read_u8(0x6000).unwrap();
        mem.invalidate_page(0x40_0000);
        assert!(mem.tlb.lookup(0, 0x40_0000, AccessKind::Read).is_none());
        assert!(mem.tlb.lookup(0, 0x6000, AccessKind::Read).is_some());
        let ctx = PagingContext {
            cr3: 0x1000 | 0x8,
            ..*mem.paging()
        };
        mem.set_paging(&ctx);
        assert!(mem.tlb.lookup(0, 0x6000, AccessKind::Read).is_none());
    }

    #[test]
    fn reloading_the_same_cr3_drops_stale_translations() {
        // Fork write-protects PTEs, then reloads CR3 with the value it holds.
        let mut mem = machine();
        mem.write_u8(0x6000, 1).unwrap();
        mem.ram
            .write_bytes(0x4000 + 8 * 6, &(0x6000u64 | 5 | 0x60).to_le_bytes())
            .unwrap();
        let same = *mem.paging();
        mem.set_paging(&same);
        mem.flush_tlb();
        let fault = mem.write_u8(0x6000, 2).unwrap_err();
        assert_eq!(fault.error_code, 3, "present, write, supervisor");
    }

    #[test]
    fn mmio_outside_ram_reaches_the_bus() {
        use crate::bus::BusDevice;
        use std::sync::{Arc, Mutex};
        struct Reg(u32);
        impl BusDevice for Reg {
            fn read(&mut self, _offset: u64, data: &mut [u8]) {
                data.copy_from_slice(&self.0.to_le_bytes()[..data.len()]);
            }
            fn write(&mut self, _offset: u64, data: &[u8]) {
                let mut b = [0u8; 4];
                b[..data.len()].copy_from_slice(data);
                self.0 = u32::from_le_bytes(b);
            }
        }
        let mut bus = Bus::new();
        let reg = Arc::new(Mutex::new(Reg(0)));
        bus.insert(0xfee0_0000, 0x1000, reg.clone()).unwrap();
        let mut mem = SystemMemory::new(GuestRam::new(0x10000).unwrap(), bus);
        mem.write_u32(0xfee0_00b0, 7).unwrap();
        assert_eq!(reg.lock().unwrap().0, 7);
        assert_eq!(mem.read_u32(0xfee0_0000).unwrap(), 7);
        assert_eq!(
            mem.read_u32(0xd000_0000).unwrap(),
            0xffff_ffff,
            "nothing there reads as ones"
        );
    }
}
