module sidecar-injector/benches/baselines/go

go 1.19
