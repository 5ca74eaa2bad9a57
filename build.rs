//! Records which commit the binary was built from, for `hayloft --version`, `/metrics`
//! (`hayloft_build_info`) and the nodes table. From `HAYLOFT_COMMIT` when the build sets it (the
//! container build has no `.git`), else from git; `unknown` when neither says.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HAYLOFT_COMMIT");
    // A new commit moves HEAD or the branch it names; either re-runs this script.
    let git = Path::new(".git");
    if git.is_dir() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        println!("cargo:rerun-if-changed=.git/packed-refs");
        if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
            if let Some(reference) = head.trim().strip_prefix("ref: ") {
                println!("cargo:rerun-if-changed=.git/{reference}");
            }
        }
    }
    let commit = std::env::var("HAYLOFT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(|| {
            let output = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
            output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=HAYLOFT_COMMIT={commit}");
}
