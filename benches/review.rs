//! The pure function on the cases of `cases/` (a typical Pod under three configurations, a huge
//! one), plus a size sweep to show that the cost grows linearly with the Pod. Goals: a median of at
//! most 20 µs typical and 2 ms huge.
//!
//! `cargo bench --bench review`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sidecar_injector::{Config, review};
use std::hint::black_box;

mod cases;

// Measured with the allocator the binaries ship with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn benches(c: &mut Criterion) {
    for case in cases::cases() {
        eprintln!("{}: review body {} bytes", case.name, case.body.len());
        let mut group = c.benchmark_group("review");
        group.throughput(Throughput::Bytes(case.body.len() as u64));
        group.bench_function(case.name, |b| b.iter(|| review(black_box(&case.body), &case.config)));
        group.finish();
    }

    let config = Config::builtin();
    let mut sweep = c.benchmark_group("review_by_env_vars");
    for env in [250, 500, 1000, 1500, 3000] {
        let body = cases::huge(env);
        sweep.throughput(Throughput::Bytes(body.len() as u64));
        sweep.bench_with_input(BenchmarkId::from_parameter(3 * env), &body, |b, body| {
            b.iter(|| review(black_box(body), &config))
        });
    }
    sweep.finish();
}

criterion_group!(review_benches, benches);
criterion_main!(review_benches);
