//! hull: an OCI container runtime. The process entry; everything after it
//! is the library's `run`: parse the command line, set up logging,
//! dispatch, and turn the outcome into an exit status.

#![cfg_attr(not(test), no_main)]

/// The process entry glibc calls. Rust's own start-up (`lang_start`) is
/// left out on purpose: before `main` it reads /proc/self/maps and maps a
/// signal stack, only to print a nicer message on stack overflow, ~16
/// syscalls at each of a container's execs of hull. What of it hull needs,
/// `sys::start_up` does; `std::env::args` works without it (glibc hands
/// the arguments to std's initialiser), and `std::process::exit`, hull's
/// only way out, flushes stdout itself.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    hull::sys::start_up();
    hull::run()
}
