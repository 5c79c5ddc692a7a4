// The one integration-test binary: every area is a module, all share one
// throwaway PostgreSQL (tests/support) and each test gets its own database.

mod support;

mod benchmark;
mod config;
mod conninfo;
mod create_indexes;
mod demo;
mod examples;
mod faults;
mod fleet;
mod fuzz;
mod index_state;
mod monitoring;
mod params;
mod partitioned;
mod pgbouncer;
mod pool;
mod pool_status;
mod readme;
mod replication;
mod safety;
mod secrets;
mod seed;
mod seed_partitioned;
mod shell;
mod targets;
mod tls;
mod verify;
