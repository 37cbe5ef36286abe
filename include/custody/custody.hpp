#pragma once
// Everything custody offers, in one include.

#include "channel.hpp"         // Channel, Sender, Receiver, received
#include "dump_on_signal.hpp"  // DumpOnSignal: a signal writes inspect()'s text
#include "inspect.hpp"         // inspect(): what every named object is doing
#include "select.hpp"          // select and its cases
#include "signals.hpp"         // SignalStop: SIGINT/SIGTERM to a stop request
#include "status.hpp"          // status
#include "store.hpp"           // make_store, Owner, Getter/Setter/Subscriber views, fanout
#include "task_group.hpp"      // TaskGroup
#include "timer.hpp"           // after, at, Ticker, Timer
#include "wait_for.hpp"        // wait_for_graph: who waits for whom; likely deadlocks
#include "watchdog.hpp"        // Watchdog: reports a stalled task group
