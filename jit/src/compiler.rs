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
//!
//! Jobs come in bursts (the kernel's initialisation reaches new code all the time; half of
//! its submissions found 31 or more jobs queued, some 450), so the thread takes the job
//! the guest interpreted the most instructions of while it waited, not the oldest: a hot
//! loop's block no longer waits behind a hundred blocks that ran once since.

use crate::JitError;
use cranelift_codegen::ir::{Signature, UserFuncName, Value};
use cranelift_codegen::isa::{OwnedTargetIsa, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{FuncId, ModuleReloc};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Instant;

/// How much a queued job is wanted: the guest instructions interpreted, while it waited,
/// in the block it translates. The engine adds to it; the compile thread reads it.
pub type Urgency = Arc<AtomicU64>;

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

    /// Builds `prepared`'s IR (in `scratch`, reused from one function to the next) and
    /// compiles it for its target.
    pub fn compile(&self, prepared: Prepared, scratch: &mut Scratch) -> Result<Compiled, JitError> {
        let isa = if prepared.quick {
            &*self.quick
        } else {
            &*self.optimized
        };
        let context = &mut scratch.context;
        context.clear();
        context.func.name = UserFuncName::user(0, prepared.id.as_u32());
        context.func.signature = prepared.signature;
        {
            let mut builder = FunctionBuilder::new(&mut context.func, &mut scratch.builder);
            let entry = builder.create_block();
            builder.append_block_params_for_function_params(entry);
            builder.switch_to_block(entry);
            let params = builder.block_params(entry).to_vec();
            (prepared.body)(&mut builder, &params);
            builder.seal_all_blocks();
            builder.finalize(prepared.target);
        }

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

/// What compiling reuses from one function to the next: the IR builder's state and
/// Cranelift's context (the function, its analyses and the register allocator's tables),
/// cleared, not freed, between functions. A fresh context per function had the register
/// allocator's set-up (`Env::init`) as the compile thread's costliest function.
pub struct Scratch {
    builder: FunctionBuilderContext,
    context: cranelift_codegen::Context,
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            builder: FunctionBuilderContext::new(),
            context: cranelift_codegen::Context::new(),
        }
    }
}

/// A finished job: its ticket, its result and the host time it took, in microseconds.
pub type Finished = (u64, Result<Compiled, JitError>, u64);

/// A host thread compiling [`Prepared`] functions, the most urgent first (see the module
/// documentation). It ends when this handle is dropped.
pub struct CompileThread {
    queue: Arc<JobQueue<Prepared>>,
    done: mpsc::Receiver<Finished>,
}

/// A queued compile (`T`: what it compiles).
struct Job<T> {
    ticket: u64,
    prepared: T,
    urgency: Urgency,
}

/// The jobs waiting for the compile thread.
struct JobQueue<T> {
    jobs: Mutex<Vec<Job<T>>>,
    ready: Condvar,
    /// The handle was dropped: the thread ends.
    closed: AtomicBool,
    /// The thread ended (or panicked): nothing submitted will be compiled.
    gone: AtomicBool,
}

impl<T> JobQueue<T> {
    fn new() -> Self {
        Self {
            jobs: Mutex::new(Vec::new()),
            ready: Condvar::new(),
            closed: AtomicBool::new(false),
            gone: AtomicBool::new(false),
        }
    }

    /// Queues a job.
    fn push(&self, ticket: u64, prepared: T, urgency: Urgency) -> bool {
        let Ok(mut jobs) = self.jobs.lock() else {
            return false;
        };
        jobs.push(Job {
            ticket,
            prepared,
            urgency,
        });
        self.ready.notify_one();
        true
    }

    /// The most urgent job (among equals, the first submitted), waiting for one; `None`
    /// once the queue is closed.
    fn next(&self) -> Option<Job<T>> {
        let mut jobs = self.jobs.lock().ok()?;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            let most_urgent = jobs
                .iter()
                .enumerate()
                .max_by_key(|(_, job)| {
                    let urgency = job.urgency.load(Ordering::Relaxed);
                    (urgency, std::cmp::Reverse(job.ticket))
                })
                .map(|(at, _)| at);
            if let Some(at) = most_urgent {
                return Some(jobs.swap_remove(at));
            }
            jobs = self.ready.wait(jobs).ok()?;
        }
    }
}

/// Marks the queue's thread gone when the thread ends, however it ends.
struct GoneOnDrop<T>(Arc<JobQueue<T>>);

impl<T> Drop for GoneOnDrop<T> {
    fn drop(&mut self) {
        self.0.gone.store(true, Ordering::Release);
    }
}

impl CompileThread {
    /// Starts the thread, compiling with `compiler`.
    pub fn spawn(compiler: Compiler) -> Result<Self, JitError> {
        let queue = Arc::new(JobQueue::new());
        let (finished, done) = mpsc::channel();
        let thread_queue = GoneOnDrop(queue.clone());
        std::thread::Builder::new()
            .name("softvisor-jit".into())
            .spawn(move || {
                let mut scratch = Scratch::default();
                while let Some(job) = thread_queue.0.next() {
                    let started = Instant::now();
                    let result = compiler.compile(job.prepared, &mut scratch);
                    let took = started.elapsed().as_micros() as u64;
                    if finished.send((job.ticket, result, took)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| JitError::Host(format!("cannot start the compile thread: {e}")))?;
        Ok(Self { queue, done })
    }

    /// Queues `prepared` under `ticket`, wanted as much as `urgency` says; false when the
    /// thread is gone.
    pub fn submit(&self, ticket: u64, prepared: Prepared, urgency: Urgency) -> bool {
        !self.queue.gone.load(Ordering::Acquire) && self.queue.push(ticket, prepared, urgency)
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

impl Drop for CompileThread {
    fn drop(&mut self) {
        self.queue.closed.store(true, Ordering::Release);
        // Taking the lock orders the flag before the thread's next look at it.
        drop(self.queue.jobs.lock());
        self.queue.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_urgent_job_goes_first_and_equals_in_order() {
        let queue = JobQueue::new();
        let urgencies: Vec<Urgency> = (0..4).map(|_| Urgency::default()).collect();
        for (ticket, urgency) in urgencies.iter().enumerate() {
            assert!(queue.push(ticket as u64, (), urgency.clone()));
        }
        urgencies[2].fetch_add(50, Ordering::Relaxed);
        urgencies[3].fetch_add(7, Ordering::Relaxed);
        let order: Vec<u64> = std::iter::from_fn(|| {
            let empty = queue.jobs.lock().unwrap().is_empty();
            (!empty).then(|| queue.next().unwrap().ticket)
        })
        .collect();
        assert_eq!(order, [2, 3, 0, 1]);
        queue.closed.store(true, Ordering::Release);
        assert!(queue.next().is_none(), "a closed queue ends the thread");
    }
}
