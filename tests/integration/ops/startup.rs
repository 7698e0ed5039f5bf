//! A run started while the gateway is down waits for it (within `reconnect-for`).

use super::*;
use opt_backfill::sim::{start, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_before_the_gateway_completes_once_it_is_up() {
    // A free port: bind it, note it, close it; the simulator takes it 5 s after the run starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut sc = Scenario::preset("fast").unwrap();
    sc.today = sim_today();
    // The market (and so the caches) does not depend on the server: build them from a
    // simulator on another port first.
    let Fixture {
        sim: probe,
        ws,
        plan,
        contracts: n,
        ..
    } = small_run(1, 6).gateway_port(port).build().await;
    drop(probe);
    let child = Command::new(env!("CARGO_BIN_EXE_opt-backfill"))
        .args(["execute", &plan.display().to_string()])
        .current_dir(&ws.root)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let sim = start(sc, &format!("127.0.0.1:{port}")).await.unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("retrying for up to"),
        "said so on the terminal: {err}"
    );
    assert!(sim.counters().connections >= 1);
    let done = latest(&ws.summaries())
        .values()
        .filter(|r| matches!(r.status.as_str(), "OK" | "EMPTY"))
        .count();
    assert_eq!(done, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_client_id_exits_3_at_once() {
    let Fixture { sim, ws, plan, .. } = small_run(1, 2).build().await;
    // Hold client id 7 (the plan's) on an ibapi connection.
    let _holder = ibapi::Client::connect(&sim.addr().to_string(), 7)
        .await
        .unwrap();
    let before = sim.counters().connections;
    let out = run_env_async(
        args(&[
            "execute",
            &plan.display().to_string(),
            "--reconnect-for",
            "1h",
        ]),
        ws.root.clone(),
        vec![],
    )
    .await;
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(opt_backfill::exit::GATEWAY),
        "{err}"
    );
    assert!(err.contains("already in use"), "{err}");
    // One attempt, not an hour of them: the refusal cannot change.
    assert_eq!(sim.counters().connections - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_old_gateway_exits_3_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A gateway that answers the handshake with server version 178 (text protocol only), the
    // way an IB Gateway older than 10.40 does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut prefix = [0u8; 4];
            let mut len = [0u8; 4];
            if sock.read_exact(&mut prefix).await.is_err()
                || sock.read_exact(&mut len).await.is_err()
            {
                continue;
            }
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            let _ = sock.read_exact(&mut body).await;
            let ack = b"178\x0020261127 10:00:00 America/New_York\x00";
            let mut frame = (ack.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(ack);
            let _ = sock.write_all(&frame).await;
            held.push(sock);
        }
    });
    let Fixture {
        sim: probe,
        ws,
        plan,
        ..
    } = small_run(1, 2).gateway_port(port).build().await;
    drop(probe);
    let out = run_env_async(
        args(&[
            "execute",
            &plan.display().to_string(),
            "--reconnect-for",
            "1h",
        ]),
        ws.root.clone(),
        vec![],
    )
    .await;
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(opt_backfill::exit::GATEWAY),
        "{err}"
    );
    assert!(err.contains("server version"), "{err}");
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no retry against a gateway that cannot change its version"
    );
}
