//! A tunnel moves both directions independently: while one side cannot
//! take what the other sends, bytes still flow the other way. Here the
//! client sends far more than the backend reads for now, and meanwhile
//! the backend sends the client a message: it must arrive while the
//! client's bytes wait. A relay that stops reading one direction while it
//! waits to write the other would hold the backend's message until the
//! backend read, or until a send timeout closed the tunnel.

use std::time::Duration;

use rginx_proxy::timed::TimedWrites;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connected pair of sockets.
async fn pair() -> (TcpStream, TcpStream) {
    rginx_testkit::net::tcp_pair().await.unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn one_direction_flows_while_the_other_waits() {
    let (client, client_side) = pair().await;
    let (upstream_side, mut backend) = pair().await;
    let send = Duration::from_secs(20);
    let relay = tokio::spawn(rginx_proxy::tunnel::relay(
        TimedWrites::new(client_side, send),
        TimedWrites::new(upstream_side, send),
        Duration::from_secs(60),
    ));
    let (mut client_read, mut client_write) = client.into_split();
    // far more than the sockets' buffers hold: the up direction stalls
    let size = 16 * 1024 * 1024;
    let up: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let expected_up = up.clone();
    let writer = tokio::spawn(async move {
        client_write.write_all(&up).await.unwrap();
        client_write
    });
    // let the up direction fill every buffer on its way
    tokio::time::sleep(Duration::from_millis(300)).await;
    let message: Vec<u8> = (0..1024 * 1024).map(|i| (i % 241) as u8).collect();
    backend.write_all(&message).await.unwrap();
    let mut got = vec![0u8; message.len()];
    tokio::time::timeout(Duration::from_secs(5), client_read.read_exact(&mut got))
        .await
        .expect("the backend's message waited for the client's bytes")
        .unwrap();
    assert!(got == message, "the client got other bytes");
    // now the backend reads what waited, all of it and in order
    let mut at_backend = vec![0u8; size];
    backend.read_exact(&mut at_backend).await.unwrap();
    assert!(at_backend == expected_up, "the backend got other bytes");
    drop(writer.await.unwrap());
    drop(client_read);
    let moved = relay.await.unwrap();
    assert_eq!(moved.to_client, message.len() as u64);
    assert_eq!(moved.from_upstream, message.len() as u64);
    assert_eq!(moved.to_upstream, size as u64);
}
