//! Launch options that are not policy: the step trace (`KEKKAI_TRACE_STEPS`), the debug
//! builds' fault injection and weakening (`KEKKAI_FAULT`, `KEKKAI_WEAKEN`), `-q`, and the
//! program's stdio as the supervisor decided it. Read by the supervisor and the sandbox's steps
//! alike; imports nothing of `launch` but the terminal's plan.

use super::terminal;
use crate::plan::steps::Step;

/// What a fault injection does at its step (debug builds,
/// `KEKKAI_FAULT=STEP:abort|stop|wait:FIFO`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// abort(): the process dies by SIGABRT.
    Abort,
    /// Block forever (until killed), to let a test kill the supervisor at this step.
    Stop,
    /// Block until a byte can be read from this FIFO, then go on (race tests).
    Wait(std::path::PathBuf),
}

/// Told of a sandbox's life by its supervisor, as it happens: what `kekkai run --name` keeps
/// in the state directory.
pub trait Watch: std::fmt::Debug {
    /// The sandbox's first process exists (in its cgroups, its id maps written).
    fn cloned(&self, pid: nix::unistd::Pid);
    /// The sandbox reported what it enforced: the program starts now.
    fn started(&self);
}

/// Launch options that are not policy.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Print each step's name to stderr as it starts (`KEKKAI_TRACE_STEPS=1`; `=time` adds the
    /// microseconds since the launcher started).
    pub trace_steps: bool,
    /// With the trace: when the launcher started.
    pub trace_start: Option<std::time::Instant>,
    /// Inject a fault at a step (debug builds only).
    pub fault: Option<(Step, Fault)>,
    /// Don't say what a best-effort policy runs without (`-q`).
    pub quiet: bool,
    /// Leave the launcher's command line and environment in the sandbox's first process
    /// (debug builds only, `KEKKAI_WEAKEN=launcher-args`: a test shows the audit catching it).
    pub keep_launcher_args: bool,
    /// Start `network: user` without its egress rules (debug builds only,
    /// `KEKKAI_WEAKEN=egress`: a test shows the audit catching it).
    pub skip_egress_rules: bool,
    /// The program's stdin, stdout and stderr (decided by the supervisor before clone from
    /// the policy's `terminal` and which of kekkai's own are terminals).
    pub stdio: terminal::StdioPlan,
    /// `kekkai learn`: the sandbox adds the observer filter (`plan::seccomp::observe`) on top
    /// of the policy's, and the supervisor records every call it is shown (`observe.rs`).
    pub observe: bool,
    /// Told when the sandbox exists and when its program starts (`run --name`, `--detach`).
    pub watch: Option<std::rc::Rc<dyn Watch>>,
}

impl Options {
    /// Reads the debug-only knobs from the environment (release builds ignore them).
    pub fn from_env() -> Options {
        let mut o = Options::default();
        match std::env::var_os("KEKKAI_TRACE_STEPS") {
            Some(v) if v == "1" => o.trace_steps = true,
            Some(v) if v == "time" => {
                o.trace_steps = true;
                o.trace_start = Some(std::time::Instant::now());
            }
            _ => {}
        }
        // Fault injection and weakening exist only in debug builds.
        if cfg!(debug_assertions) {
            o.keep_launcher_args =
                std::env::var_os("KEKKAI_WEAKEN").is_some_and(|v| v == "launcher-args");
            o.skip_egress_rules = std::env::var_os("KEKKAI_WEAKEN").is_some_and(|v| v == "egress");
            if let Ok(spec) = std::env::var("KEKKAI_FAULT") {
                if let Some((name, what)) = spec.split_once(':') {
                    let step = Step::all().find(|s| s.name() == name);
                    let fault = match what {
                        "abort" => Some(Fault::Abort),
                        "stop" => Some(Fault::Stop),
                        _ => what.strip_prefix("wait:").map(|p| Fault::Wait(p.into())),
                    };
                    if let (Some(s), Some(f)) = (step, fault) {
                        o.fault = Some((s, f));
                    }
                }
            }
        }
        o
    }

    /// Marks the start of a step: traces it and injects a fault if asked.
    pub fn enter(&self, step: Step) {
        if self.trace_steps {
            let line = match self.trace_start {
                Some(t) => format!(
                    "kekkai-step: {} +{}us\n",
                    step.name(),
                    t.elapsed().as_micros()
                ),
                None => format!("kekkai-step: {}\n", step.name()),
            };
            // One write: the supervisor may be writing to the same stderr.
            use std::io::Write;
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        if let Some((s, fault)) = &self.fault {
            if *s == step {
                match fault {
                    Fault::Abort => std::process::abort(),
                    Fault::Stop => loop {
                        nix::unistd::pause();
                    },
                    Fault::Wait(fifo) => {
                        use std::io::Read;
                        let mut byte = [0u8; 1];
                        if let Ok(mut f) = std::fs::File::open(fifo) {
                            let _ = f.read(&mut byte);
                        }
                    }
                }
            }
        }
    }
}
