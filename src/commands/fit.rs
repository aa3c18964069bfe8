//! `repro fit`: one model on one data file, as a summary or JSON.

use repro_kind::Failure;
use repro_tables::fitting;

use crate::cli::FitArgs;

pub fn fit(args: &FitArgs) -> Result<(), Failure> {
    // `repro fit` starts no other process, so nothing inherits the setting.
    crate::pages::no_huge_pages();
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
