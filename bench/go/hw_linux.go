// The futex floor: two threads waking each other through the kernel, the twin of
// hw_futex_roundtrip in bench/channels_bench.cpp. Go offers no futex of its own, so both
// goroutines lock themselves to their threads and make the same system calls as the C++ side;
// the Go runtime adds only its bookkeeping around each call (entersyscall / exitsyscall).

package main

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	futexRoundTrips  = 20_000 // each one sleeps in the kernel twice
	futexWaitPrivate = 128    // FUTEX_WAIT | FUTEX_PRIVATE_FLAG
	futexWakePrivate = 129    // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
)

func init() {
	// Beside hw_cacheline_roundtrip, as on the C++ side.
	for i, w := range workloads {
		if w.name == "hw_cacheline_roundtrip" {
			futex := workload{"hw_futex_roundtrip", futexRoundTrips, futexRoundtrip}
			workloads = append(workloads[:i+1], append([]workload{futex}, workloads[i+1:]...)...)
			return
		}
	}
	panic("hw_cacheline_roundtrip not registered")
}

// futexWaitFor returns once word holds wanted, sleeping in the kernel (FUTEX_WAIT) without
// spinning until then.
func futexWaitFor(word *uint32, wanted uint32) {
	for seen := atomic.LoadUint32(word); seen != wanted; seen = atomic.LoadUint32(word) {
		syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(word)), futexWaitPrivate,
			uintptr(seen), 0, 0, 0)
	}
}

func futexWakeOne(word *uint32) {
	syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(word)), futexWakePrivate, 1, 0, 0, 0)
}

// futexRoundtrip: each hand-over stores the next count and makes a FUTEX_WAKE system call; the
// other side sleeps in FUTEX_WAIT. One op = one round trip.
func futexRoundtrip(n int) time.Duration {
	var word uint32
	rounds := uint32(n)
	done := make(chan struct{})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for i := uint32(0); i < rounds; i++ {
			futexWaitFor(&word, 2*i+1)
			atomic.StoreUint32(&word, 2*i+2)
			futexWakeOne(&word)
		}
		close(done)
	}()
	for i := uint32(0); i < rounds; i++ {
		atomic.StoreUint32(&word, 2*i+1)
		futexWakeOne(&word)
		futexWaitFor(&word, 2*i+2)
	}
	<-done
	elapsed := time.Since(start)
	if atomic.LoadUint32(&word) != 2*rounds {
		panic("hw_futex_roundtrip: wrong final count")
	}
	return elapsed
}
