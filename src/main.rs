fn main() -> std::process::ExitCode {
    hayloft::cli::main()
}
