//! `repro fit`: one model on one data file, as a summary or JSON.

use repro_kind::Failure;
use repro_tables::fitting;

use crate::cli::FitArgs;

pub fn fit(args: &FitArgs) -> Result<(), Failure> {
    no_huge_pages();
    let req = fitting::FitRequest {
        formula: args.formula.clone(),
        vcov: args.vcov.clone(),
        quantile: args.quantile,
        se: args.se.clone(),
        method: args.method.clone(),
        drop_singletons: args.drop_singletons,
    };
    let res = fitting::run(&args.data, &req).map_err(Failure::usage)?;
    let data = args.data.display().to_string();
    if args.json {
        let json = fitting::to_json(&data, &res);
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else {
        print!("{}", fitting::render_summary(&data, &res));
    }
    Ok(())
}

/// Turns transparent huge pages off for this process (`prctl(PR_SET_THP_DISABLE)`), before the
/// data is read. mimalloc advises huge pages for the memory it maps; on the benchmark machine (a
/// VM whose memory is mostly page cache) each fresh huge page cost a compaction and a 2 MiB
/// clear, and a 10M-row fixed-effects fit spent 2-3 s of system time on them against 0.4-1 s
/// with ordinary pages, at equal user time. `repro fit` starts no other process, so nothing
/// inherits the setting; failure (an old kernel) only costs speed.
fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes no memory.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}
