//! `boxhook verify --body-from-request`: split one captured HTTP request
//! (a raw `nc` capture, or a `curl -v` dump that shows the body) into its
//! header lines and its body bytes, so users need not split it by hand.

/// The header block and the body of a captured request. `Err` says what is
/// wrong with the capture and what to do instead.
pub(crate) fn split(capture: &[u8]) -> Result<(String, Vec<u8>), String> {
    let start = capture
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(capture.len());
    let capture = &capture[start..];
    if capture.starts_with(b"> ") || capture.starts_with(b"* ") {
        return curl(capture);
    }
    let (head, rest) = split_at_blank_line(capture).ok_or(
        "the capture has no blank line after the headers: it holds no body \
         (pass --headers and --body instead)",
    )?;
    let head = String::from_utf8_lossy(head).into_owned();
    let body = body_of(&head, rest)?;
    Ok((head, body))
}

/// The bytes before and after the first empty line (CRLF or LF).
fn split_at_blank_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let crlf = find(bytes, b"\r\n\r\n").map(|i| (i, 4));
    let lf = find(bytes, b"\n\n").map(|i| (i, 2));
    let (at, len) = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some((&bytes[..at], &bytes[at.checked_add(len)?..]))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The body by the request's own framing: `Content-Length` bytes, or the
/// chunks of `Transfer-Encoding: chunked`, or everything left.
fn body_of(head: &str, rest: &[u8]) -> Result<Vec<u8>, String> {
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return dechunk(rest);
    }
    let Some(length) = header("content-length") else {
        return Ok(rest.to_vec());
    };
    let length: usize = length
        .parse()
        .map_err(|_| format!("the capture's Content-Length {length:?} is not a number"))?;
    rest.get(..length).map(<[u8]>::to_vec).ok_or_else(|| {
        format!(
            "the capture holds {} body bytes but Content-Length says {length}: it is \
             truncated; capture the whole request",
            rest.len()
        )
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let bad =
        || "the capture's chunked body is malformed; capture it again or pass --body".to_owned();
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or_else(bad)?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| bad())?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        rest = &rest[line_end.checked_add(2).ok_or_else(bad)?..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or_else(bad)?;
        body.extend_from_slice(chunk);
        rest = rest.get(size..).ok_or_else(bad)?;
        rest = rest.strip_prefix(b"\r\n").ok_or_else(bad)?;
    }
}

/// A `curl -v` dump: `> ` header lines, a lone `>`, then the body (when it
/// was pasted there) up to curl's next `*`, `<`, `{` or `}` line.
fn curl(capture: &[u8]) -> Result<(String, Vec<u8>), String> {
    let mut head = String::new();
    let mut offset = 0usize;
    let mut body_start = None;
    for line in capture.split_inclusive(|&b| b == b'\n') {
        offset = offset.saturating_add(line.len());
        let text = String::from_utf8_lossy(line);
        let trimmed = text.trim_end_matches(['\r', '\n']);
        if trimmed == ">" || trimmed == "> " {
            body_start = Some(offset);
            break;
        }
        head.push_str(trimmed);
        head.push('\n');
    }
    let start = body_start.ok_or(
        "the curl -v dump has no `>` line ending the request headers; pass --headers and --body",
    )?;
    let rest = &capture[start..];
    let end = rest
        .split_inclusive(|&b| b == b'\n')
        .scan(0usize, |at, line| {
            let here = *at;
            *at = at.saturating_add(line.len());
            Some((here, line))
        })
        .find(|(_, line)| {
            [&b"* "[..], b"< ", b"{ [", b"} ["]
                .iter()
                .any(|p| line.starts_with(p))
        })
        .map_or(rest.len(), |(at, _)| at);
    let body = &rest[..end];
    if body.is_empty() {
        return Err(
            "the curl -v dump does not show the request body (curl -v never prints \
                    it): pass the body with --body, or capture with `curl --trace-ascii` \
                    or `nc -l`"
                .to_owned(),
        );
    }
    let body = body_of(&head, body)?;
    Ok((head, body))
}

#[cfg(test)]
mod tests {
    use super::split;

    /// The header block and body wanted, or a part of the error message.
    type Want<'a> = Result<(&'a str, &'a [u8]), &'a str>;

    #[test]
    fn splits_captures_in_their_usual_shapes() {
        let cases: &[(&[u8], Want<'_>)] = &[
            (
                b"POST /hook HTTP/1.1\r\nContent-Length: 7\r\nBOX-X: 1\r\n\r\n{\"a\":1}\n",
                Ok(("POST /hook HTTP/1.1\r\nContent-Length: 7\r\nBOX-X: 1", b"{\"a\":1}")),
            ),
            (
                b"POST / HTTP/1.1\nBOX-X: 1\n\n{\"a\":\n1}",
                Ok(("POST / HTTP/1.1\nBOX-X: 1", b"{\"a\":\n1}")),
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n",
                Ok(("POST / HTTP/1.1\r\nTransfer-Encoding: chunked", b"{\"a\":1}")),
            ),
            (
                b"* Connected\n> POST / HTTP/1.1\n> BOX-X: 1\n>\n{\"a\":1}\n* upload completely sent off\n< HTTP/1.1 401\n",
                Ok(("* Connected\n> POST / HTTP/1.1\n> BOX-X: 1\n", b"{\"a\":1}\n")),
            ),
            (
                b"> POST / HTTP/1.1\n> BOX-X: 1\n>\n* upload completely sent off\n",
                Err("curl -v never prints"),
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 70\r\n\r\n{}",
                Err("truncated"),
            ),
            (b"POST / HTTP/1.1\r\nBOX-X: 1\r\n", Err("no blank line")),
        ];
        for (input, want) in cases {
            let got = split(input);
            match (want, &got) {
                (Ok((head, body)), Ok((h, b))) => {
                    assert_eq!((h.as_str(), b.as_slice()), (*head, *body), "{input:?}");
                }
                (Err(needle), Err(message)) => assert!(message.contains(needle), "{message}"),
                _ => panic!("{input:?}: {got:?}"),
            }
        }
    }
}
