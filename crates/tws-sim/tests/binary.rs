//! The `tws-sim` binary as a user runs it: started on a free loopback port, it prints the address
//! it bound and answers a TWS API handshake; a bad scenario path is bad input (exit 2).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the server when the test ends, passed or failed.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tws_sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tws-sim"))
}

#[test]
fn prints_its_address_and_answers_a_text_protocol_handshake() {
    let mut server = Server(
        tws_sim()
            .args([
                "--preset",
                "fast",
                "--listen",
                "127.0.0.1:0",
                "--clock",
                "close",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tws-sim"),
    );
    let mut first = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr: SocketAddr = first
        .trim()
        .parse()
        .expect("first stdout line is the address");
    assert_ne!(addr.port(), 0);

    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // `API\0`, then one length-prefixed frame with the client's version range (ib_insync's).
    let range = b"v157..176";
    let mut hello = b"API\0".to_vec();
    hello.extend_from_slice(&(range.len() as u32).to_be_bytes());
    hello.extend_from_slice(range);
    sock.write_all(&hello).unwrap();

    let mut len = [0u8; 4];
    sock.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    sock.read_exact(&mut body).unwrap();
    let text = String::from_utf8(body).unwrap();
    let fields: Vec<&str> = text.split('\0').collect();
    assert_eq!(
        fields[0], "176",
        "server version: the client's highest text version"
    );
    assert!(
        fields[1].ends_with(" America/New_York"),
        "connection time: {:?}",
        fields[1]
    );
}

#[test]
fn a_missing_scenario_file_is_bad_input() {
    let out = tws_sim()
        .args([
            "--scenario",
            "/nonexistent/scenario.toml",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/scenario.toml"), "stderr: {err}");
}
