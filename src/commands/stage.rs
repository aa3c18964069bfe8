//! `repro __stage NAME --expect CHECK` (hidden): one built-in stage's work, on a cluster node.
//!
//! Owns: the node's side of a built-in stage run by the Slurm executor: loading the pipeline,
//! refusing when the stage's definition or code is not the one the dispatcher submitted, and
//! running the stage; and the command line the dispatcher submits for it. Deliberately does not
//! own: the project lock, hashing or recording (the dispatcher on the submitting machine keeps
//! them; this process only writes the stage's outputs).

use std::path::Path;

use repro_engine::pipeline::Pipeline;
use repro_engine::{runner, slurm};
use repro_kind::{Diagnostic, Failure};

use crate::cli::{Cli, StageArgs};
use crate::kinds::load_pipeline;

pub fn stage(cli: &Cli, args: &StageArgs) -> Result<(), Failure> {
    let p = load_pipeline(&cli.file)?;
    let Some(i) = p.index_of(&args.name) else {
        return Err(Failure::usage(Diagnostic::new(format!(
            "no stage named `{}` in `{}`",
            args.name,
            cli.file.display()
        ))));
    };
    let stage = &p.stages[i];
    let check = slurm::definition_check(stage);
    if check != args.expect {
        return Err(Failure::stage(
            Diagnostic::new(format!("stage `{}` was not run on this node", stage.name))
                .cause(format!(
                    "its definition or code here (`{check}`) is not the one submitted (`{}`)",
                    args.expect
                ))
                .hint("the pipeline, a spec, or the `repro` binary on the nodes differs from the submitting machine's; make them the same and run again"),
        ));
    }
    // A built-in stage starts no process.
    crate::pages::no_huge_pages();
    runner::run_builtin(&p.root, stage).map_err(Failure::stage)
}

/// How a node runs one built-in stage: this very binary (nodes must see it at the same path, as
/// they see the project), the pipeline file by name from the project folder, `__stage`.
pub fn node_command(p: &Pipeline) -> Result<Vec<String>, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::io("cannot find the path of the running `repro`", &e))?;
    let file = p
        .file
        .file_name()
        .map(Path::new)
        .unwrap_or(Path::new("pipeline.yaml"));
    Ok(vec![
        exe.to_string_lossy().into_owned(),
        "-f".into(),
        file.to_string_lossy().into_owned(),
        "__stage".into(),
    ])
}
