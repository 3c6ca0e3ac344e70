//! Cranelift's compilation step on its own: a function's IR in, machine code and its
//! relocations out, with no executable memory involved, so it can run on another thread.
//!
//! [`crate::backend::Backend`] declares a function ([`Prepared`]: its signature and what
//! builds its body) and places compiled code in executable memory; between the two,
//! [`Compiler::compile`] does the expensive part (building the IR, the optimizer, register
//! allocation, emission). [`CompileThread`] runs it on a second host thread, so the guest
//! keeps running (hot blocks interpreted a little longer) while its blocks compile: what
//! the guest sees never depends on when a translation becomes ready, because both engines
//! retire the same instructions with the same effects.

use crate::JitError;
use cranelift_codegen::ir::{Function, Signature, UserFuncName, Value};
use cranelift_codegen::isa::{OwnedTargetIsa, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{FuncId, ModuleReloc};
use std::sync::mpsc;
use std::time::Instant;

/// Emits a function's body, given the builder (in the entry block, which has the
/// function's parameters) and those parameters; every path must end in a return or a tail
/// call.
pub type Body = Box<dyn FnOnce(&mut FunctionBuilder, &[Value]) + Send>;

/// A function declared in a backend's module, ready to be built and compiled anywhere.
pub struct Prepared {
    /// Its id in the module that declared it.
    pub id: FuncId,
    /// Its signature.
    pub signature: Signature,
    /// The target's pointer type and the like, which building needs.
    pub target: TargetFrontendConfig,
    /// Compile without Cranelift's optimizer (see `Backend::prepare_block`).
    pub quick: bool,
    /// What builds its IR.
    pub body: Body,
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

    /// Builds `prepared`'s IR (with `scratch`, reusable from one function to the next) and
    /// compiles it for its target.
    pub fn compile(
        &self,
        prepared: Prepared,
        scratch: &mut FunctionBuilderContext,
    ) -> Result<Compiled, JitError> {
        let isa = if prepared.quick {
            &*self.quick
        } else {
            &*self.optimized
        };
        let name = UserFuncName::user(0, prepared.id.as_u32());
        let mut func = Function::with_name_signature(name, prepared.signature);
        {
            let mut builder = FunctionBuilder::new(&mut func, scratch);
            let entry = builder.create_block();
            builder.append_block_params_for_function_params(entry);
            builder.switch_to_block(entry);
            let params = builder.block_params(entry).to_vec();
            (prepared.body)(&mut builder, &params);
            builder.seal_all_blocks();
            builder.finalize(prepared.target);
        }
        let mut context = cranelift_codegen::Context::for_function(func);

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
                let mut scratch = FunctionBuilderContext::new();
                for (ticket, prepared) in job_queue {
                    let started = Instant::now();
                    let result = compiler.compile(prepared, &mut scratch);
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
