//! The PostgreSQL helper starts a real cluster, accepts password logins, and stops it on drop.

use test_support::PgCluster;

#[test]
fn starts_serves_and_stops_on_drop() {
    let pg = PgCluster::start().expect("cluster starts");
    assert!(pg.is_running());
    assert_eq!(pg.psql("postgres", "SELECT 40 + 2").unwrap(), "42");
    let url = pg.create_role("app_user", "app-pw", "postgres").unwrap();
    assert!(url.contains(&format!("127.0.0.1:{}", pg.port())));
    assert_eq!(pg.psql("postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = 'app_user'").unwrap(), "f");
    let dir = pg.dir().to_path_buf();
    let port = pg.port();
    drop(pg);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "server still listening after drop");
    assert!(!dir.exists(), "cluster directory left behind");
}

#[test]
fn stops_even_when_the_test_panics() {
    let port = std::sync::Arc::new(std::sync::Mutex::new(0u16));
    let p = port.clone();
    let result = std::panic::catch_unwind(move || {
        let pg = PgCluster::start().expect("cluster starts");
        *p.lock().unwrap() = pg.port();
        panic!("test failure while the cluster runs");
    });
    assert!(result.is_err());
    let port = *port.lock().unwrap();
    assert_ne!(port, 0);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "server survived the panic");
}

#[test]
fn a_follower_streams_from_its_primary() {
    let pg = PgCluster::start().expect("cluster starts");
    pg.psql("postgres", "CREATE TABLE before_copy (id int)").unwrap();
    let follower = pg.start_follower().expect("follower starts");
    assert_eq!(follower.psql("postgres", "SELECT pg_is_in_recovery()").unwrap(), "t");
    assert_eq!(pg.psql("postgres", "SELECT pg_is_in_recovery()").unwrap(), "f", "the primary is back");
    pg.psql("postgres", "CREATE TABLE after_copy (id int); INSERT INTO after_copy VALUES (7)").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while follower.psql("postgres", "SELECT to_regclass('after_copy') IS NOT NULL").unwrap() != "t" {
        assert!(std::time::Instant::now() < deadline, "the follower never replayed the primary's change");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(follower.psql("postgres", "CREATE TABLE nope (id int)").is_err(), "a follower is read-only");
}
