//! Everything that talks to the server: the pool (pool), single connections
//! with TLS and the connect-timeout bound (connect), errors said the server's
//! way (error), the scoped sessions services use (session), READ ONLY
//! execution of suite queries (read_only), the library's pool status
//! (status) and whether a pooler shares server connections per transaction
//! (pooling).

pub mod connect;
pub mod error;
pub mod pgbouncer;
pub mod pool;
pub mod pooling;
pub mod read_only;
pub mod session;
pub mod status;

pub use connect::{connect, connect_reaching, tls_connector, NoHost, Reached};
pub use error::{describe_pg_error, PgContext};
pub use pool::{CheckoutStats, Manager, Pool, PoolCounters, PooledConnection, Warm};
pub use pooling::Pooling;
pub use session::{with_readonly_session, with_session};
pub use status::{pool_status, pool_status_with, PoolStatus};
