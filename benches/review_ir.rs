//! Runs one case of `cases.rs` a given number of times and nothing else, for
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
    let (name, count) = match &args[..] {
        [list] if list == "--list" => {
            cases.iter().for_each(|c| println!("{}", c.name));
            return;
        }
        [name, count] if count.parse::<usize>().is_ok() => (name, count.parse::<usize>().unwrap_or_default()),
        _ => {
            eprintln!("usage: review_ir --list | review_ir CASE COUNT");
            std::process::exit(2);
        }
    };
    let Some(case) = cases.iter().find(|c| c.name == name) else {
        eprintln!("no case named {name:?}");
        std::process::exit(2);
    };
    for _ in 0..count {
        black_box(sidecar_injector::review(black_box(&case.body), &case.config).expect("checked by cases()"));
    }
}
