//! ACPI tables for the PC machine, built with the acpi_tables crate: RSDP, XSDT, FADT (with
//! FACS and DSDT) and MADT.
//!
//! They describe what the board really has, so a stock kernel finds its interrupt controllers
//! and powers off without `acpi=off`/`noapic`/`nolapic`: one local APIC, the I/O APIC with
//! the ISA overrides (IRQ 0 on GSI 2, the SCI level-triggered on GSI 9), the legacy PICs, an
//! i8042, PM1a event/control blocks and the PM timer at [`PM_BASE`], and in the DSDT the
//! `\_S5` sleep type that `poweroff` writes to PM1a_CNT, plus the ISA devices (COM1, the
//! RTC, the keyboard controller) with their ports and IRQs.

use crate::layout::ACPI_TABLES;
use crate::FirmwareError;
use acpi_tables::aml;
use acpi_tables::facs::FACS;
use acpi_tables::fadt::{FADTBuilder, Flags, PmProfile};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, ProcessorLocalApic, MADT,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use acpi_tables::Aml;
use softvisor_mmu::GuestRam;
use zerocopy::{Immutable, IntoBytes};

/// First I/O port of the ACPI PM registers: PM1a_EVT (4 bytes), PM1a_CNT (2 bytes, at +4),
/// PM_TMR (4 bytes, at +8).
pub const PM_BASE: u16 = 0x600;
/// PM1a control register (SLP_TYP, SLP_EN, SCI_EN).
pub const PM1A_CNT: u16 = PM_BASE + 4;
/// The 24-bit PM timer.
pub const PM_TMR: u16 = PM_BASE + 8;
/// The sleep type `\_S5` declares: a write of SLP_EN with this SLP_TYP powers off.
pub const S5_SLEEP_TYPE: u8 = 5;
/// The SCI's ISA IRQ (and GSI).
pub const SCI_IRQ: u8 = 9;

const OEM_ID: [u8; 6] = *b"SOFTVX";
const OEM_TABLE_ID: [u8; 8] = *b"SOFTVISR";
const OEM_REVISION: u32 = 1;

/// Where the platform's interrupt controllers live.
#[derive(Clone, Copy, Debug)]
pub struct InterruptControllers {
    /// Local APIC MMIO base.
    pub lapic_base: u32,
    /// I/O APIC MMIO base.
    pub ioapic_base: u32,
    /// I/O APIC ID.
    pub ioapic_id: u8,
}

/// MADT interrupt source override (type 2): an ISA IRQ routed to another GSI or polarity.
#[repr(C, packed)]
#[derive(Clone, Copy, IntoBytes, Immutable)]
struct InterruptSourceOverride {
    kind: u8,
    length: u8,
    bus: u8,
    source: u8,
    gsi: u32,
    flags: u16,
}

impl InterruptSourceOverride {
    fn new(source: u8, gsi: u32, flags: u16) -> Self {
        Self {
            kind: 2,
            length: 10,
            bus: 0,
            source,
            gsi: gsi.to_le(),
            flags: flags.to_le(),
        }
    }
}

/// MADT local APIC NMI (type 4): which LINT pin carries NMI.
#[repr(C, packed)]
#[derive(Clone, Copy, IntoBytes, Immutable)]
struct LocalApicNmi {
    kind: u8,
    length: u8,
    processor_uid: u8,
    flags: u16,
    lint: u8,
}

macro_rules! aml_from_bytes {
    ($ty:ty) => {
        impl Aml for $ty {
            fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
                sink.vec(self.as_bytes());
            }
        }
    };
}
aml_from_bytes!(InterruptSourceOverride);
aml_from_bytes!(LocalApicNmi);

/// MPS INTI flags: active high, level triggered.
const LEVEL_ACTIVE_HIGH: u16 = 0b1101;
/// MADT flag: the machine also has dual 8259s.
const PCAT_COMPAT: u8 = 1;
/// Offset of the MADT's flags field (after the header and the LAPIC address).
const MADT_FLAGS_OFFSET: usize = 40;
/// Offset of the checksum byte in every SDT header.
const SDT_CHECKSUM_OFFSET: usize = 9;

fn bytes_of(table: &dyn Aml) -> Vec<u8> {
    let mut bytes = Vec::new();
    table.to_aml_bytes(&mut bytes);
    bytes
}

fn fix_checksum(table: &mut [u8]) {
    table[SDT_CHECKSUM_OFFSET] = 0;
    let sum = table.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    table[SDT_CHECKSUM_OFFSET] = 0u8.wrapping_sub(sum);
}

fn madt(irqs: &InterruptControllers) -> Vec<u8> {
    let mut madt = MADT::new(
        OEM_ID,
        OEM_TABLE_ID,
        OEM_REVISION,
        LocalInterruptController::Address(irqs.lapic_base),
    );
    madt.add_structure(ProcessorLocalApic::new(0, 0, EnabledStatus::Enabled));
    madt.add_structure(IoApic::new(irqs.ioapic_id, irqs.ioapic_base, 0));
    madt.add_structure(InterruptSourceOverride::new(0, 2, 0));
    madt.add_structure(InterruptSourceOverride::new(
        SCI_IRQ,
        u32::from(SCI_IRQ),
        LEVEL_ACTIVE_HIGH,
    ));
    madt.add_structure(LocalApicNmi {
        kind: 4,
        length: 6,
        processor_uid: 0xff,
        flags: 0,
        lint: 1,
    });
    let mut bytes = bytes_of(&madt);
    bytes[MADT_FLAGS_OFFSET] |= PCAT_COMPAT;
    fix_checksum(&mut bytes);
    bytes
}

/// An ISA device node: `_HID`, and `_CRS` with its port ranges and IRQ.
fn isa_device(sink: &mut Vec<u8>, name: &str, hid: &str, ports: &[(u16, u8)], irq: u32) {
    let io: Vec<aml::IO> = ports
        .iter()
        .map(|&(base, len)| aml::IO::new(base, base, 1, len))
        .collect();
    let interrupt = aml::Interrupt::new(true, true, false, false, irq);
    let mut resources: Vec<&dyn Aml> = io.iter().map(|r| r as &dyn Aml).collect();
    resources.push(&interrupt);
    let crs = aml::ResourceTemplate::new(resources);
    let hid = aml::EISAName::new(hid);
    aml::Device::new(
        name.into(),
        vec![
            &aml::Name::new("_HID".into(), &hid),
            &aml::Name::new("_CRS".into(), &crs),
        ],
    )
    .to_aml_bytes(sink);
}

fn dsdt() -> Vec<u8> {
    let mut body = Vec::new();
    let s5 = aml::Package::new(vec![&S5_SLEEP_TYPE, &S5_SLEEP_TYPE, &0u8, &0u8]);
    aml::Name::new("_S5_".into(), &s5).to_aml_bytes(&mut body);
    let mut isa = Vec::new();
    isa_device(&mut isa, "COM1", "PNP0501", &[(0x3f8, 8)], 4);
    isa_device(&mut isa, "RTC_", "PNP0B00", &[(0x70, 2)], 8);
    isa_device(&mut isa, "KBD_", "PNP0303", &[(0x60, 1), (0x64, 1)], 1);
    let raw = RawAml(isa);
    aml::Scope::new("\\_SB_".into(), vec![&raw]).to_aml_bytes(&mut body);

    let mut dsdt = Sdt::new(*b"DSDT", 36, 2, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    dsdt.append_slice(&body);
    dsdt.as_slice().to_vec()
}

/// Already-encoded AML spliced into a parent object.
struct RawAml(Vec<u8>);

impl Aml for RawAml {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(&self.0);
    }
}

fn fadt(facs: u64, dsdt: u64) -> Vec<u8> {
    let mut fadt = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .firmware_ctrl_64(facs)
        .dsdt_64(dsdt)
        .preferred_pm_profile(PmProfile::Unspecified)
        .flag(Flags::Wbinvd)
        .flag(Flags::ProcC1)
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton)
        .flag(Flags::TmrValExt);
    // SMI_CMD stays 0: the machine is always in ACPI mode, SCI_EN reads as set.
    fadt.sci_int = u16::from(SCI_IRQ).into();
    fadt.pm1a_evt_blk = u32::from(PM_BASE).into();
    fadt.pm1a_cnt_blk = u32::from(PM1A_CNT).into();
    fadt.pm_tmr_blk = u32::from(PM_TMR).into();
    fadt.pm1_evt_len = 4;
    fadt.pm1_cnt_len = 2;
    fadt.pm_tmr_len = 4;
    fadt.century = 0x32;
    // IAPC_BOOT_ARCH: legacy ISA devices and an 8042.
    fadt.iapc_boot_arch = 0b11.into();
    bytes_of(&fadt.finalize())
}

/// Lays the tables out from [`ACPI_TABLES`] in `ram`; returns the RSDP's address.
pub fn install(ram: &mut GuestRam, irqs: &InterruptControllers) -> Result<u64, FirmwareError> {
    let mut blob = Vec::new();
    let mut place = |bytes: &[u8], align: usize| -> u64 {
        blob.resize(blob.len().next_multiple_of(align), 0);
        let at = ACPI_TABLES + blob.len() as u64;
        blob.extend_from_slice(bytes);
        at
    };
    // The RSDP goes first; its XSDT pointer is known once the others are placed.
    let rsdp_at = place(&[0; 36], 16);
    let facs_at = place(&bytes_of(&FACS::new()), 64);
    let dsdt_at = place(&dsdt(), 8);
    let fadt_at = place(&fadt(facs_at, dsdt_at), 8);
    let madt_at = place(&madt(irqs), 8);
    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    xsdt.add_entry(fadt_at);
    xsdt.add_entry(madt_at);
    let xsdt_at = place(&bytes_of(&xsdt), 8);
    let rsdp = bytes_of(&Rsdp::new(OEM_ID, xsdt_at));
    let offset = (rsdp_at - ACPI_TABLES) as usize;
    blob[offset..offset + rsdp.len()].copy_from_slice(&rsdp);
    ram.write_bytes(ACPI_TABLES, &blob)
        .map_err(|_| FirmwareError::MemoryTooSmall(ram.size() >> 20))?;
    Ok(rsdp_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum_ok(table: &[u8]) -> bool {
        table.iter().fold(0u8, |a, &b| a.wrapping_add(b)) == 0
    }

    fn table_at(ram: &GuestRam, addr: u64) -> Vec<u8> {
        let mut header = [0u8; 8];
        ram.read_bytes(addr, &mut header).unwrap();
        let len = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
        let mut table = vec![0u8; len];
        ram.read_bytes(addr, &mut table).unwrap();
        table
    }

    fn read_u64(bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn tables_chain_from_the_rsdp_with_valid_checksums() {
        let mut ram = GuestRam::new(1 << 20).unwrap();
        let irqs = InterruptControllers {
            lapic_base: 0xfee0_0000,
            ioapic_base: 0xfec0_0000,
            ioapic_id: 0,
        };
        let rsdp_at = install(&mut ram, &irqs).unwrap();
        let mut rsdp = [0u8; 36];
        ram.read_bytes(rsdp_at, &mut rsdp).unwrap();
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert!(checksum_ok(&rsdp[..20]) && checksum_ok(&rsdp));
        let xsdt = table_at(&ram, read_u64(&rsdp, 24));
        assert_eq!(&xsdt[..4], b"XSDT");
        assert!(checksum_ok(&xsdt));
        let entries: Vec<u64> = (36..xsdt.len())
            .step_by(8)
            .map(|at| read_u64(&xsdt, at))
            .collect();
        let fadt = table_at(&ram, entries[0]);
        let madt = table_at(&ram, entries[1]);
        assert_eq!((&fadt[..4], &madt[..4]), (&b"FACP"[..], &b"APIC"[..]));
        assert!(checksum_ok(&fadt) && checksum_ok(&madt));
        // FADT: PM1a_CNT at offset 64, SCI at 46, X_DSDT at 140.
        assert_eq!(u32::from_le_bytes(fadt[64..68].try_into().unwrap()), 0x604);
        assert_eq!(u16::from_le_bytes(fadt[46..48].try_into().unwrap()), 9);
        let dsdt = table_at(&ram, read_u64(&fadt, 140));
        assert_eq!(&dsdt[..4], b"DSDT");
        assert!(checksum_ok(&dsdt));
        // Name(_S5_, Package(){5, 5, 0, 0}): NameOp "_S5_" PackageOp PkgLength NumElements.
        let s5 = [0x08, b'_', b'S', b'5', b'_', 0x12];
        let at = dsdt
            .windows(s5.len())
            .position(|w| w == s5)
            .expect("_S5_ present");
        assert_eq!(&dsdt[at + 7..at + 14], &[4, 0x0a, 5, 0x0a, 5, 0, 0]);
        // MADT: PCAT_COMPAT, then LAPIC, IOAPIC, two overrides, LAPIC NMI.
        assert_eq!(madt[40] & 1, 1);
        let kinds: Vec<u8> = {
            let mut at = 44;
            let mut kinds = Vec::new();
            while at < madt.len() {
                kinds.push(madt[at]);
                at += madt[at + 1] as usize;
            }
            kinds
        };
        assert_eq!(kinds, [0, 1, 2, 2, 4]);
    }
}
