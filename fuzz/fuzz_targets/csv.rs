//! Fuzz target `csv`: see `repro_fuzz::checks::csv` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| repro_fuzz::checks::csv(data));
