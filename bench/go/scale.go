// Scale workloads: many tasks waiting at once. The Go twins of custody's coroutine scale rows
// (the same names on the C++ side): 100,000 goroutines blocked at once, each receiving on its
// own channel, and one owner publishing to 100,000 `latest` subscribers. They report memory per
// task as well as time, so they run apart from the ns/op table:
//
//	cd bench/go && go run . -scale
//
// Each prints "<workload> <ns> ns/op" (the line bench/compare reads) followed by its other
// figures, one "<workload> <value> <unit>" line each.

package main

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	scaleTasks     = 100_000 // goroutines blocked at once
	scalePublishes = 20      // timed publishes, scale_100k_latest_publish
)

// A scale workload performs one run and returns its figures: ns/op first, then named extras.
type scaleWorkload struct {
	name string
	run  func() scaleFigures
}

type scaleFigure struct {
	value float64
	unit  string
}

type scaleFigures struct {
	nsPerOp float64
	extra   []scaleFigure
}

var scaleWorkloads = []scaleWorkload{
	{"scale_100k_blocked_recv", func() scaleFigures { return scaleBlockedRecv(scaleTasks) }},
	{"scale_100k_latest_publish", func() scaleFigures { return scaleLatestPublish(scaleTasks, scalePublishes) }},
}

// inUse is the memory the Go runtime holds for goroutine stacks and heap objects, after a
// collection so that garbage does not count.
func inUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse + m.HeapInuse
}

// scaleBlockedRecv: n goroutines, each blocked receiving on its own unbuffered channel; then
// one send to each wakes them all. One op = waking one goroutine (its send and its receive).
// Memory per task = (stacks + heap in use with all n blocked − before) / n: the goroutine, its
// channel and its slot in the slice holding the channels.
func scaleBlockedRecv(n int) scaleFigures {
	before := inUse()
	chans := make([]chan int64, n)
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	var sum atomic.Int64
	spawnStart := time.Now()
	for i := range chans {
		ch := make(chan int64)
		chans[i] = ch
		go func() {
			started.Done()
			sum.Add(<-ch)
			done.Done()
		}()
	}
	started.Wait()
	spawn := time.Since(spawnStart)
	blocked := waitUntilBlocked(n)
	perTask := float64(inUse()-before) / float64(n)
	wakeStart := time.Now()
	for i, ch := range chans {
		ch <- int64(i)
	}
	done.Wait()
	wake := time.Since(wakeStart)
	expectSum("scale_100k_blocked_recv", sum.Load(), n)
	return scaleFigures{
		nsPerOp: float64(wake.Nanoseconds()) / float64(n),
		extra: []scaleFigure{
			{float64(n), "goroutines"},
			{float64(blocked), "blocked_at_once"},
			{perTask, "bytes/task"},
			{ms(spawn), "ms_to_spawn_all"},
			{ms(wake), "ms_to_wake_all"},
		},
	}
}

// scaleLatestPublish: n subscriber goroutines, each on a channel of capacity 1 filled with
// replace-when-full (a full channel is emptied and refilled, so it holds only the newest value:
// custody's policy::latest()). The owner publishes `publishes` values; each publish is timed
// from its first send until every subscriber has received it, the next starting after that.
// One op = one publish reaching all n subscribers (the median publish is reported).
func scaleLatestPublish(n, publishes int) scaleFigures {
	before := inUse()
	subs := make([]chan int64, n)
	var current, remaining atomic.Int64
	allHave := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(n)
	finished.Add(n)
	for i := range subs {
		ch := make(chan int64, 1)
		subs[i] = ch
		go func() {
			defer finished.Done()
			started.Done()
			for v := range ch {
				if v == current.Load() && remaining.Add(-1) == 0 {
					allHave <- struct{}{}
				}
			}
		}()
	}
	started.Wait()
	blocked := waitUntilBlocked(n)
	perSubscriber := float64(inUse()-before) / float64(n)
	times := make([]float64, 0, publishes)
	for k := 1; k <= publishes; k++ {
		v := int64(k)
		current.Store(v)
		remaining.Store(int64(n))
		start := time.Now()
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
		<-allHave
		times = append(times, float64(time.Since(start).Nanoseconds()))
	}
	for _, ch := range subs {
		close(ch)
	}
	finished.Wait()
	sort.Float64s(times)
	med := median(times)
	return scaleFigures{
		nsPerOp: med,
		extra: []scaleFigure{
			{float64(n), "subscribers"},
			{float64(blocked), "blocked_at_once"},
			{perSubscriber, "bytes/subscriber"},
			{med / 1e6, "ms_publish_to_all_median"},
			{times[len(times)-1] / 1e6, "ms_publish_to_all_max"},
		},
	}
}

// waitUntilBlocked returns once at least n goroutines are blocked in a channel operation (they
// have been started but may not have reached their receive yet), and how many are. It reads
// the goroutine table from runtime.Stack: the only public view of what goroutines wait on.
func waitUntilBlocked(n int) int {
	buf := make([]byte, 64<<20)
	for {
		count := blockedOnChannels(buf)
		if count >= n {
			return count
		}
		runtime.Gosched()
	}
}

// blockedOnChannels counts goroutines whose header says "[chan receive]" (or "chan send").
func blockedOnChannels(buf []byte) int {
	for {
		k := runtime.Stack(buf, true)
		if k < len(buf) {
			return countBlocked(buf[:k])
		}
		buf = make([]byte, 2*len(buf))
	}
}

func countBlocked(dump []byte) int {
	count := 0
	for i := 0; i+1 < len(dump); i++ {
		if dump[i] != '[' {
			continue
		}
		rest := dump[i+1:]
		if hasPrefix(rest, "chan receive") || hasPrefix(rest, "chan send") {
			count++
		}
	}
	return count
}

func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// runScale runs the scale workloads whose names match `selected` and prints their figures.
func runScale(selected func(string) bool) {
	for _, w := range scaleWorkloads {
		if !selected(w.name) {
			continue
		}
		f := w.run()
		fmt.Printf("%s %.1f ns/op\n", w.name, f.nsPerOp)
		for _, e := range f.extra {
			fmt.Printf("%s %.1f %s\n", w.name, e.value, e.unit)
		}
	}
}
