//! The `ukey` command; everything lives in the library so tests and the agent share it.

fn main() -> std::process::ExitCode {
    ukey::cli::main()
}
