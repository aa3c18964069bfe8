//! The command line: flags and subcommands as plain data (clap derive).
//!
//! Owns: parsing arguments. Deliberately does not own: doing anything with them (`main` dispatches).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A reproducible, incremental workflow engine for empirical economics.
#[derive(Debug, Parser)]
#[command(name = "repro", version, about, max_term_width = 100)]
pub struct Cli {
    /// The pipeline file; stage paths are relative to its folder.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "pipeline.yaml"
    )]
    pub file: PathBuf,

    /// More detail: -v lists up-to-date stages and info logs, -vv debug logs (or set RUST_LOG).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring stages up to date: run what is stale, restore what the cache has.
    Run(RunArgs),
    /// Show which stages are stale and why.
    Status(StatusArgs),
    /// Print the stage graph.
    Dag(DagArgs),
    /// Remove cache objects that no entry of the lock file refers to.
    Gc(GcArgs),
    /// Estimate one model on a CSV or Parquet file.
    Fit(FitArgs),
    /// Write a replication package: pipeline, specs, shareable data, outputs, repro's source,
    /// checksums and a README following the Social Science Data Editors' template.
    Package(PackageArgs),
    /// Rebuild a package (or this project) from scratch in a temporary folder and compare every
    /// output byte for byte with its lock; exit 0 only when everything reproduces.
    Verify(VerifyArgs),
    /// Check the pipeline for what data editors flag: absolute paths, unseeded randomness,
    /// outputs no exhibit claims, sources without citation or availability statement.
    Lint,
    /// Write one self-contained HTML page with the tables, figures, stage graph and provenance.
    Report(ReportArgs),
    /// Internal: run one built-in stage's work here, as a Slurm job does on its node (no lock,
    /// no hashing, no recording: the dispatcher that submitted the job does those).
    #[command(name = "__stage", hide = true)]
    Stage(StageArgs),
    /// Upload the outputs and records of up-to-date stages to the pipeline's `remote:`.
    Push(ShareArgs),
    /// Download the outputs of the stages in `repro.lock` from the pipeline's `remote:` into the
    /// cache, and put missing or different ones into the workspace.
    Pull(PullArgs),
    /// List what changed in the results (coefficients, standard errors, stars, N, fit
    /// statistics, data row counts) since a git revision or a saved lock file.
    Diff(DiffArgs),
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// A git revision whose lock to compare with (default `HEAD`), or a saved lock file.
    #[arg(value_name = "REV | LOCKFILE")]
    pub against: Option<String>,
    /// Plain text, Markdown, an HTML page, or JSON (docs/diff.md).
    #[arg(long, value_enum, default_value = "text")]
    pub format: DiffFormat,
    /// Exit with 1 when anything changed (for CI).
    #[arg(long)]
    pub fail_on_change: bool,
}

/// `--format` of `repro diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Md,
    Html,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ShareArgs {
    /// Stages to push or pull (with everything they need); all when none are named.
    pub stages: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub share: ShareArgs,
    /// Replace outputs that differ from the lock even when what they hold is in no cache (it is
    /// lost); without it such stages are not pulled.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct StageArgs {
    /// The built-in stage to run.
    pub name: String,
    /// The stage's definition check as the dispatcher computed it; the stage refuses to run
    /// when this pipeline file or binary gives another.
    #[arg(long)]
    pub expect: String,
}

/// `--executor`: where stages run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorArg {
    Local,
    Slurm,
}

impl From<ExecutorArg> for repro_engine::pipeline::ExecutorKind {
    fn from(e: ExecutorArg) -> Self {
        match e {
            ExecutorArg::Local => Self::Local,
            ExecutorArg::Slurm => Self::Slurm,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Where to write the page (default: the pipeline's `report:` path, else output/report.html).
    #[arg(short, long)]
    pub out: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct PackageArgs {
    /// A folder, or a file ending in `.zip`.
    #[arg(long, default_value = "replication-package")]
    pub out: PathBuf,
    /// Leave out the vendored crates (`repro-src/vendor/`): a much smaller package whose source
    /// build needs crates.io; the shipped binary still runs offline.
    #[arg(long)]
    pub no_vendor: bool,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A package folder, a package `.zip`, or a project folder.
    #[arg(default_value = ".")]
    pub target: PathBuf,
    /// How many stages may run at once (default: the number of cores).
    #[arg(short = 'j', long = "jobs", value_parser = jobs_range())]
    pub jobs: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// The data file (`.csv` or `.parquet`).
    #[arg(long)]
    pub data: PathBuf,
    /// fixest syntax: `y ~ x1 + x2 | fe1 + fe2 | endo ~ z1 + z2` (`fe1^fe2` interacts).
    #[arg(long)]
    pub formula: String,
    /// `iid`, `hc1`, `cluster:V` or `cluster:V1+V2`.
    #[arg(long, default_value = "iid")]
    pub vcov: String,
    /// Quantile regression at this quantile, strictly between 0 and 1.
    #[arg(long)]
    pub quantile: Option<f64>,
    /// Quantile standard errors: `iid`, `nid` (default), `ker`, or `bootstrap:REPS:SEED`.
    #[arg(long)]
    pub se: Option<String>,
    /// Quantile regression with fixed effects: `pooled` (dummies, default), `mmqr`, `canay`.
    #[arg(long)]
    pub method: Option<String>,
    /// Drop singleton fixed-effect levels iteratively, as reghdfe does (fixest keeps them).
    #[arg(long)]
    pub drop_singletons: bool,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Stages to bring up to date (with everything they need); all when none are named.
    pub stages: Vec<String>,
    /// How many stages may run at once (default: the number of cores).
    #[arg(short = 'j', long = "jobs", value_parser = jobs_range())]
    pub jobs: Option<usize>,
    /// Rerun the selected stages even when they are up to date.
    #[arg(long)]
    pub force: bool,
    /// Print what would run, and why, without running anything.
    #[arg(long)]
    pub dry_run: bool,
    /// After a stage fails, go on with the stages that do not need it.
    #[arg(short = 'k', long)]
    pub keep_going: bool,
    /// If another repro run holds the project, wait for it instead of refusing.
    #[arg(long)]
    pub wait: bool,
    /// Where every stage runs, over the pipeline's `executor:` settings (default: as the
    /// pipeline says, else local). `slurm` submits one `sbatch` job per stage.
    #[arg(long, value_enum)]
    pub executor: Option<ExecutorArg>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Stages to report on (with everything they need); all when none are named.
    pub stages: Vec<String>,
    /// Print `{"stages": [{"name", "stale", "reasons"}]}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct DagArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: DagFormatArg,
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Report what would be removed without removing it.
    #[arg(long)]
    pub dry_run: bool,
}

/// `--format` of `repro dag`: the engine's `DagFormat` as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DagFormatArg {
    Text,
    Dot,
    Mermaid,
}

impl From<DagFormatArg> for repro_engine::status::DagFormat {
    fn from(f: DagFormatArg) -> Self {
        match f {
            DagFormatArg::Text => Self::Text,
            DagFormatArg::Dot => Self::Dot,
            DagFormatArg::Mermaid => Self::Mermaid,
        }
    }
}

/// `-j`: 1 to 4,096 stages at once. `0` used to mean 1 silently; beyond a few thousand
/// concurrent commands a machine runs out of processes long before it runs out of stages.
fn jobs_range() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096)
}
