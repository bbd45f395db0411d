//! The simulator against servers on 127.0.0.1: retries, fresh ids, timestamps
//! and signatures, identical bodies, failures reported rather than panicked.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use boxhook_core::{BodyForm, FixedClock, SystemClock, Verifier};
use boxhook_testkit::{
    fixtures, sample_keys, AttemptErrorKind, CompressedSleep, Delivery, DeliveryIds,
    DeliveryOutcome, Expected, RetrySchedule, ScriptedServer, Simulator,
};
use http::StatusCode;

const BODY: &str = r#"{"type":"webhook_event","id":"e-1","trigger":"FILE.UPLOADED","source":{"id":"1","type":"file","name":"a\/b \u00e9.txt"}}"#;

/// Every test is bounded in time, whatever goes wrong.
async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test took over 60 s")
}

fn start_clock() -> FixedClock {
    FixedClock::at("2024-05-01T12:00:00Z".parse().expect("time"))
}

#[tokio::test]
async fn retries_until_the_first_2xx_with_fresh_ids_timestamps_and_signatures() {
    bounded(async {
        let clock = start_clock();
        // The fourth answer would be a 500: the simulator must not get there.
        let server = ScriptedServer::builder()
            .script([500, 503, 200, 500])
            .verify_with(Verifier::new(sample_keys()), clock.clone())
            .start()
            .await
            .expect("server");
        let simulator = Simulator::builder(server.uri(), sample_keys())
            .virtual_time(clock.clone())
            .ids(DeliveryIds::seeded(3))
            .build();
        assert_eq!(simulator.schedule(), &RetrySchedule::box_like());

        let report = simulator.send(Delivery::new(BODY)).await;

        assert_eq!(
            report.outcome(),
            DeliveryOutcome::Delivered {
                status: StatusCode::OK
            }
        );
        let statuses: Vec<_> = report
            .attempts()
            .iter()
            .map(boxhook_testkit::Attempt::status)
            .collect();
        assert_eq!(
            statuses,
            [
                Some(StatusCode::INTERNAL_SERVER_ERROR),
                Some(StatusCode::SERVICE_UNAVAILABLE),
                Some(StatusCode::OK)
            ]
        );
        let received = server.received();
        assert_eq!(received.len(), 3, "stops at the first 2xx");

        let ids: HashSet<_> = received.iter().map(|r| r.delivery_id()).collect();
        assert_eq!(ids.len(), 3, "a new delivery id on every attempt");
        for (attempt, request) in report.attempts().iter().zip(&received) {
            assert_eq!(Some(attempt.delivery_id()), request.delivery_id());
            assert_eq!(&request.body()[..], BODY.as_bytes(), "body byte-identical");
            assert_eq!(request.method(), http::Method::POST);
            assert_eq!(request.headers()["user-agent"], "Box-WH-Client/0.1");
            let verified = request
                .verification()
                .expect("server verifies")
                .as_ref()
                .expect("every attempt verifies on arrival");
            assert_eq!(verified.body_form(), BodyForm::Raw);
            assert_eq!(verified.delivery_id(), request.delivery_id());
            assert_eq!(attempt.expected(), Expected::Accepted(BodyForm::Raw));
        }
        let waits: Vec<_> = report
            .attempts()
            .iter()
            .map(boxhook_testkit::Attempt::waited)
            .collect();
        assert_eq!(waits, [0, 300, 600].map(Duration::from_secs));
        let stamps: Vec<_> = report
            .attempts()
            .iter()
            .map(|a| a.timestamp().as_str().to_owned())
            .collect();
        assert_eq!(
            stamps,
            [
                "2024-05-01T12:00:00+00:00",
                "2024-05-01T12:05:00+00:00",
                "2024-05-01T12:15:00+00:00"
            ]
        );
        let signatures: HashSet<_> = received
            .iter()
            .map(|r| r.headers()["box-signature-primary"].clone())
            .collect();
        assert_eq!(signatures.len(), 3, "fresh signatures");
    })
    .await;
}

#[tokio::test]
async fn anything_but_2xx_is_retried_until_the_schedule_ends() {
    bounded(async {
        let server = ScriptedServer::builder()
            .script([301, 400, 404, 429])
            .then(500)
            .start()
            .await
            .expect("server");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&lines);
        let simulator = Simulator::builder(server.uri(), sample_keys())
            .schedule(RetrySchedule::immediate(6))
            .on_attempt(move |attempt| log.lock().expect("lock").push(attempt.to_string()))
            .build();
        let report = simulator.send_body(BODY).await;
        assert_eq!(report.outcome(), DeliveryOutcome::GaveUp);
        assert!(!report.delivered());
        assert_eq!(report.attempts().len(), 7);
        assert_eq!(server.received_count(), 7);
        let codes: Vec<_> = report
            .attempts()
            .iter()
            .map(|a| a.status().map(|s| s.as_u16()))
            .collect();
        assert_eq!(
            codes,
            [301, 400, 404, 429, 500, 500, 500].map(Some).to_vec()
        );
        assert!(report.to_string().ends_with("gave up after 7 attempt(s)"));
        let lines = lines.lock().expect("lock").clone();
        assert_eq!(lines.len(), 7, "one observer call per attempt");
        assert!(lines[0].starts_with("attempt 1: 301 Moved Permanently (delivery id "));
        assert!(lines[6].starts_with("attempt 7: 500 Internal Server Error"));

        // Any 2xx ends it, not only 200.
        let server = ScriptedServer::start([202]).await.expect("server");
        let simulator = Simulator::builder(server.uri(), sample_keys())
            .schedule(RetrySchedule::immediate(3))
            .build();
        let report = simulator.send_body(BODY).await;
        assert_eq!(
            report.outcome(),
            DeliveryOutcome::Delivered {
                status: StatusCode::ACCEPTED
            }
        );
        assert_eq!(report.attempts().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn connection_refused_is_reported_and_retried() {
    bounded(async {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let target = format!("http://127.0.0.1:{port}/hook")
            .parse()
            .expect("uri");
        let simulator = Simulator::builder(target, sample_keys())
            .schedule(RetrySchedule::immediate(2))
            .timeout(Duration::from_secs(5))
            .build();
        let report = simulator.send_body(BODY).await;
        assert_eq!(report.outcome(), DeliveryOutcome::GaveUp);
        assert_eq!(report.attempts().len(), 3);
        for attempt in report.attempts() {
            let err = attempt.result().expect_err("nothing listens");
            assert_eq!(err.kind(), AttemptErrorKind::Connect, "{err}");
            assert!(attempt.to_string().contains("could not connect"));
        }
        let ids: HashSet<_> = report
            .attempts()
            .iter()
            .map(boxhook_testkit::Attempt::delivery_id)
            .collect();
        assert_eq!(ids.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_silent_server_times_out() {
    bounded(async {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let simulator = Simulator::builder(
            format!("http://{addr}/").parse().expect("uri"),
            sample_keys(),
        )
        .schedule(RetrySchedule::immediate(1))
        .timeout(Duration::from_millis(200))
        .build();
        let started = Instant::now();
        let report = simulator.send_body(BODY).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(report.attempts().len(), 2);
        for attempt in report.attempts() {
            let err = attempt.result().expect_err("no answer");
            assert!(err.is_timeout(), "{err}");
            assert!(attempt.elapsed() >= Duration::from_millis(200));
        }
        silent.abort();
    })
    .await;
}

#[tokio::test]
async fn negative_variants_reach_the_server_as_built() {
    bounded(async {
        let clock = start_clock();
        let server = ScriptedServer::builder()
            .verify_with(Verifier::new(sample_keys()), clock.clone())
            .start()
            .await
            .expect("server");
        let simulator = Simulator::builder(server.uri(), sample_keys())
            .schedule(RetrySchedule::none())
            .virtual_time(clock.clone())
            .build();
        let template = Delivery::new(BODY);
        let variants = vec![
            template.clone(),
            template.clone().tampered(),
            template.clone().stale(),
            template.clone().future(),
            template.clone().wrong_key(),
            template
                .clone()
                .without_header(boxhook_testkit::BoxHeader::SignatureVersion),
            template
                .clone()
                .duplicate_header(boxhook_testkit::BoxHeader::DeliveryTimestamp, "x"),
            template.clone().reserialized(),
        ];
        let reports = simulator.send_many(variants, 1).await;
        let received = server.received();
        assert_eq!(received.len(), reports.len());
        let answers: Vec<String> = reports
            .iter()
            .zip(&received)
            .map(|(report, request)| {
                let attempt = &report.attempts()[0];
                let actual = Expected::from(request.verification().expect("verified"));
                assert_eq!(attempt.expected(), actual, "{attempt}");
                actual.to_string()
            })
            .collect();
        assert_eq!(
            answers,
            [
                "accepted (raw body)",
                "rejected: mismatch",
                "rejected: expired",
                "rejected: future",
                "rejected: mismatch",
                "rejected: missing_header",
                "rejected: invalid_header",
                "accepted (escaped body)",
            ]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_deliveries_with_failures_all_arrive() {
    bounded(async {
        const N: usize = 600;
        const FAILURES: usize = 150;
        let server = ScriptedServer::builder()
            .script(std::iter::repeat_n(503, FAILURES))
            .verify_with(Verifier::new(sample_keys()), SystemClock)
            .start()
            .await
            .expect("server");
        let simulator = Simulator::builder(server.uri(), sample_keys())
            .schedule(RetrySchedule::immediate(10))
            .build();
        let corpus = fixtures::all();
        let deliveries = (0..N).map(|i| {
            if corpus.is_empty() {
                Delivery::new(format!(r#"{{"type":"webhook_event","id":"{i}"}}"#))
            } else {
                corpus[i % corpus.len()].delivery()
            }
        });
        let reports = simulator.send_many(deliveries, 32).await;
        assert_eq!(reports.len(), N);
        assert!(reports
            .iter()
            .all(boxhook_testkit::DeliveryReport::delivered));
        let attempts: usize = reports.iter().map(|r| r.attempts().len()).sum();
        assert_eq!(attempts, N + FAILURES);
        let received = server.received();
        assert_eq!(received.len(), N + FAILURES);
        let ids: HashSet<_> = received.iter().map(|r| r.delivery_id()).collect();
        assert_eq!(ids.len(), received.len(), "delivery ids are unique");
        assert!(received
            .iter()
            .all(|r| r.verification().is_some_and(Result::is_ok)));
        // Reports come back in input order.
        if !corpus.is_empty() {
            for (i, report) in reports.iter().enumerate() {
                let id = report.last().expect("attempted").delivery_id();
                let request = received
                    .iter()
                    .find(|r| r.delivery_id() == Some(id))
                    .expect("arrived");
                assert_eq!(&request.body()[..], corpus[i % corpus.len()].body());
            }
        }
    })
    .await;
}

#[tokio::test]
async fn compressed_real_time_waits_a_fraction_of_the_schedule() {
    bounded(async {
        let server = ScriptedServer::builder()
            .script([500, 500])
            .verify_with(Verifier::new(sample_keys()), SystemClock)
            .start()
            .await
            .expect("server");
        let simulator = Simulator::builder(server.uri(), sample_keys())
            .schedule(RetrySchedule::fixed(2, Duration::from_secs(20)))
            .sleeper(CompressedSleep::new(1000))
            .build();
        let started = Instant::now();
        let report = simulator.send_body(BODY).await;
        let elapsed = started.elapsed();
        assert!(report.delivered());
        assert_eq!(report.attempts().len(), 3);
        assert!(elapsed >= Duration::from_millis(40), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        assert!(server
            .received()
            .iter()
            .all(|r| r.verification().is_some_and(Result::is_ok)));
    })
    .await;
}

/// A destination on 127.0.0.1 that answers every request `200` at once,
/// then sends its body `chunk` bytes every `every`: `bytes` in all, or
/// without end when `None`. Plain threads and std sockets, so it needs nothing of
/// the runtime under test.
struct Drip {
    addr: std::net::SocketAddr,
    /// Requests answered so far.
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Connections the client closed while the body was still dripping.
    closed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Drip {
    fn start(bytes: Option<usize>, chunk: usize, every: Duration) -> Self {
        use std::io::{Read as _, Write as _};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (count, gone) = (Arc::clone(&requests), Arc::clone(&closed));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (count, gone) = (Arc::clone(&count), Arc::clone(&gone));
                std::thread::spawn(move || {
                    // The request head, then its Content-Length of body.
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    let head_end = loop {
                        if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while seen.len() < head_end + length {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let declared = bytes.unwrap_or(1 << 30);
                    let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {declared}\r\n\r\n");
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                    let piece = vec![b'x'; chunk];
                    for _ in 0..declared / chunk {
                        std::thread::sleep(every);
                        if stream
                            .write_all(&piece)
                            .and_then(|()| stream.flush())
                            .is_err()
                        {
                            gone.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            requests,
            closed,
        }
    }

    fn uri(&self) -> http::Uri {
        format!("http://{}/", self.addr).parse().expect("uri")
    }

    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn closed(&self) -> usize {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The status line decides: a `200` whose body drips slower than the
/// attempt's timeout (or never ends) is delivered at the first attempt; the
/// body is read for at most `RESPONSE_BODY_TIMEOUT`, then dropped with its
/// connection.
#[tokio::test]
async fn a_2xx_with_a_slow_or_endless_body_is_delivered_at_once() {
    bounded(async {
        for (name, bytes) in [("slow", Some(40)), ("endless", None)] {
            let drip = Drip::start(bytes, 1, Duration::from_millis(100));
            let simulator = Simulator::builder(drip.uri(), sample_keys())
                .schedule(RetrySchedule::immediate(2))
                .timeout(Duration::from_millis(500))
                .build();
            let started = Instant::now();
            let report = simulator.send_body(BODY).await;
            let took = started.elapsed();
            assert_eq!(
                report.outcome(),
                DeliveryOutcome::Delivered {
                    status: StatusCode::OK
                },
                "{name}: {report:?}"
            );
            assert_eq!(report.attempts().len(), 1, "{name}");
            assert_eq!(drip.requests(), 1, "{name}: one request, no retry");
            assert!(
                took >= boxhook_testkit::RESPONSE_BODY_TIMEOUT
                    && took < boxhook_testkit::RESPONSE_BODY_TIMEOUT + Duration::from_secs(3),
                "{name}: {took:?}"
            );
            // The connection was given up, not kept reading the body.
            let deadline = Instant::now() + Duration::from_secs(5);
            while drip.closed() == 0 {
                assert!(Instant::now() < deadline, "{name}: connection still open");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
    .await;
}

/// A body over the simulator's 1 MiB read limit does not fail a 2xx either;
/// it is cut there, with its connection.
#[tokio::test]
async fn a_2xx_with_a_huge_body_is_delivered_and_cut() {
    bounded(async {
        let drip = Drip::start(Some(64 << 20), 64 << 10, Duration::ZERO);
        let simulator = Simulator::builder(drip.uri(), sample_keys())
            .schedule(RetrySchedule::immediate(2))
            .build();
        let report = simulator.send_body(BODY).await;
        assert!(report.delivered(), "{report:?}");
        assert_eq!(report.attempts().len(), 1);
        assert_eq!(drip.requests(), 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while drip.closed() == 0 {
            assert!(Instant::now() < deadline, "connection still open");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
