//! Cranelift's compilation step on its own: a function's IR in, machine code and its
//! relocations out, with no executable memory involved, so it can run on another thread.
//!
//! [`crate::backend::Backend`] builds a function's IR ([`Prepared`]) and places compiled
//! code in executable memory; between the two, [`Compiler::compile`] does the expensive
//! part (optimizer, register allocation, emission). [`CompileThread`] runs it on a second
//! host thread, so the guest keeps running (hot blocks interpreted a little longer) while
//! its blocks compile: what the guest sees never depends on when a translation becomes
//! ready, because both engines retire the same instructions with the same effects.

use crate::JitError;
use cranelift_codegen::ir::Function;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_module::{FuncId, ModuleReloc};
use std::sync::mpsc;
use std::time::Instant;

/// A function's IR, declared in a backend's module and ready to compile.
pub struct Prepared {
    /// Its id in the module that declared it.
    pub id: FuncId,
    /// Its IR.
    pub func: Function,
    /// Compile without Cranelift's optimizer (see `Backend::compile_block`).
    pub quick: bool,
}

/// Machine code for a [`Prepared`] function, not yet placed in executable memory.
pub struct Compiled {
    /// The function's id in its module.
    pub id: FuncId,
    /// Its code.
    pub bytes: Vec<u8>,
    /// The alignment its code needs.
    pub align: u64,
    /// Relocations to apply where the code is placed.
    pub relocs: Vec<ModuleReloc>,
}

/// The two targets functions are compiled for: this host with and without the optimizer.
#[derive(Clone)]
pub struct Compiler {
    optimized: OwnedTargetIsa,
    quick: OwnedTargetIsa,
}

impl Compiler {
    /// A compiler for the targets `optimized` and `quick`.
    pub fn new(optimized: OwnedTargetIsa, quick: OwnedTargetIsa) -> Self {
        Self { optimized, quick }
    }

    /// Compiles `prepared` for its target.
    pub fn compile(&self, prepared: Prepared) -> Result<Compiled, JitError> {
        let isa = if prepared.quick {
            &*self.quick
        } else {
            &*self.optimized
        };
        let mut context = cranelift_codegen::Context::for_function(prepared.func);

        let mut control = cranelift_codegen::control::ControlPlane::default();
        context
            .compile(isa, &mut control)
            .map_err(|e| JitError::Codegen(format!("{:?}", e.inner)))?;
        let code = context
            .compiled_code()
            .ok_or_else(|| JitError::Codegen("no code after compiling".into()))?;
        let align = u64::from(code.buffer.alignment)
            .max(u64::from(isa.function_alignment().minimum))
            .max(isa.symbol_alignment());
        let bytes = code.code_buffer().to_vec();
        let relocs = code
            .buffer
            .relocs()
            .iter()
            .map(|reloc| ModuleReloc::from_mach_reloc(reloc, &context.func, prepared.id))
            .collect();
        Ok(Compiled {
            id: prepared.id,
            bytes,
            align,
            relocs,
        })
    }
}

/// A finished job: its ticket, its result and the host time it took, in microseconds.
pub type Finished = (u64, Result<Compiled, JitError>, u64);

/// A host thread compiling [`Prepared`] functions in the order they are submitted. It
/// ends when this handle is dropped.
pub struct CompileThread {
    jobs: mpsc::Sender<(u64, Prepared)>,
    done: mpsc::Receiver<Finished>,
}

impl CompileThread {
    /// Starts the thread, compiling with `compiler`.
    pub fn spawn(compiler: Compiler) -> Result<Self, JitError> {
        let (jobs, job_queue) = mpsc::channel::<(u64, Prepared)>();
        let (finished, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("softvisor-jit".into())
            .spawn(move || {
                for (ticket, prepared) in job_queue {
                    let started = Instant::now();
                    let result = compiler.compile(prepared);
                    let took = started.elapsed().as_micros() as u64;
                    if finished.send((ticket, result, took)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| JitError::Host(format!("cannot start the compile thread: {e}")))?;
        Ok(Self { jobs, done })
    }

    /// Queues `prepared` under `ticket`; false when the thread is gone.
    pub fn submit(&self, ticket: u64, prepared: Prepared) -> bool {
        self.jobs.send((ticket, prepared)).is_ok()
    }

    /// A finished job, if one is waiting.
    pub fn try_take(&self) -> Option<Finished> {
        self.done.try_recv().ok()
    }

    /// The next finished job, waiting for it (`None` when the thread is gone).
    pub fn take(&self) -> Option<Finished> {
        self.done.recv().ok()
    }
}
