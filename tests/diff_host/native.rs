//! Runs one instruction on the host CPU (x86-64 only): the oracle.
//!
//! The instruction is written into a fixed executable page followed by a jump to an exit
//! stub. A trampoline saves the host's callee-saved registers and FPU state, loads the
//! whole test state (GPRs including RSP, RFLAGS, FXRSTOR image) and jumps to it; the stub
//! saves everything back. A fault is caught by a signal handler (on an alternate stack,
//! since RSP belongs to the test) that copies the state from the signal context and
//! resumes at a recovery label.

use crate::layout::{CODE_BASE, INSN_ADDR, SCRATCH_BASE, SCRATCH_SIZE, TAKEN_ADDR, WINDOW_SIZE};
use crate::state::{MachineState, Outcome, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

/// Where the fall-through stub finds its target (after any instruction's end).
const FALL_SLOT: u64 = CODE_BASE + 0x98;
/// Where the taken stub finds its target.
const TAKEN_SLOT: u64 = TAKEN_ADDR + 8;

/// The block the trampoline reads and writes; offsets are fixed in the assembly below.
#[repr(C, align(16))]
struct NativeState {
    gpr: [u64; 16],
    rflags: u64,
    pad: u64,
    fx: [u8; 512],
}

extern "C" {
    fn sv_diff_run(state: *mut NativeState) -> u64;
    fn sv_diff_exit_fall();
    fn sv_diff_exit_taken();
    fn sv_diff_fault_return();
}

core::arch::global_asm!(
    ".pushsection .bss.sv_diff, \"aw\", @nobits",
    ".balign 16",
    "sv_diff_host_fx: .zero 512",
    "sv_diff_host_rsp: .zero 8",
    "sv_diff_state: .zero 8",
    "sv_diff_saved_rax: .zero 8",
    ".globl sv_diff_exit_which",
    "sv_diff_exit_which: .zero 8",
    ".popsection",
    ".text",
    ".globl sv_diff_run",
    "sv_diff_run:",
    "push rbx",
    "push rbp",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov [rip + sv_diff_host_rsp], rsp",
    "mov [rip + sv_diff_state], rdi",
    "fxsave64 [rip + sv_diff_host_fx]",
    "fxrstor64 [rdi + 144]",
    "push qword ptr [rdi + 128]",
    "popfq",
    "mov rax, [rdi + 0]",
    "mov rcx, [rdi + 8]",
    "mov rdx, [rdi + 16]",
    "mov rbx, [rdi + 24]",
    "mov rsp, [rdi + 32]",
    "mov rbp, [rdi + 40]",
    "mov rsi, [rdi + 48]",
    "mov r8, [rdi + 64]",
    "mov r9, [rdi + 72]",
    "mov r10, [rdi + 80]",
    "mov r11, [rdi + 88]",
    "mov r12, [rdi + 96]",
    "mov r13, [rdi + 104]",
    "mov r14, [rdi + 112]",
    "mov r15, [rdi + 120]",
    "mov rdi, [rdi + 56]",
    "jmp qword ptr [rip + {insn}]",
    ".globl sv_diff_exit_fall",
    "sv_diff_exit_fall:",
    "mov qword ptr [rip + sv_diff_exit_which], 0",
    "jmp 2f",
    ".globl sv_diff_exit_taken",
    "sv_diff_exit_taken:",
    "mov qword ptr [rip + sv_diff_exit_which], 1",
    "2:",
    "mov [rip + sv_diff_saved_rax], rax",
    "mov rax, [rip + sv_diff_state]",
    "mov [rax + 8], rcx",
    "mov [rax + 16], rdx",
    "mov [rax + 24], rbx",
    "mov [rax + 32], rsp",
    "mov [rax + 40], rbp",
    "mov [rax + 48], rsi",
    "mov [rax + 56], rdi",
    "mov [rax + 64], r8",
    "mov [rax + 72], r9",
    "mov [rax + 80], r10",
    "mov [rax + 88], r11",
    "mov [rax + 96], r12",
    "mov [rax + 104], r13",
    "mov [rax + 112], r14",
    "mov [rax + 120], r15",
    "mov rcx, [rip + sv_diff_saved_rax]",
    "mov [rax], rcx",
    "mov rsp, [rip + sv_diff_host_rsp]",
    "pushfq",
    "pop rcx",
    "mov [rax + 128], rcx",
    "fxsave64 [rax + 144]",
    "fxrstor64 [rip + sv_diff_host_fx]",
    "push 0x202",
    "popfq",
    "xor eax, eax",
    "jmp 3f",
    ".globl sv_diff_fault_return",
    "sv_diff_fault_return:",
    "mov rsp, [rip + sv_diff_host_rsp]",
    "fxrstor64 [rip + sv_diff_host_fx]",
    "push 0x202",
    "popfq",
    "mov eax, 1",
    "3:",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbp",
    "pop rbx",
    "ret",
    insn = sym INSN_TARGET,
);

/// The address the trampoline jumps to (read through memory so no register is needed).
#[no_mangle]
static INSN_TARGET: u64 = INSN_ADDR;

extern "C" {
    static sv_diff_exit_which: u64;
}

/// Set by the signal handler: the trap number of the fault.
static FAULT_TRAPNO: AtomicU64 = AtomicU64::new(0);
/// Where the handler copies the faulting state (the current test's `NativeState`).
static FAULT_STATE: AtomicU64 = AtomicU64::new(0);
/// The host RSP to resume on after a fault.
static RECOVERY_RSP: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_fault(
    signal: libc::c_int,
    _info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid ucontext_t for SA_SIGINFO handlers.
    let uc = unsafe { &mut *(context as *mut libc::ucontext_t) };
    let gregs = &mut uc.uc_mcontext.gregs;
    let rip = gregs[libc::REG_RIP as usize] as u64;
    let state_ptr = FAULT_STATE.load(Ordering::SeqCst) as *mut NativeState;
    let in_window = (CODE_BASE..CODE_BASE + 0x1000).contains(&rip);
    if !in_window || state_ptr.is_null() {
        // A real crash of the harness: restore the default action and let it re-fault.
        // SAFETY: resetting a signal disposition to its default is always valid.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
        return;
    }
    // SAFETY: FAULT_STATE points at the live NativeState of the running case.
    let state = unsafe { &mut *state_ptr };
    const ORDER: [libc::c_int; 16] = [
        libc::REG_RAX,
        libc::REG_RCX,
        libc::REG_RDX,
        libc::REG_RBX,
        libc::REG_RSP,
        libc::REG_RBP,
        libc::REG_RSI,
        libc::REG_RDI,
        libc::REG_R8,
        libc::REG_R9,
        libc::REG_R10,
        libc::REG_R11,
        libc::REG_R12,
        libc::REG_R13,
        libc::REG_R14,
        libc::REG_R15,
    ];
    for (slot, reg) in state.gpr.iter_mut().zip(ORDER) {
        *slot = gregs[reg as usize] as u64;
    }
    state.rflags = gregs[libc::REG_EFL as usize] as u64;
    let fp = uc.uc_mcontext.fpregs as *const u8;
    if !fp.is_null() {
        // SAFETY: fpregs points at the 512-byte FXSAVE area of the signal frame.
        let image = unsafe { std::slice::from_raw_parts(fp, 512) };
        state.fx.copy_from_slice(image);
    }
    FAULT_TRAPNO.store(gregs[libc::REG_TRAPNO as usize] as u64, Ordering::SeqCst);
    gregs[libc::REG_RIP as usize] = sv_diff_fault_return as *const () as usize as i64;
    gregs[libc::REG_RSP as usize] = RECOVERY_RSP.load(Ordering::SeqCst) as i64;
}

static SETUP: Once = Once::new();

/// Maps the window and installs the handlers (once per process).
fn setup() {
    SETUP.call_once(|| {
        // SAFETY: a fixed anonymous mapping at an address nothing else uses (checked by
        // MAP_FIXED_NOREPLACE); the window is only touched through raw pointers below.
        let code = unsafe {
            libc::mmap(
                CODE_BASE as *mut libc::c_void,
                WINDOW_SIZE,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        assert_eq!(
            code as u64, CODE_BASE,
            "cannot map the test window at {CODE_BASE:#x}"
        );
        for signal in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
        ] {
            // SAFETY: an all-zero sigaction is a valid "no flags, empty mask" value.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: sa_mask is a valid sigset_t owned by `action`.
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            // SAFETY: `action` is fully initialized and the handler has the SA_SIGINFO type.
            unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
        }
    });
    thread_local! {
        static ALT_STACK: () = {
            let stack = Box::leak(vec![0u8; 64 * 1024].into_boxed_slice());
            let ss = libc::stack_t { ss_sp: stack.as_mut_ptr() as *mut libc::c_void, ss_flags: 0, ss_size: stack.len() };
            // SAFETY: the leaked buffer lives for the rest of the process.
            unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) };
        };
    }
    ALT_STACK.with(|_| {});
}

/// The test window as bytes. Only the single test thread touches it, between runs.
fn window_bytes() -> &'static mut [u8] {
    // SAFETY: `setup` mapped WINDOW_SIZE bytes at CODE_BASE for the life of the process, and
    // callers serialize, so no other reference to it is live.
    unsafe { std::slice::from_raw_parts_mut(CODE_BASE as *mut u8, WINDOW_SIZE) }
}

/// Maps a trap number to the exception vector (they are the same on x86 Linux).
fn vector_of(trapno: u64) -> u8 {
    trapno as u8
}

/// Runs `bytes` natively from `input`. Callers serialize (the window is global).
pub fn run(bytes: &[u8], input: &MachineState) -> Output {
    setup();
    let fall = INSN_ADDR as usize + bytes.len();
    // Each stub is `jmp [rip+disp]` through an 8-byte-aligned slot, so it cannot raise #AC
    // when the instruction under test has just set RFLAGS.AC.
    let stub = |at: u64, slot: u64| {
        let disp = (slot - (at + 6)) as u32;
        let mut s = vec![0xff, 0x25];
        s.extend_from_slice(&disp.to_le_bytes());
        s
    };
    let fall_stub = stub(fall as u64, FALL_SLOT);
    let taken_stub = stub(TAKEN_ADDR, TAKEN_SLOT);
    let window = window_bytes();
    window[..0x1000].fill(crate::layout::CODE_FILL);
    let at = |addr: u64| (addr - CODE_BASE) as usize;
    window[at(INSN_ADDR)..at(INSN_ADDR) + bytes.len()].copy_from_slice(bytes);
    window[at(fall as u64)..at(fall as u64) + fall_stub.len()].copy_from_slice(&fall_stub);
    window[at(TAKEN_ADDR)..at(TAKEN_ADDR) + taken_stub.len()].copy_from_slice(&taken_stub);
    let fall_target = (sv_diff_exit_fall as *const () as u64).to_le_bytes();
    let taken_target = (sv_diff_exit_taken as *const () as u64).to_le_bytes();
    window[at(FALL_SLOT)..at(FALL_SLOT) + 8].copy_from_slice(&fall_target);
    window[at(TAKEN_SLOT)..at(TAKEN_SLOT) + 8].copy_from_slice(&taken_target);
    window[at(SCRATCH_BASE)..at(SCRATCH_BASE) + SCRATCH_SIZE].copy_from_slice(&input.mem);
    let mut state = Box::new(NativeState {
        gpr: input.gpr,
        rflags: input.rflags,
        pad: 0,
        fx: input.fx,
    });
    FAULT_STATE.store(&mut *state as *mut NativeState as u64, Ordering::SeqCst);
    // The recovery path reloads RSP from the trampoline's saved copy; the handler only needs
    // some valid stack to land on until then.
    let probe = 0u64;
    RECOVERY_RSP.store((&probe as *const u64 as u64 - 4096) & !15, Ordering::SeqCst);
    // SAFETY: the trampoline follows the C ABI, saves and restores everything it clobbers,
    // and returns 0 (normal exit) or 1 (fault) with `state` filled in.
    let faulted = unsafe { sv_diff_run(&mut *state) } != 0;
    FAULT_STATE.store(0, Ordering::SeqCst);
    let mut out = MachineState {
        gpr: state.gpr,
        rflags: state.rflags,
        fx: state.fx,
        mem: vec![0; SCRATCH_SIZE],
    };
    // SAFETY: reading back the scratch area we mapped.
    unsafe {
        std::ptr::copy_nonoverlapping(
            SCRATCH_BASE as *const u8,
            out.mem.as_mut_ptr(),
            SCRATCH_SIZE,
        )
    };
    let outcome = if faulted {
        Outcome::Fault(vector_of(FAULT_TRAPNO.load(Ordering::SeqCst)))
    } else {
        // SAFETY: written by the exit stub before returning.
        Outcome::Exit(unsafe { std::ptr::read_volatile(&raw const sv_diff_exit_which) } as u8)
    };
    // The host keeps FIP/FDP/FOP and the reserved FXSAVE bytes; neither side compares them.
    out.fx[6..24].fill(0);
    out.fx[416..].fill(0);
    Output {
        state: out,
        outcome,
    }
}
