// Command custody-bench runs the Go reference side of the custody benchmarks.
// Every workload has a twin of the same name in bench/*_bench.cpp that does
// the same work (bench/README.md lists where a twin cannot be exact);
// bench/compare runs both and prints the ratios.
//
// Output: one line per workload, "<workload> <ns> ns/op", where an op is one
// item transferred (or one round trip for ping-pong workloads).
//
//	go build -o ../../build/go-bench . && ../../build/go-bench -only 'spsc' -reps 3
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"sync/atomic"
	"time"
)

// Ops per run, as on the C++ side.
const (
	itemsN              = 2_000_000 // items, buffered workloads
	handoverItems       = 200_000   // items, spsc_cap1
	roundTrips          = 200_000   // round trips, ping-pong
	cachelineRoundTrips = 50_000    // round trips, cache-line floor
	cachelineWarmUp     = 1_000     // untimed round trips before them
	warmupDiv           = 10        // the warm-up run moves 1/warmupDiv of the items
)

// A workload performs one full run moving n ops and returns the elapsed wall
// time. It must check its own result and panic on a wrong one.
type workload struct {
	name string
	ops  int // ops in a timed run
	run  func(n int) time.Duration
}

// workloads lists every workload in output order. Adding one: write a
// func(n int) time.Duration and add a line here (same name on the C++ side).
var workloads = []workload{
	{"hw_cacheline_roundtrip", cachelineRoundTrips, cachelineRoundtrip},
	{"unbuffered_pingpong", roundTrips, unbufferedPingpong},
	{"spsc_cap1024", itemsN, func(n int) time.Duration { return spsc(n, 1024) }},
	{"spsc_cap1", handoverItems, func(n int) time.Duration { return spsc(n, 1) }},
	{"mpmc_4x4_cap1024", itemsN, func(n int) time.Duration { return mpmc(n, 4, 4, 1024) }},
	{"select2_cap1024", itemsN, select2},
}

// expectSum panics if the received total is not 0+1+...+(n-1).
func expectSum(name string, got int64, n int) {
	want := int64(n) * int64(n-1) / 2
	if got != want {
		panic(fmt.Sprintf("%s: sum %d, want %d", name, got, want))
	}
}

// cachelineRoundtrip is no channel workload: two goroutines, each locked to
// its own thread, bounce one atomic counter, spinning bare (as the C++ twin):
// the least any hand-over between two running threads costs at the time of
// the run. One op = one round trip. The clock starts after cachelineWarmUp
// untimed round trips, as in the C++ twin (whose new thread may start on its
// creator's core).
func cachelineRoundtrip(n int) time.Duration {
	var flag int64
	rounds := cachelineWarmUp + n
	done := make(chan struct{})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for i := 0; i < rounds; i++ {
			for atomic.LoadInt64(&flag) != int64(2*i+1) {
			}
			atomic.StoreInt64(&flag, int64(2*i+2))
		}
		close(done)
	}()
	var start time.Time
	for i := 0; i < rounds; i++ {
		if i == cachelineWarmUp {
			start = time.Now()
		}
		atomic.StoreInt64(&flag, int64(2*i+1))
		for atomic.LoadInt64(&flag) != int64(2*i+2) {
		}
	}
	<-done
	return time.Since(start)
}

// unbufferedPingpong: main sends i on a; the echo goroutine receives it and
// sends it back on b; main receives. One op = one round trip.
func unbufferedPingpong(n int) time.Duration {
	a, b := make(chan int), make(chan int)
	start := time.Now()
	go func() {
		for v := range a {
			b <- v
		}
		close(b)
	}()
	var sum int64
	for i := 0; i < n; i++ {
		a <- i
		sum += int64(<-b)
	}
	close(a)
	<-b // echo goroutine has finished
	elapsed := time.Since(start)
	expectSum("unbuffered_pingpong", sum, n)
	return elapsed
}

// spsc: one producer sends 0..n-1 into a buffered channel and closes it; the
// main goroutine receives until closed.
func spsc(n, capacity int) time.Duration {
	ch := make(chan int, capacity)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			ch <- i
		}
		close(ch)
	}()
	var sum int64
	for v := range ch {
		sum += int64(v)
	}
	elapsed := time.Since(start)
	expectSum("spsc", sum, n)
	return elapsed
}

// mpmc: p producers each send a disjoint share of 0..n-1; c consumers receive
// until closed; the channel is closed once every producer has finished.
func mpmc(n, p, c, capacity int) time.Duration {
	ch := make(chan int, capacity)
	sums := make([]int64, c)
	prodDone := make(chan struct{}, p)
	consDone := make(chan struct{}, c)
	start := time.Now()
	for k := 0; k < p; k++ {
		lo, hi := n*k/p, n*(k+1)/p
		go func() {
			for i := lo; i < hi; i++ {
				ch <- i
			}
			prodDone <- struct{}{}
		}()
	}
	for k := 0; k < c; k++ {
		k := k
		go func() {
			var s int64
			for v := range ch {
				s += int64(v)
			}
			sums[k] = s
			consDone <- struct{}{}
		}()
	}
	for k := 0; k < p; k++ {
		<-prodDone
	}
	close(ch)
	for k := 0; k < c; k++ {
		<-consDone
	}
	elapsed := time.Since(start)
	var sum int64
	for _, s := range sums {
		sum += s
	}
	expectSum("mpmc", sum, n)
	return elapsed
}

// select2: two producers each send half of 0..n-1 on their own channel
// (capacity 1024); the main goroutine selects over both plus a third channel
// nobody sends on, until it has all n items.
func select2(n int) time.Duration {
	c1, c2 := make(chan int, 1024), make(chan int, 1024)
	idle := make(chan int) // never ready
	start := time.Now()
	go func() {
		for i := 0; i < n/2; i++ {
			c1 <- i
		}
	}()
	go func() {
		for i := n / 2; i < n; i++ {
			c2 <- i
		}
	}()
	var sum int64
	for got := 0; got < n; got++ {
		select {
		case v := <-c1:
			sum += int64(v)
		case v := <-c2:
			sum += int64(v)
		case v := <-idle:
			sum += int64(v)
		}
	}
	elapsed := time.Since(start)
	expectSum("select2_cap1024", sum, n)
	return elapsed
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func main() {
	only := flag.String("only", "", "run only workloads whose name matches this regexp")
	reps := flag.Int("reps", 1, "timed runs per workload; the median is printed")
	list := flag.Bool("list", false, "print the workload names and exit")
	verbose := flag.Bool("v", false, "also print every timed run to stderr")
	scale := flag.Bool("scale", false, "run the scale workloads (scale.go) instead, one run each")
	flag.Parse()

	var re *regexp.Regexp
	if *only != "" {
		var err error
		if re, err = regexp.Compile(*only); err != nil {
			fmt.Fprintf(os.Stderr, "bad -only: %v\n", err)
			os.Exit(2)
		}
	}
	if *reps < 1 {
		fmt.Fprintln(os.Stderr, "-reps must be >= 1")
		os.Exit(2)
	}
	if !*list {
		fmt.Fprintf(os.Stderr, "# %s GOMAXPROCS=%d NumCPU=%d\n",
			runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU())
	}
	if *scale {
		runScale(func(name string) bool { return re == nil || re.MatchString(name) })
		return
	}
	for _, w := range workloads {
		if re != nil && !re.MatchString(w.name) {
			continue
		}
		if *list {
			fmt.Println(w.name)
			continue
		}
		w.run(w.ops / warmupDiv)
		runtime.GC()
		results := make([]float64, 0, *reps)
		for r := 0; r < *reps; r++ {
			ns := float64(w.run(w.ops).Nanoseconds()) / float64(w.ops)
			results = append(results, ns)
			if *verbose {
				fmt.Fprintf(os.Stderr, "#   %s rep %d: %.1f ns/op\n", w.name, r+1, ns)
			}
		}
		fmt.Printf("%s %.1f ns/op\n", w.name, median(results))
	}
}
