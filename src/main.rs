/// Stack for every thread the process starts (actix workers included), unless `RUST_MIN_STACK`
/// says otherwise. GraphQL resolves nested fields through deeply nested futures; the default
/// 2 MiB is not enough for a debug build's frames, and 8 MiB of reserved (mostly untouched)
/// address space per thread costs no resident memory.
const THREAD_STACK_BYTES: &str = "8388608";

/// jemalloc, for memory that goes back to the system after a burst (see `Cargo.toml`).
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    // Read once, when the first thread is spawned: set before anything spawns one.
    if std::env::var_os("RUST_MIN_STACK").is_none() {
        std::env::set_var("RUST_MIN_STACK", THREAD_STACK_BYTES);
    }
    hayloft::cli::main()
}
