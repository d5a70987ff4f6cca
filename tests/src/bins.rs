//! Where the compiled function binaries are.

use std::path::PathBuf;

/// The binary `name`: from `SECURE_MLOPS_BIN_DIR` if set (e.g. `target/release` for benchmarks), else
/// from the cargo profile directory the current executable was built into. The binaries must be built
/// first (`cargo build --workspace --bins`; `make test` and `make demo` do it).
pub fn path(name: &str) -> PathBuf {
    let dir = match std::env::var_os("SECURE_MLOPS_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("current executable path");
            let dir = exe.parent().expect("executable directory").to_path_buf();
            // Test executables live in <target>/<profile>/deps, binaries in <target>/<profile>.
            if dir.ends_with("deps") {
                dir.parent().expect("profile directory").to_path_buf()
            } else {
                dir
            }
        }
    };
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} not found: build the functions first (cargo build --workspace --bins, or make test)",
        path.display()
    );
    path
}
