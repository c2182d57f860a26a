//! Any bytes after a chunked request head, through hyper's HTTP/1 server
//! (the decoder rginx's request bodies go through) to a service that reads
//! the body whole, as rginx does with a chunked body before sending it
//! upstream.
#![no_main]

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;

const HEAD: &[u8] = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut input = HEAD.to_vec();
        input.extend_from_slice(data);
        let writer = async move {
            let _ = client.write_all(&input).await;
            let _ = client.shutdown().await;
            // keep the other end open until the server is done
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut client, &mut sink).await;
        };
        let service = service_fn(|req: Request<Incoming>| async move {
            let _ = req.into_body().collect().await;
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        });
        let serve = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server), service);
        let both = async { tokio::join!(writer, serve) };
        let _ = tokio::time::timeout(Duration::from_secs(1), both).await;
    });
});
