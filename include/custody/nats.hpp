#pragma once
// custody over NATS JetStream: stores owned in one process and used from others. Needs the
// custody::nats target (the NATS C client and nlohmann::json); the rest of custody does not.
//
//   Owner side:     custody::nats::Exporter<Car> out(conn, owner.store(), {{"car"}, "data"});
//   Consumer side:  custody::nats::RemoteStore<Car> car(conn, {{"car"}, "data"});
//                   custody::Getter<Car> g = car;   // same views as a local store

#include "nats/codec.hpp"
#include "nats/connection.hpp"
#include "nats/connection_options.hpp"
#include "nats/error.hpp"
#include "nats/exporter.hpp"
#include "nats/handles.hpp"
#include "nats/key_value.hpp"
#include "nats/key_watch.hpp"
#include "nats/lease.hpp"
#include "nats/remote_store.hpp"
#include "nats/wire.hpp"
