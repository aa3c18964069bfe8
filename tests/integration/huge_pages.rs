//! Transparent huge pages: `repro run` turns them off for its own data work (src/pages.rs), and a
//! command stage still starts with the setting repro was started with, as the kernel reports it
//! in `/proc/self/status` (`THP_enabled`).

use crate::Project;

/// The `THP_enabled` line of a process's `/proc/.../status` (absent on kernels before 5.0).
fn thp_line(status: &str) -> Option<&str> {
    status.lines().find(|l| l.starts_with("THP_enabled:"))
}

#[test]
fn command_stages_start_with_the_huge_page_setting_repro_was_started_with() {
    let own = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(own) = thp_line(&own) else {
        println!("skipped: this kernel does not report THP_enabled in /proc/self/status");
        return;
    };
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "stages:\n  probe:\n    cmd: grep THP_enabled /proc/self/status > thp.txt\n    outs: [thp.txt]\n",
    );
    p.repro(&["run"]).ok();
    assert_eq!(p.read("thp.txt").trim_end(), own);
}
