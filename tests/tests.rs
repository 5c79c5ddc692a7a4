// The one integration-test binary: every area is a module, all share one
// throwaway PostgreSQL (tests/support) and each test gets its own database.

mod support;

mod config;
mod pool;
mod seed;
