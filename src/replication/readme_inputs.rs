//! What the package README states beyond the pipeline and the lock: the facts `package`
//! gathers (run times, memory, sizes, the shipped binary) and the machine repro runs on.
//!
//! Owns: [`Facts`], [`Machine`] and reading the machine from `/etc/os-release` and `/proc`.
//! Deliberately does not own: the README's wording (`readme`, `readme_facts`).

use std::collections::BTreeMap;

use crate::replication::words::bytes;

/// What the README states beyond the pipeline and the lock.
#[derive(Debug, Clone)]
pub struct Facts {
    pub pipeline_file: String,
    pub repro_version: String,
    pub rustc_version: String,
    pub machine: Machine,
    /// Seconds of each stage's last real run.
    pub runtimes: BTreeMap<String, f64>,
    /// Peak resident memory of each stage's last real run, in bytes, and what it measured
    /// (`command`: the command's processes; `process`: repro's own peak when the stage ended).
    pub memory: BTreeMap<String, (u64, String)>,
    /// Every file in the package (except the README, run.sh and manifests) with its size.
    pub sizes: BTreeMap<String, u64>,
    /// Files of sources that are not provided.
    pub withheld: Vec<String>,
    /// The binary the package ships.
    pub shipped: crate::replication::shipped::Shipped,
    /// Whether `repro-src/vendor/` holds the registry crates.
    pub vendored: bool,
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub os: String,
    pub arch: String,
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub memory_bytes: Option<u64>,
}

impl Machine {
    /// `OS, arch, N CPUs (model), M memory`.
    pub fn describe(&self) -> String {
        format!(
            "{}, {}, {} CPUs{}{}",
            self.os,
            self.arch,
            self.cpus,
            self.cpu_model
                .as_ref()
                .map_or(String::new(), |c| format!(" ({c})")),
            self.memory_bytes
                .map_or(String::new(), |b| format!(", {} memory", bytes(b)))
        )
    }
}

/// The machine repro runs on.
pub fn this_machine() -> Machine {
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    let memory_bytes = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    Machine {
        os,
        arch: std::env::consts::ARCH.to_string(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model,
        memory_bytes,
    }
}
