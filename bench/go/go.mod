module custody-bench

go 1.19
