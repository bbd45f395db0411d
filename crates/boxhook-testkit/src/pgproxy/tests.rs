//! The parser on byte streams cut every way, and the proxy's cut points,
//! stalls and random cuts against a scripted upstream.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]
#![allow(
    clippy::arithmetic_side_effects,
    reason = "tests: offsets in short, fixed byte strings"
)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Direction, Fault, Framer, PgProxy, Scope, Wire};

/// A startup message (protocol 3.0, `user=postgres`), untyped.
fn startup() -> Vec<u8> {
    let mut body = 196_608_u32.to_be_bytes().to_vec();
    body.extend_from_slice(b"user\0postgres\0\0");
    let mut message = u32::try_from(body.len() + 4)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    message.extend_from_slice(&body);
    message
}

/// A typed message with `body`.
fn typed(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut message = vec![kind];
    message.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    message.extend_from_slice(body);
    message
}

fn ssl_request() -> Vec<u8> {
    let mut message = 8_u32.to_be_bytes().to_vec();
    message.extend_from_slice(&80_877_103_u32.to_be_bytes());
    message
}

/// A client's opening and an extended-protocol store: startup, Bind (a
/// body of 300 bytes), Execute (empty name, no row limit), Sync.
fn client_stream() -> (Vec<u8>, Vec<usize>) {
    let (stream, ends) = client_stream_kinds();
    (stream, ends.into_iter().map(|(end, _)| end).collect())
}

/// [`client_stream`], with each message's type byte.
fn client_stream_kinds() -> (Vec<u8>, Vec<(usize, u8)>) {
    let messages = [
        startup(),
        typed(b'B', &[7; 300]),
        typed(b'E', &[0, 0, 0, 0, 0]),
        typed(b'S', &[]),
    ];
    let mut stream = Vec::new();
    let mut ends = Vec::new();
    for message in messages {
        stream.extend_from_slice(&message);
        let kind = if stream.len() == message.len() {
            0
        } else {
            message[0]
        };
        ends.push((stream.len(), kind));
    }
    (stream, ends)
}

/// Feeds `stream` to a fresh client-side framer in the reads `splits`
/// gives; returns every end, as offsets in the whole stream.
fn ends_in_reads(stream: &[u8], splits: &[usize]) -> Vec<usize> {
    let mut framer = Framer::new(true);
    let mut all = Vec::new();
    let mut at = 0;
    for &split in splits.iter().chain(std::iter::once(&stream.len())) {
        let (ends, _) = framer.feed(&stream[at..split]);
        all.extend(ends.into_iter().map(|(e, _)| e + at));
        at = split;
    }
    all
}

#[test]
fn messages_are_found_in_one_read_and_in_every_split_of_it() {
    let (stream, want) = client_stream();
    assert_eq!(ends_in_reads(&stream, &[]), want, "all in one read");
    for split in 1..stream.len() {
        assert_eq!(ends_in_reads(&stream, &[split]), want, "split at {split}");
    }
    // One byte per read: headers split everywhere.
    let every: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(ends_in_reads(&stream, &every), want, "byte by byte");
}

#[test]
fn server_messages_are_typed_from_the_first_byte() {
    let messages = [
        typed(b'R', &[0, 0, 0, 0]),
        typed(b'S', b"server_version\x0015\0"),
        typed(b'Z', b"I"),
    ];
    let stream: Vec<u8> = messages.concat();
    let mut framer = Framer::new(false);
    let (ends, special) = framer.feed(&stream);
    // 1 type byte, 4 length bytes, then 4, 18 and 1 body bytes.
    assert_eq!(ends, vec![(9, b'R'), (9 + 23, b'S'), (9 + 23 + 6, b'Z')]);
    assert_eq!(special, 0);
}

#[test]
fn an_ssl_request_answered_n_is_two_messages_and_the_startup_follows() {
    let mut wire = Wire::default();
    let request = ssl_request();
    assert_eq!(wire.feed(Direction::ToServer, &request), vec![(8, 0)]);
    assert_eq!(wire.to_client.bytes_expected, 1);
    // The server's `N`, then an authentication message in the same read.
    let mut answer = vec![b'N'];
    answer.extend_from_slice(&typed(b'R', &[0, 0, 0, 0]));
    assert_eq!(
        wire.feed(Direction::ToClient, &answer),
        vec![(1, b'N'), (10, b'R')]
    );
    let (stream, want) = client_stream_kinds();
    assert_eq!(wire.feed(Direction::ToServer, &stream), want);
}

#[test]
fn an_ssl_request_answered_s_stops_the_counting_both_ways() {
    let mut wire = Wire::default();
    assert_eq!(wire.feed(Direction::ToServer, &ssl_request()), vec![(8, 0)]);
    assert_eq!(
        wire.feed(Direction::ToClient, b"S\x16\x03\x01"),
        vec![(1, b'S')]
    );
    assert!(wire.to_server.opaque && wire.to_client.opaque);
    assert_eq!(
        wire.feed(Direction::ToServer, b"\x16\x03\x01\x02\x00"),
        Vec::<(usize, u8)>::new()
    );
}

#[test]
fn a_length_shorter_than_its_header_stops_the_counting_without_a_panic() {
    let cases: [(&[u8], bool); 4] = [
        (&[0, 0, 0, 3, 0, 0, 0, 0], true),
        (&[0, 0, 0, 0, 0, 3, 0, 0], true),
        (&[0, 0, 0, 7, 0, 3, 0, 0], true),
        (&[0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0], false),
    ];
    for (bytes, opaque) in cases {
        let mut framer = Framer::new(true);
        let (ends, _) = framer.feed(bytes);
        assert_eq!(
            (ends.is_empty(), framer.opaque),
            (true, opaque),
            "{bytes:?}"
        );
    }
    let mut typed_framer = Framer::new(false);
    let (ends, _) = typed_framer.feed(&[b'Z', 0, 0, 0, 2, b'I']);
    assert!(ends.is_empty() && typed_framer.opaque);
}

/// An upstream that accepts one connection, sends `reply` once it has
/// read `expect` bytes, and reports every byte it read until EOF.
fn upstream(expect: usize, reply: Vec<u8>) -> (u16, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0_u8; 4096];
        let mut replied = false;
        loop {
            if !replied && got.len() >= expect {
                let _ = stream.write_all(&reply);
                replied = true;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(got);
    });
    (port, rx)
}

/// Reads `stream` to its end (or 5 s), with when each byte came.
fn read_all(stream: &mut TcpStream) -> Vec<(u8, Instant)> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0_u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        let now = Instant::now();
        got.extend(buf[..n].iter().map(|b| (*b, now)));
    }
    got
}

#[test]
fn a_cut_after_the_kth_client_message_delivers_exactly_k_messages() {
    let (stream, ends) = client_stream();
    for k in 1..=ends.len() {
        let (port, received) = upstream(usize::MAX, Vec::new());
        let proxy = PgProxy::start(port).unwrap();
        proxy.set(
            Scope::All,
            Fault::Cut {
                direction: Direction::ToServer,
                after: u64::try_from(k).unwrap(),
            },
        );
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        client.write_all(&stream).unwrap();
        let back = read_all(&mut client);
        let got = received.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got, stream[..ends[k - 1]], "cut after message {k}");
        assert!(
            back.is_empty(),
            "cut after message {k}: the client is closed"
        );
        assert_eq!(proxy.faults(), 1);
        let counts = proxy.connections();
        assert_eq!(counts.len(), 1);
        assert_eq!(
            (counts[0].to_server, counts[0].open),
            (u64::try_from(k).unwrap(), false)
        );
        assert_eq!(
            proxy.messages(counts[0].id, Direction::ToServer),
            b"\0BES"[..k],
            "the types of the messages through"
        );
    }
}

#[test]
fn a_cut_after_the_kth_server_message_delivers_exactly_k_of_them() {
    let reply = [
        typed(b'2', &[]),
        typed(b'D', &[0, 1, 0, 0, 0, 1, b'1']),
        typed(b'C', b"INSERT 0 1\0"),
        typed(b'Z', b"I"),
    ];
    let ends: Vec<usize> = reply
        .iter()
        .scan(0, |at, m| {
            *at += m.len();
            Some(*at)
        })
        .collect();
    let (stream, _) = client_stream();
    for k in 0..=reply.len() {
        let (port, received) = upstream(stream.len(), reply.concat());
        let proxy = PgProxy::start(port).unwrap();
        proxy.set(
            Scope::Next,
            Fault::Cut {
                direction: Direction::ToClient,
                after: u64::try_from(k).unwrap(),
            },
        );
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        client.write_all(&stream).unwrap();
        let back: Vec<u8> = read_all(&mut client).into_iter().map(|(b, _)| b).collect();
        let want = if k == 0 { 0 } else { ends[k - 1] };
        assert_eq!(back, reply.concat()[..want], "cut after server message {k}");
        // The server got the whole request: the cut came after it.
        assert_eq!(
            received.recv_timeout(Duration::from_secs(5)).unwrap(),
            stream
        );
    }
}

#[test]
fn a_stall_holds_the_rest_of_a_read_then_forwards_it() {
    let reply = [typed(b'2', &[]), typed(b'Z', b"I")].concat();
    let (stream, _) = client_stream();
    let (port, _received) = upstream(stream.len(), reply.clone());
    let proxy = PgProxy::start(port).unwrap();
    let stall = Duration::from_millis(400);
    proxy.set(
        Scope::All,
        Fault::Stall {
            direction: Direction::ToClient,
            after: 1,
            duration: stall,
        },
    );
    let mut client = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    let sent = Instant::now();
    client.write_all(&stream).unwrap();
    // The upstream stays open: read the 11 bytes, no more.
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut first = [0_u8; 5];
    client.read_exact(&mut first).unwrap();
    let first_at = sent.elapsed();
    let mut second = [0_u8; 6];
    client.read_exact(&mut second).unwrap();
    let second_at = sent.elapsed();
    assert_eq!([&first[..], &second[..]].concat(), reply);
    assert!(
        first_at < stall,
        "the first message is not held: {first_at:?}"
    );
    assert!(
        second_at >= stall,
        "the second waited the stall: {second_at:?}"
    );
    assert_eq!(proxy.faults(), 1);
    assert!(proxy.connections()[0].open);
}

#[test]
fn a_stall_from_the_start_on_open_connections_holds_their_next_bytes() {
    let (stream, _) = client_stream();
    let (port, received) = upstream(usize::MAX, Vec::new());
    let proxy = PgProxy::start(port).unwrap();
    let mut client = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    // Wait until the proxy has the connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.connections().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let id = proxy.connections()[0].id;
    let stall = Duration::from_millis(300);
    proxy.set(
        Scope::Connection(id),
        Fault::Stall {
            direction: Direction::ToServer,
            after: 0,
            duration: stall,
        },
    );
    client.write_all(&stream).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(proxy.connections()[0].to_server, 0, "held, not counted yet");
    std::thread::sleep(stall);
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.connections()[0].to_server < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(proxy.connections()[0].to_server, 4);
    drop(client);
    assert_eq!(
        received.recv_timeout(Duration::from_secs(5)).unwrap(),
        stream
    );
}

#[test]
fn random_cuts_follow_their_probability_and_seed() {
    let (stream, ends) = client_stream();
    for (probability, cut) in [(0.0, false), (1.0, true)] {
        let (port, received) = upstream(usize::MAX, Vec::new());
        let proxy = PgProxy::start(port).unwrap();
        proxy.set(
            Scope::All,
            Fault::CutAtRandom {
                probability,
                seed: 42,
            },
        );
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        client.write_all(&stream).unwrap();
        if !cut {
            client.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let _ = read_all(&mut client);
        let got = received.recv_timeout(Duration::from_secs(5)).unwrap();
        let want = if cut { &stream[..ends[0]] } else { &stream[..] };
        assert_eq!(got, want, "probability {probability}");
        assert_eq!(proxy.faults(), u64::from(cut));
    }
    // The same seed draws the same numbers.
    let draw = |seed| {
        let mut state = seed;
        (0..5)
            .map(|_| super::unit(&mut state))
            .collect::<Vec<f64>>()
    };
    assert_eq!(draw(9), draw(9));
    assert_ne!(draw(9), draw(10));
    assert!(draw(3).iter().all(|x| (0.0..1.0).contains(x)));
}

#[test]
fn a_dropped_proxy_closes_its_connections_and_stops_listening() {
    let (port, received) = upstream(usize::MAX, Vec::new());
    let proxy = PgProxy::start(port).unwrap();
    let listen = proxy.port();
    let mut client = TcpStream::connect(("127.0.0.1", listen)).unwrap();
    client.write_all(&startup()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.connections().first().map_or(0, |c| c.to_server) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(proxy);
    assert!(read_all(&mut client).is_empty());
    assert_eq!(
        received.recv_timeout(Duration::from_secs(5)).unwrap(),
        startup()
    );
    assert!(TcpStream::connect(("127.0.0.1", listen)).is_err());
}

#[test]
fn nothing_the_client_sends_in_answer_to_the_last_message_gets_through() {
    let (stream, _) = client_stream();
    for _ in 0..20 {
        let reply = [typed(b'1', &[]), typed(b'T', &[0, 0])].concat();
        let (port, received) = upstream(stream.len(), reply);
        let proxy = PgProxy::start(port).unwrap();
        proxy.set(
            Scope::All,
            Fault::Cut {
                direction: Direction::ToClient,
                after: 2,
            },
        );
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        client.write_all(&stream).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = [0_u8; 11];
        client.read_exact(&mut answer).unwrap();
        // As a client does once its prepare is answered: the next query.
        let _ = client.write_all(&typed(b'B', &[1; 16]));
        let _ = read_all(&mut client);
        assert_eq!(
            received.recv_timeout(Duration::from_secs(5)).unwrap(),
            stream,
            "the Bind sent after the cut point reached the server"
        );
        // Counted once, though the other direction closed first.
        assert_eq!(proxy.faults(), 1);
    }
}
