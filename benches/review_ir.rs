//! Runs one case of `benches/cases/` a given number of times and nothing else, for
//! `benches/review_ir.sh`, which counts the instructions under callgrind: a deterministic count of
//! reviews, where criterion's profiling mode runs as many as fit in its time.
//!
//! `cargo bench --bench review_ir -- CASE COUNT`, or `-- --list` for the cases' names.

use std::hint::black_box;

mod cases;

// The allocator the binaries ship with, as in `review.rs`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let cases = cases::cases();
    if let [list] = &args[..]
        && list == "--list"
    {
        cases.iter().for_each(|c| println!("{}", c.name));
        return;
    }
    let [name, count] = &args[..] else { usage() };
    let Ok(count) = count.parse::<usize>() else { usage() };
    let Some(case) = cases.iter().find(|c| c.name == name) else {
        eprintln!("no case named {name:?}");
        std::process::exit(2);
    };
    for _ in 0..count {
        black_box(sidecar_injector::review(black_box(&case.body), &case.config).expect("checked by cases()"));
    }
}

fn usage() -> ! {
    eprintln!("usage: review_ir --list | review_ir CASE COUNT");
    std::process::exit(2);
}
