//! The host code generator: Cranelift for the machine softvisor runs on (x86-64 or
//! aarch64), through `cranelift-jit`, which places compiled functions in executable memory
//! (the JIT's own [`crate::code_memory::CodeArena`]). A function is declared here
//! ([`Backend::prepare_block`]), built and compiled by a [`Compiler`] on any thread, and
//! installed here ([`Backend::install_block`]).
//!
//! Every generated function has one signature, `extern "C" fn(*mut CpuState, *mut
//! JitContext) -> u64`: it receives the guest CPU state (addressed only through
//! `softvisor_cpu::offsets`) and the run-time context (through `crate::context`), and
//! returns an exit code for the dispatcher. Functions live as long as the backend.

use crate::code_memory::{CodeArena, DualArena, ARENA_BYTES};
use crate::compiler::{Body, Compiled, Compiler, Prepared};
use crate::context::JitContext;
use crate::JitError;
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Value};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilder;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use softvisor_cpu::CpuState;

/// A compiled function over the CPU state. [`Backend::compile`] makes one of exactly this
/// type; blocks (tail convention, the CPU state alone: [`Backend::block_signature`]) are
/// entered only through the entry trampoline, and this type just names their code.
pub type CompiledFn = unsafe extern "C" fn(*mut CpuState, *mut JitContext<'_>) -> u64;

/// The entry trampoline: calls a block (compiled with the tail-call convention, so blocks
/// can jump to each other with `return_call_indirect`) from Rust.
pub type EntryFn = unsafe extern "C" fn(*mut CpuState, *mut JitContext<'_>, *const u8) -> u64;

/// Trampolines to the slow-path memory helpers, compiled in Cranelift's preserve-all
/// convention: a call to one clobbers no register, so the inline fast path around it keeps
/// the CPU-state, context and TLB pointers in registers instead of spilling them for a call
/// that rarely happens. They take the helpers' arguments and return nothing; a store's
/// value is passed, and a load's left, in [`JitContext::slow_value`].
#[derive(Clone, Copy, Debug)]
pub struct SlowPaths {
    /// `(cpu, ctx, addr, size)`: [`crate::helpers::load`] on all but `cpu`.
    pub load: *const u8,
    /// `(cpu, ctx, addr, size)`: [`crate::helpers::store`] on all but `cpu`.
    pub store: *const u8,
}

// SAFETY: the pointers are addresses of code that lives as long as the backend; building a
// block's IR on another thread only embeds them as constants, never calls or reads them.
unsafe impl Send for SlowPaths {}

/// Cranelift for this host, with the module holding every function compiled so far.
pub struct Backend {
    module: JITModule,
    /// The host target with and without Cranelift's optimizer (the latter for blocks
    /// where compiling costs more than the optimizer would win, see
    /// [`Backend::prepare_block`]).
    compiler: Compiler,
    /// Scratch space for building functions on this thread.
    scratch: crate::compiler::Scratch,
    /// Functions declared so far (their names are numbered).
    declared: u32,
    /// Bytes of code memory placed so far, alignment included (at most).
    code_bytes: usize,
    compiled: u32,
    /// Code size of the function compiled last.
    last_size: usize,
    /// `/tmp/perf-<pid>.map`, when asked for: where each function's code lies, so `perf`
    /// can name samples in generated code.
    perf_map: Option<std::io::BufWriter<std::fs::File>>,
    /// Where functions without relocations go, placed by a copy (see
    /// [`crate::code_memory`]); `None` where the host refuses the double mapping, and then
    /// everything goes through the module.
    dual: Option<DualArena>,
}

impl Backend {
    /// A backend for the host CPU.
    pub fn new() -> Result<Self, JitError> {
        let isa_with =
            |opt_level: &str| -> Result<cranelift_codegen::isa::OwnedTargetIsa, JitError> {
                let mut flags = settings::builder();
                let set = |flags: &mut settings::Builder, name: &str, value: &str| {
                    flags
                        .set(name, value)
                        .map_err(|e| JitError::Host(e.to_string()))
                };
                set(&mut flags, "opt_level", opt_level)?;
                set(&mut flags, "use_colocated_libcalls", "false")?;
                set(&mut flags, "is_pic", "false")?;
                // Cranelift's tail calls (block chaining) need frame pointers.
                set(&mut flags, "preserve_frame_pointers", "true")?;
                // Translations are checked by the differential suite and the lockstep mode;
                // the IR verifier costs a tenth of the translation time.
                set(&mut flags, "enable_verifier", "false")?;
                cranelift_native::builder()
                    .map_err(|e| JitError::Host(e.to_string()))?
                    .finish(settings::Flags::new(flags))
                    .map_err(|e| JitError::Host(e.to_string()))
            };
        let isa = isa_with("speed")?;
        let quick_isa = isa_with("none")?;
        let compiler = Compiler::new(isa.clone(), quick_isa);
        let arena = CodeArena::new(ARENA_BYTES)
            .map_err(|e| JitError::Host(format!("cannot reserve code memory: {e}")))?;
        let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
        builder.memory_provider(Box::new(arena));
        let module = JITModule::new(builder);
        Ok(Self {
            module,
            compiler,
            scratch: crate::compiler::Scratch::default(),
            declared: 0,
            code_bytes: 0,
            compiled: 0,
            last_size: 0,
            perf_map: None,
            dual: DualArena::new(ARENA_BYTES).ok(),
        })
    }

    /// Writes `/tmp/perf-<pid>.map` (the file `perf report` reads for JIT code) from now
    /// on: one line per compiled function with its address, size and label.
    pub fn write_perf_map(&mut self) -> Result<(), JitError> {
        let path = format!("/tmp/perf-{}.map", std::process::id());
        let file = std::fs::File::create(&path)
            .map_err(|e| JitError::Host(format!("cannot create {path}: {e}")))?;
        self.perf_map = Some(std::io::BufWriter::new(file));
        Ok(())
    }

    /// Takes over `old`'s perf map (a flush replaces the backend, not the profile).
    pub fn keep_perf_map_of(&mut self, old: &mut Backend) {
        self.perf_map = old.perf_map.take();
    }

    /// The host's C calling convention (that of the helpers generated code calls).
    pub fn call_conv(&self) -> CallConv {
        self.module.target_config().default_call_conv
    }

    /// Frees the executable memory of every function compiled so far.
    ///
    /// # Safety
    /// No function this backend compiled may be running or run again.
    pub unsafe fn free(mut self) {
        if let Some(dual) = self.dual.as_mut() {
            // SAFETY: the caller guarantees no compiled function is in use.
            unsafe { dual.free() };
        }
        // SAFETY: as above.
        unsafe { self.module.free_memory() }
    }

    /// The compilation step, to run on another thread (see [`crate::compiler`]).
    pub fn compiler(&self) -> Compiler {
        self.compiler.clone()
    }

    /// Builds and compiles `prepared` on this thread.
    pub fn compile_prepared(&mut self, prepared: Prepared) -> Result<Compiled, JitError> {
        self.compiler.compile(prepared, &mut self.scratch)
    }

    /// Bytes of code memory used so far (at most), of
    /// [`crate::code_memory::ARENA_BYTES`].
    pub fn code_bytes(&self) -> usize {
        self.code_bytes
    }

    /// Functions compiled so far.
    pub fn compiled(&self) -> u32 {
        self.compiled
    }

    /// The signature of every block: `(cpu) -> exit code`, tail-call convention. The
    /// context is in the CPU state ([`crate::context::CTX`]), loaded where a cold path
    /// needs it: as a second parameter it had cost a load at every chained exit.
    pub fn block_signature(&self) -> cranelift_codegen::ir::Signature {
        let pointer = self.module.target_config().pointer_type();
        let mut signature = cranelift_codegen::ir::Signature::new(CallConv::Tail);
        signature.params.push(AbiParam::new(pointer));
        signature.returns.push(AbiParam::new(types::I64));
        signature
    }

    /// Compiles the entry trampoline ([`EntryFn`]).
    pub fn compile_entry(&mut self) -> Result<EntryFn, JitError> {
        let block_sig = self.block_signature();
        let code = self.compile_with(CallConv::Tail, true, false, |b, cpu, _ctx| {
            let params = b
                .block_params(b.current_block().expect("entry block"))
                .to_vec();
            let sig = b.import_signature(block_sig);
            let call = b.ins().call_indirect(sig, params[2], &[cpu]);
            let result = b.inst_results(call)[0];
            b.ins().return_(&[result]);
        })?;
        // SAFETY: compiled just above with exactly EntryFn's parameters and result in the
        // host's C calling convention.
        Ok(unsafe { std::mem::transmute::<*const u8, EntryFn>(code) })
    }

    /// Compiles the slow-path trampolines ([`SlowPaths`]).
    pub fn compile_slow_paths(&mut self) -> Result<SlowPaths, JitError> {
        let load = self.compile_trampoline(
            crate::helpers::load as *const (),
            3,
            Some(crate::context::SLOW_VALUE),
        )?;
        let store = self.compile_trampoline(crate::helpers::store as *const (), 3, None)?;
        Ok(SlowPaths { load, store })
    }

    /// A preserve-all function of the CPU-state pointer and `args` I64 parameters (the
    /// first is the context) that calls the C function `target` with those `args` and
    /// stores its I64 result at `ctx + result_at`, if given. The CPU-state pointer, unused,
    /// stays in the register a block receives it in: the call's first argument takes the
    /// same place as the block's own, so it does not move around the call.
    fn compile_trampoline(
        &mut self,
        target: *const (),
        args: usize,
        result_at: Option<i32>,
    ) -> Result<*const u8, JitError> {
        let mut signature = cranelift_codegen::ir::Signature::new(CallConv::PreserveAll);
        signature.params = vec![AbiParam::new(types::I64); args + 1];
        let mut callee_sig = cranelift_codegen::ir::Signature::new(self.call_conv());
        callee_sig.params = vec![AbiParam::new(types::I64); args];
        if result_at.is_some() {
            callee_sig.returns.push(AbiParam::new(types::I64));
        }
        let target = target as i64;
        let body: Body = Box::new(move |b, params| {
            let sig = b.import_signature(callee_sig);
            let callee = b.ins().iconst(types::I64, target);
            let call = b.ins().call_indirect(sig, callee, &params[1..]);
            if let Some(offset) = result_at {
                let value = b.inst_results(call)[0];
                let flags = cranelift_codegen::ir::MemFlagsData::trusted();
                b.ins().store(flags, value, params[1], offset);
            }
            b.ins().return_(&[]);
        });
        self.define("slow_path", signature, false, body)
    }

    /// Builds one block function (tail-call convention, see [`Backend::block_signature`])
    /// whose body `emit` builds, given the builder and the CPU-state pointer;
    /// `emit` must end every path with a return (or tail call) of one I64. The function is
    /// declared in this backend's module, to be compiled anywhere ([`Compiler::compile`])
    /// and installed here ([`Backend::install_block`]). `quick` compiles it without
    /// Cranelift's optimizer: a small block's compilation is mostly the optimizer's fixed
    /// cost, and there is little in it to optimize.
    pub fn prepare_block(
        &mut self,
        quick: bool,
        emit: impl FnOnce(&mut FunctionBuilder, Value) + Send + 'static,
    ) -> Result<Prepared, JitError> {
        let signature = self.block_signature();
        self.prepare(
            "block",
            signature,
            quick,
            Box::new(|b, params| emit(b, params[0])),
        )
    }

    /// Places a block function this backend prepared, compiled, in executable memory;
    /// returns its code. `label` names it in the perf map.
    pub fn install_block(
        &mut self,
        compiled: Compiled,
        label: impl FnOnce() -> String,
    ) -> Result<*const u8, JitError> {
        let code = self.install(compiled)?;
        if let Some(map) = self.perf_map.as_mut() {
            use std::io::Write;
            // Best effort: a profiling aid must not stop the guest.
            let _ = writeln!(map, "{:x} {:x} {}", code as usize, self.last_size, label());
            let _ = map.flush();
        }
        Ok(code)
    }

    /// Compiles one function whose body `emit` builds, given the builder and the CPU-state
    /// and context pointers; `emit` must end every path with a return of one I64.
    pub fn compile(
        &mut self,
        emit: impl FnOnce(&mut FunctionBuilder, Value, Value) + Send + 'static,
    ) -> Result<CompiledFn, JitError> {
        let code = self.compile_with(self.call_conv(), false, false, emit)?;
        // SAFETY: `code` is the entry of a function just defined with exactly the
        // `CompiledFn` signature (two pointer parameters, one I64 result, the host's default
        // C calling convention), finalized and kept alive by `self.module`.
        Ok(unsafe { std::mem::transmute::<*const u8, CompiledFn>(code) })
    }

    /// Compiles a function `(cpu, ctx[, code]) -> I64`: in the host convention when
    /// `entry` (the trampoline, with the extra code pointer) or for `compile`, else in
    /// `call_conv`.
    fn compile_with(
        &mut self,
        call_conv: CallConv,
        entry: bool,
        quick: bool,
        emit: impl FnOnce(&mut FunctionBuilder, Value, Value) + Send + 'static,
    ) -> Result<*const u8, JitError> {
        let signature = self.signature(call_conv, entry);
        self.define(
            "block",
            signature,
            quick,
            Box::new(|b, params| emit(b, params[0], params[1])),
        )
    }

    /// The signature `(cpu, ctx[, code]) -> I64`: with the code pointer and in the host
    /// convention when `entry`, else in `call_conv`.
    fn signature(&self, call_conv: CallConv, entry: bool) -> cranelift_codegen::ir::Signature {
        let pointer = self.module.target_config().pointer_type();
        let mut signature = self.module.make_signature();
        if !entry {
            signature.call_conv = call_conv;
        }
        signature.params.push(AbiParam::new(pointer));
        signature.params.push(AbiParam::new(pointer));
        if entry {
            signature.params.push(AbiParam::new(pointer));
        }
        signature.returns.push(AbiParam::new(types::I64));
        signature
    }

    /// Declares, builds, compiles (`quick`: without the optimizer) and finalizes one
    /// function named `prefix` plus a number; returns its code.
    fn define(
        &mut self,
        prefix: &str,
        signature: cranelift_codegen::ir::Signature,
        quick: bool,
        body: Body,
    ) -> Result<*const u8, JitError> {
        let prepared = self.prepare(prefix, signature, quick, body)?;
        let compiled = self.compiler.compile(prepared, &mut self.scratch)?;
        self.install(compiled)
    }

    /// Declares one function named `prefix` plus a number, whose IR `body` builds.
    fn prepare(
        &mut self,
        prefix: &str,
        signature: cranelift_codegen::ir::Signature,
        quick: bool,
        body: Body,
    ) -> Result<Prepared, JitError> {
        let name = format!("{prefix}{}", self.declared);
        self.declared += 1;
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &signature)
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        Ok(Prepared {
            id,
            signature,
            target: self.module.target_config(),
            quick,
            body,
        })
    }

    /// Places compiled code in executable memory; returns it.
    fn install(&mut self, compiled: Compiled) -> Result<*const u8, JitError> {
        // perf reads the map file only for anonymous mappings, not for the shared-memory
        // file of the dual arena: under a perf map, code goes through the module.
        let placeable = compiled.relocs.is_empty() && self.perf_map.is_none();
        if let (true, Some(dual)) = (placeable, self.dual.as_mut()) {
            let code = dual
                .place(&compiled.bytes, compiled.align)
                .map_err(|e| JitError::Host(format!("cannot place code: {e}")))?;
            self.account(&compiled);
            return Ok(code);
        }
        self.module
            .define_function_bytes(
                compiled.id,
                compiled.align,
                &compiled.bytes,
                &compiled.relocs,
            )
            .map_err(|e| JitError::Codegen(format!("{e:?}")))?;
        self.account(&compiled);
        self.module
            .finalize_definitions()
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        Ok(self.module.get_finalized_function(compiled.id))
    }

    /// Counts a function placed.
    fn account(&mut self, compiled: &Compiled) {
        self.last_size = compiled.bytes.len();
        self.code_bytes += compiled.bytes.len() + compiled.align as usize;
        self.compiled += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::MemFlagsData;
    use softvisor_cpu::offsets;

    #[test]
    fn generated_code_reads_and_writes_the_cpu_state() {
        let mut backend = Backend::new().unwrap();
        // rax += rbx; return rax
        let add = backend
            .compile(|b, cpu, _ctx| {
                let flags = MemFlagsData::trusted();
                let rax = b.ins().load(types::I64, flags, cpu, offsets::gpr(0) as i32);
                let rbx = b.ins().load(types::I64, flags, cpu, offsets::gpr(3) as i32);
                let sum = b.ins().iadd(rax, rbx);
                b.ins().store(flags, sum, cpu, offsets::gpr(0) as i32);
                b.ins().return_(&[sum]);
            })
            .unwrap();
        let mut cpu = CpuState::new_long_mode();
        cpu.gpr[0] = 40;
        cpu.gpr[3] = 2;
        // SAFETY: `add` was compiled for `CompiledFn` and `cpu` is a valid, exclusive CpuState.
        let result = unsafe { add(&mut cpu, core::ptr::null_mut()) };
        assert_eq!((result, cpu.gpr[0]), (42, 42));
        // SAFETY: the function is not used again.
        unsafe { backend.free() };
    }

    #[test]
    fn functions_are_packed_in_the_code_arena() {
        let mut backend = Backend::new().unwrap();
        let mut constant = |value: i64| {
            backend
                .compile(move |b, _cpu, _ctx| {
                    let v = b.ins().iconst(types::I64, value);
                    b.ins().return_(&[v]);
                })
                .unwrap()
        };
        let (seven, nine) = (constant(7), constant(9));
        let mut cpu = CpuState::new_long_mode();
        // SAFETY: both were compiled for `CompiledFn`; they touch neither pointer.
        let first = unsafe { seven(&mut cpu, core::ptr::null_mut()) };
        // SAFETY: as above.
        let second = unsafe { nine(&mut cpu, core::ptr::null_mut()) };
        let results = (first, second);
        assert_eq!(results, (7, 9));
        // The second function follows the first in the same page, which stayed executable
        // while it was placed and both ran.
        let gap = nine as usize - seven as usize;
        assert!(gap < 256, "functions {gap} bytes apart");
        // SAFETY: neither function is used again.
        unsafe { backend.free() };
    }
}
