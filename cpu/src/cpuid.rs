//! The virtual CPU model CPUID describes: one consistent x86-64-v2 CPU whose feature bits
//! match what the interpreter implements, and nothing it does not (so no RDRAND, no AVX).

/// The vendor string ("SoftvisorX86"), as CPUID leaf 0 returns it in EBX, EDX, ECX.
pub const VENDOR: &[u8; 12] = b"SoftvisorX86";
/// The brand string of leaves 0x80000002..4 (48 bytes, NUL padded).
const BRAND: &[u8] = b"softvisor virtual x86-64-v2 CPU";

/// Leaf 1 ECX: SSE3, SSSE3, CX16, SSE4.1, SSE4.2, MOVBE, POPCNT, XSAVE, hypervisor.
/// OSXSAVE (bit 27) mirrors CR4.OSXSAVE and is added at run time.
const LEAF1_ECX: u32 = 1
    | (1 << 9)
    | (1 << 13)
    | (1 << 19)
    | (1 << 20)
    | (1 << 22)
    | (1 << 23)
    | (1 << 26)
    | (1 << 31);
/// Leaf 1 ECX OSXSAVE.
const OSXSAVE: u32 = 1 << 27;
/// Leaf 1 EDX: FPU, DE, PSE, TSC, MSR, PAE, CX8, APIC, SEP, MTRR, PGE, CMOV, PAT, CLFSH,
/// MMX, FXSR, SSE, SSE2.
const LEAF1_EDX: u32 = 1
    | (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 8)
    | (1 << 9)
    | (1 << 11)
    | (1 << 12)
    | (1 << 13)
    | (1 << 15)
    | (1 << 16)
    | (1 << 19)
    | (1 << 23)
    | (1 << 24)
    | (1 << 25)
    | (1 << 26);
/// Leaf 7 EBX: BMI1, SMEP, BMI2, ERMS, ADX, SMAP.
const LEAF7_EBX: u32 = (1 << 3) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 19) | (1 << 20);
/// Leaf 7 EDX: the IA32_ARCH_CAPABILITIES MSR exists (it reports the CPU immune to the
/// speculative-execution attacks, which an emulator without speculation is, so guests skip
/// page-table isolation and buffer clearing).
const LEAF7_EDX: u32 = 1 << 29;
/// Leaf 0x80000001 ECX: LAHF/SAHF in 64-bit mode, LZCNT, PREFETCHW.
const EXT1_ECX: u32 = 1 | (1 << 5) | (1 << 8);
/// Leaf 0x80000001 EDX: SYSCALL, NX, 1 GiB pages, RDTSCP, long mode.
const EXT1_EDX: u32 = (1 << 11) | (1 << 20) | (1 << 26) | (1 << 27) | (1 << 29);

fn le_words(bytes: &[u8]) -> [u32; 4] {
    let mut padded = [0u8; 16];
    padded[..bytes.len().min(16)].copy_from_slice(&bytes[..bytes.len().min(16)]);
    let word =
        |i: usize| u32::from_le_bytes([padded[i], padded[i + 1], padded[i + 2], padded[i + 3]]);
    [word(0), word(4), word(8), word(12)]
}

/// The parts of the CPU's state some leaves reflect.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuidState {
    /// The local APIC ID.
    pub apic_id: u32,
    /// CR4.OSXSAVE.
    pub osxsave: bool,
}

/// EAX, EBX, ECX, EDX for CPUID leaf `leaf`, subleaf `subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32, state: CpuidState) -> [u32; 4] {
    let apic_id = state.apic_id;
    match leaf {
        0 => {
            let v = le_words(VENDOR);
            [0xd, v[0], v[2], v[1]]
        }
        // Family 6, model 0x2a-like numbering is avoided: family 6, model 1, stepping 1.
        1 => [
            0x0000_0611,
            (apic_id << 24) | (1 << 16) | (8 << 8),
            LEAF1_ECX | if state.osxsave { OSXSAVE } else { 0 },
            LEAF1_EDX,
        ],
        // XSAVE: x87 and SSE in a 576-byte standard-format area; XSAVEOPT.
        0xd if subleaf == 0 => {
            let size = crate::interp::XSAVE_AREA_SIZE;
            [crate::interp::XCR0_SUPPORTED as u32, size, size, 0]
        }
        0xd if subleaf == 1 => [1, 0, 0, 0],
        7 if subleaf == 0 => [0, LEAF7_EBX, 0, LEAF7_EDX],
        0x8000_0000 => [0x8000_0008, 0, 0, 0],
        0x8000_0001 => [0, 0, EXT1_ECX, EXT1_EDX],
        0x8000_0002..=0x8000_0004 => {
            let start = (leaf - 0x8000_0002) as usize * 16;
            let mut brand = [0u8; 48];
            brand[..BRAND.len()].copy_from_slice(BRAND);
            le_words(&brand[start..start + 16])
        }
        // 40 physical and 48 linear address bits.
        0x8000_0008 => [0x3028, 0, 0, 0],
        _ => [0, 0, 0, 0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_and_features() {
        let [max, ebx, ecx, edx] = cpuid(0, 0, CpuidState::default());
        assert_eq!(max, 0xd);
        let mut vendor = Vec::new();
        for w in [ebx, edx, ecx] {
            vendor.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(&vendor, VENDOR);
        let [_, _, ecx, edx] = cpuid(1, 0, CpuidState::default());
        assert_ne!(edx & (1 << 26), 0, "SSE2");
        assert_ne!(ecx & (1 << 20), 0, "SSE4.2");
        assert_eq!(ecx & (1 << 30), 0, "no RDRAND");
        assert_eq!(ecx & (1 << 28), 0, "no AVX");
    }
}
