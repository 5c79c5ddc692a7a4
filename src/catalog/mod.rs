//! What the server's catalog says, read without changing anything: the managed
//! indexes' state by definition (indexes) and the sessions, transactions and
//! locks that matter to index work (activity), and index definitions
//! compared without writing (shapes).

pub mod activity;
pub mod indexes;
pub mod partitions;
pub mod shapes;
