// Store workloads: the Go reference side of bench/store_bench.cpp, written the way the seed's
// Go design does it: an owner goroutine selecting on a request channel and `done`, each
// request carrying its own reply channel; GetData under a sync.Mutex; the owner sending each
// update to one channel per subscriber, in turn. Each twin has the custody side's buffering
// (request channel and subscriber capacities), hand-overs and per-op work.

package main

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	storeRoundTrips  = 50_000    // set() calls per run
	storeGets        = 2_000_000 // GetData() calls per run, both readers together
	storeUpdates     = 2_000_000 // publishes per run, fanout workloads
	lockstepUpdates  = 20_000    // publishes per run, one-slot fanout
	scaleUpdates     = 5_000     // publishes per run, 1,000 subscribers
	scaleSubscribers = 1000
)

func init() {
	workloads = append(workloads,
		workload{"store_set_roundtrip", storeRoundTrips, func(n int) time.Duration { return storeSetRoundtrip(n, 0) }},
		workload{"store_set_roundtrip_req16", storeRoundTrips, func(n int) time.Duration { return storeSetRoundtrip(n, 16) }},
		workload{"store_get_2readers_pod", storeGets, storeGet2ReadersPod},
		workload{"store_get_2readers_string", storeGets, storeGet2ReadersString},
		workload{"store_get_2readers_string_copy", storeGets, storeGet2ReadersStringCopy},
		// custody's block(1), one slot per subscriber, against unbuffered outputs: the seed's lockstep.
		workload{"notify_fanout2_block1", lockstepUpdates, func(n int) time.Duration { return notifyFanout2(n, 0) }},
		workload{"notify_fanout2_block256", storeUpdates, func(n int) time.Duration { return notifyFanout2(n, 256) }},
		workload{"notify_fanout2_block1024", storeUpdates, func(n int) time.Duration { return notifyFanout2(n, 1024) }},
		workload{"store_latest_1000", scaleUpdates, storeLatest1000},
	)
}

// The seed's data store: data under a mutex, requests answered by the owner goroutine.
type setResult[T any] struct {
	ok    bool
	value T
	err   error
}

type setRequest[T any] struct {
	value T
	reply chan setResult[T]
}

type dataStore[T any] struct {
	mu       sync.Mutex
	data     T
	requests chan setRequest[T]
}

// newDataStore makes a store whose request channel holds requestCapacity requests (0 in the
// seed: every Set waits until the owner takes its request).
func newDataStore[T any](initial T, requestCapacity int) *dataStore[T] {
	return &dataStore[T]{data: initial, requests: make(chan setRequest[T], requestCapacity)}
}

func (s *dataStore[T]) GetData() T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

func (s *dataStore[T]) setData(v T) {
	s.mu.Lock()
	s.data = v
	s.mu.Unlock()
}

func (s *dataStore[T]) Set(v T) setResult[T] {
	reply := make(chan setResult[T], 1)
	s.requests <- setRequest[T]{value: v, reply: reply}
	return <-reply
}

// storeSetRoundtrip: one client sets 0..n-1; the owner goroutine selects on requests and done
// and accepts each. One op = one answered set.
func storeSetRoundtrip(n, requestCapacity int) time.Duration {
	s := newDataStore[int64](-1, requestCapacity)
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		for {
			select {
			case r := <-s.requests:
				s.setData(r.value)
				r.reply <- setResult[int64]{ok: true, value: r.value}
			case <-done:
				return
			}
		}
	}()
	var sum int64
	for i := 0; i < n; i++ {
		r := s.Set(int64(i))
		if !r.ok || r.value != int64(i) {
			panic("store_set_roundtrip: set was not accepted with its own value")
		}
		sum += r.value
	}
	close(done)
	<-finished
	elapsed := time.Since(start)
	expectSum("store_set_roundtrip", sum, n)
	return elapsed
}

type pair struct{ a, b float64 }

type named struct {
	name string
	n    int64
}

var names = func() [64]string {
	var t [64]string
	for i := range t {
		t[i] = "sensor/front-left/" + strconv.Itoa(i*7919)
	}
	return t
}()

// get2Readers: two readers call GetData n/2 times each while the owner sets continuously; check
// is given each snapshot and returns whether it was consistent.
func get2Readers[T any](n int, name string, mk func(int64) T, check func(T) bool) time.Duration {
	s := newDataStore(mk(0), 0)
	var stop atomic.Bool
	ownerDone := make(chan struct{})
	go func() {
		for i := int64(1); !stop.Load(); i++ {
			s.setData(mk(i))
		}
		close(ownerDone)
	}()
	var bad atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var wrong int64
			for i := 0; i < n/2; i++ {
				if !check(s.GetData()) {
					wrong++
				}
			}
			bad.Add(wrong)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop.Store(true)
	<-ownerDone
	if bad.Load() != 0 {
		panic(name + ": inconsistent snapshot")
	}
	return elapsed
}

func storeGet2ReadersPod(n int) time.Duration {
	return get2Readers(n, "store_get_2readers_pod",
		func(i int64) pair { return pair{float64(i), -float64(i)} },
		func(p pair) bool { return p.a == -p.b })
}

func makeNamed(i int64) named { return named{names[i%64], i} }

// storeGet2ReadersString compares the string GetData returned (a copy of its header only).
func storeGet2ReadersString(n int) time.Duration {
	return get2Readers(n, "store_get_2readers_string", makeNamed,
		func(v named) bool { return v.name == names[v.n%64] })
}

// storeGet2ReadersStringCopy clones the string first: its characters go to a new allocation,
// as custody's get() copies a std::string.
func storeGet2ReadersStringCopy(n int) time.Duration {
	return get2Readers(n, "store_get_2readers_string_copy", makeNamed,
		func(v named) bool { return strings.Clone(v.name) == names[v.n%64] })
}

// notifyFanout2: the owner sets 0..n-1 and sends each to two outputs of the given capacity in
// turn, each read by its own goroutine, then closes them. One op = one publish (delivered
// twice).
func notifyFanout2(n, capacity int) time.Duration {
	s := newDataStore[int64](-1, 0)
	outs := []chan int64{make(chan int64, capacity), make(chan int64, capacity)}
	sums := make([]int64, len(outs))
	var wg sync.WaitGroup
	start := time.Now()
	for k := range outs {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			var sum int64
			for v := range outs[k] {
				sum += v
			}
			sums[k] = sum
		}(k)
	}
	for i := 0; i < n; i++ {
		s.setData(int64(i))
		for _, o := range outs {
			o <- int64(i)
		}
	}
	for _, o := range outs {
		close(o)
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, sum := range sums {
		expectSum(fmt.Sprintf("notify_fanout2 (capacity %d)", capacity), sum, n)
	}
	return elapsed
}

// storeLatest1000: the owner publishes 1..n to 1,000 conflating subscribers (channels of
// capacity 1: a full one is emptied and refilled, so it always holds the newest value); two
// goroutines sweep 500 each without blocking until every channel is closed. One op = one
// publish (1,000 deliveries).
func storeLatest1000(n int) time.Duration {
	subs := make([]chan int64, scaleSubscribers)
	for i := range subs {
		subs[i] = make(chan int64, 1)
	}
	var wrong atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			last := make([]int64, hi-lo)
			closed := make([]bool, hi-lo)
			open := hi - lo
			for open > 0 {
				for i := lo; i < hi; i++ {
					if closed[i-lo] {
						continue
					}
					select {
					case v, ok := <-subs[i]:
						if !ok {
							closed[i-lo] = true
							open--
							if last[i-lo] != int64(n) {
								wrong.Add(1)
							}
						} else {
							if v <= last[i-lo] {
								wrong.Add(1)
							}
							last[i-lo] = v
						}
					default:
					}
				}
				runtime.Gosched()
			}
		}(r*scaleSubscribers/2, (r+1)*scaleSubscribers/2)
	}
	for i := 1; i <= n; i++ {
		v := int64(i)
		for _, ch := range subs {
			select {
			case ch <- v:
			default:
				select { // full: drop the unread value, keep the newest
				case <-ch:
				default:
				}
				ch <- v
			}
		}
	}
	for _, ch := range subs {
		close(ch)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if wrong.Load() != 0 {
		panic("store_latest_1000: a subscriber missed the last update")
	}
	return elapsed
}
