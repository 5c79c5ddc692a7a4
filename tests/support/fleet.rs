//! A primary and its streaming replica of the fleet tests' own (not the shared
//! sandbox): the two real nodes multi-host connection strings choose between.

use o2o_db::commands::seed::{self, SeedArgs};
use o2o_db::config::Config;
use o2o_db::pg_sandbox::Sandbox;
use std::sync::OnceLock;

/// The database the fleet's primary holds (seeded) and its replica replays.
pub const DB: &str = "o2o_fleet";

/// How long a test waits for one host before the next.
const CONNECT_TIMEOUT_S: u32 = 5;

pub struct Fleet {
    pub primary: Sandbox,
    /// A hot standby made with pg_basebackup -R after the seed.
    pub replica: Sandbox,
}

/// The fleet the tests share, started on first use: nothing here changes
/// either node (a test that stops a node starts a replica of its own).
pub fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        let primary = Sandbox::start().expect("start the fleet's primary");
        let mut config = Config::defaults();
        config.conn = primary.conn_info(DB);
        let args = SeedArgs {
            orders: 500,
            create_schema: true,
            ..SeedArgs::default()
        };
        seed::run(&config, &args).expect("seed the fleet's primary");
        let replica = primary.start_replica().expect("start the fleet's replica");
        Fleet { primary, replica }
    })
}

/// `postgres://postgres@127.0.0.1:P1,127.0.0.1:P2/o2o_fleet?target_session_attrs=ATTRS`.
pub fn url(ports: &[u16], attrs: &str) -> String {
    let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    format!(
        "postgres://postgres@{}/{DB}?target_session_attrs={attrs}&connect_timeout={CONNECT_TIMEOUT_S}",
        hosts.join(",")
    )
}

/// The same hosts as libpq's `host=a,b port=1,2 ...` string.
pub fn key_value(ports: &[u16], attrs: &str) -> String {
    let hosts = vec!["127.0.0.1"; ports.len()].join(",");
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    format!(
        "host={hosts} port={} user=postgres dbname={DB} target_session_attrs={attrs} connect_timeout={CONNECT_TIMEOUT_S}",
        ports.join(",")
    )
}

/// A loopback port nothing listens on: a node that is down.
pub fn dead_port() -> u16 {
    o2o_db::pg_sandbox::free_port().expect("a free port")
}

/// The port of the server a session landed on, and whether it is a standby.
pub fn landed(client: &mut postgres::Client) -> (u16, bool) {
    let row = client
        .query_one("SELECT inet_server_port(), pg_is_in_recovery()", &[])
        .expect("where the session is");
    let port: i32 = row.get(0);
    (u16::try_from(port).expect("a port"), row.get(1))
}

/// How many indexes `orders` has on the server a session is connected to.
pub fn orders_indexes(client: &mut postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'orders'",
            &[],
        )
        .expect("count indexes")
        .get(0)
}
