//! [`Notice`]: what the server tells its operator.

use std::fmt;
use std::time::Duration;

/// Something the server tells its operator; see the
/// [module docs](super#notices).
///
/// Its [`Display`](fmt::Display) is the line logged when no
/// [`Server::on_notice`](super::Server::on_notice) hook is set.
///
/// ```
/// use std::time::Duration;
/// use boxhook::server::Notice;
///
/// let notice = Notice::GraceExpired { grace: Duration::from_secs(30), connections: 2 };
/// assert_eq!(
///     notice.to_string(),
///     "2 connection(s) still answering after the 30 s grace; closing them"
/// );
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Notice {
    /// Accepting a connection failed (out of file descriptors, for
    /// instance); the server waits 50 ms and goes on accepting.
    AcceptFailed(std::io::Error),
    /// The grace after a shutdown signal ran out with requests still in
    /// flight: their connections are closed without an answer.
    GraceExpired {
        /// The grace that ran out.
        grace: Duration,
        /// How many connections were still open.
        connections: usize,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AcceptFailed(err) => write!(
                f,
                "accept failed: {err}; retrying (if out of file descriptors, raise `ulimit -n` \
                 or lower the connection limit)"
            ),
            Self::GraceExpired { grace, connections } => write!(
                f,
                "{connections} connection(s) still answering after the {} s grace; closing them",
                grace.as_secs()
            ),
        }
    }
}
